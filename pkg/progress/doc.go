// Package progress tells a person watching a long producer run how far it is: on a terminal
// one line redrawn in place ("done/total, rate/s, ETA"); anywhere else (CI logs, a file, a
// pipe) a plain line every few seconds, because carriage-return redraws turn a log into noise.
//
// A Reporter takes its clock as an option, so what it prints and when is tested without
// sleeping. It starts no goroutines: lines are printed from Update, so a run that stalls
// prints nothing new (the last line still shows where it stopped).
package progress

package progress

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configures a Reporter. The zero value prints plain lines every DefaultInterval.
type Options struct {
	// Label names what is counted ("writes", "files"); default "items".
	Label string
	// Interactive redraws one line in place (for a terminal, see IsTerminal) instead of
	// printing a new line each Interval.
	Interactive bool
	// Interval is the least time between two lines when not Interactive; default
	// DefaultInterval. Interactive redraws are limited to one per RedrawInterval.
	Interval time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultInterval is how often a non-interactive Reporter prints a line.
const DefaultInterval = 5 * time.Second

// RedrawInterval limits interactive redraws: faster is invisible and costs writes.
const RedrawInterval = 100 * time.Millisecond

// Reporter prints progress to a writer. It is safe for concurrent use.
type Reporter struct {
	w        io.Writer
	label    string
	interact bool
	interval time.Duration
	now      func() time.Time

	mu          sync.Mutex
	start       time.Time
	last        time.Time // when the last line was printed; zero before the first
	printed     [2]int    // done and total of that line
	done, total int
	finished    bool
}

// New returns a Reporter writing to w; its rate is measured from now.
func New(w io.Writer, o Options) *Reporter {
	o.Label = cmp.Or(o.Label, "items")
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Interactive {
		o.Interval = RedrawInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reporter{w: w, label: o.Label, interact: o.Interactive, interval: o.Interval, now: o.Now, start: o.Now()}
}

// Update records that done of total are finished (total 0: unknown) and prints a line when
// one is due. Its signature fits the progress callbacks of the simulate and replay packages.
func (r *Reporter) Update(done, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.done, r.total = done, total
	now := r.now()
	if !r.last.IsZero() && now.Sub(r.last) < r.interval {
		return
	}
	r.last = now
	r.print(now, false)
}

// Finish prints the final state once (in plain lines, only if the last line did not show it
// already); later Updates and Finishes print nothing. On a terminal it ends the redrawn
// line, so what follows starts on a line of its own.
func (r *Reporter) Finish() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return
	}
	r.finished = true
	if !r.interact && !r.last.IsZero() && r.printed == [2]int{r.done, r.total} {
		return
	}
	r.print(r.now(), true)
}

func (r *Reporter) print(now time.Time, final bool) {
	r.printed = [2]int{r.done, r.total}
	line := Format(r.done, r.total, now.Sub(r.start), r.label)
	switch {
	case r.interact && final:
		fmt.Fprintf(r.w, "\r%s\x1b[K\n", line)
	case r.interact:
		// \x1b[K erases what a longer previous line left behind.
		fmt.Fprintf(r.w, "\r%s\x1b[K", line)
	default:
		fmt.Fprintf(r.w, "progress: %s\n", line)
	}
}

// Format renders one progress line: "37/100 writes (37%), 12.3/s, ETA 5s". With total 0
// (unknown) it leaves out the total, the percentage and the ETA; before any rate can be
// measured it leaves out the rate and the ETA.
func Format(done, total int, elapsed time.Duration, label string) string {
	var b strings.Builder
	if total > 0 {
		fmt.Fprintf(&b, "%d/%d %s (%d%%)", done, total, label, percent(done, total))
	} else {
		fmt.Fprintf(&b, "%d %s", done, label)
	}
	if elapsed <= 0 || done <= 0 {
		return b.String()
	}
	rate := float64(done) / elapsed.Seconds()
	fmt.Fprintf(&b, ", %.1f/s", rate)
	if total > 0 && done < total {
		eta := time.Duration(float64(total-done) / rate * float64(time.Second))
		fmt.Fprintf(&b, ", ETA %s", roundETA(eta))
	}
	return b.String()
}

func percent(done, total int) int {
	p := done * 100 / total
	return min(max(p, 0), 100)
}

// roundETA keeps an ETA readable: whole seconds, at least 1s while work remains.
func roundETA(d time.Duration) time.Duration {
	return max(d.Round(time.Second), time.Second)
}

// IsTerminal reports whether f is a character device (a terminal), where redrawing one line
// works. Pipes, files and CI logs are not.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

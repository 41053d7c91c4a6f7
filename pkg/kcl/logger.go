package kcl

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	"github.com/vmware/vmware-go-kcl-v2/logger"
)

// libraryLogger implements the library's logger.Logger on top of slog, so the library's
// lines land in the program's JSON log instead of logrus's default output.
type libraryLogger struct{ l *slog.Logger }

func newLibraryLogger(l *slog.Logger) logger.Logger {
	return libraryLogger{l: l.With("component", "kcl")}
}

func (a libraryLogger) Debugf(format string, args ...any) { a.log(slog.LevelDebug, format, args) }
func (a libraryLogger) Infof(format string, args ...any)  { a.log(slog.LevelInfo, format, args) }
func (a libraryLogger) Warnf(format string, args ...any)  { a.log(slog.LevelWarn, format, args) }
func (a libraryLogger) Errorf(format string, args ...any) { a.log(slog.LevelError, format, args) }

// Fatalf logs and panics: library code must not exit the process, and the library's only
// Fatalf paths (building its own AWS clients) are not taken since we pass ours.
func (a libraryLogger) Fatalf(format string, args ...any) {
	msg, _ := render(format, args)
	a.log(slog.LevelError, format, args)
	panic("kcl: " + msg)
}

// Panicf logs and panics, as the interface requires.
func (a libraryLogger) Panicf(format string, args ...any) {
	msg, _ := render(format, args)
	a.log(slog.LevelError, format, args)
	panic("kcl: " + msg)
}

// WithFields returns a logger that adds the fields, in key order, to every line.
func (a libraryLogger) WithFields(f logger.Fields) logger.Logger {
	args := make([]any, 0, 2*len(f))
	for _, k := range slices.Sorted(maps.Keys(f)) {
		args = append(args, k, f[k])
	}
	return libraryLogger{l: a.l.With(args...)}
}

func (a libraryLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !a.l.Enabled(ctx, level) { // adjustLevel only lowers, so this skips the rendering
		return
	}
	msg, attrs := render(format, args)
	level = adjustLevel(level, msg)
	if !a.l.Enabled(ctx, level) {
		return
	}
	a.l.Log(ctx, level, msg, attrs...)
}

// render turns a library call into a message and slog key/values. The library mostly uses
// printf formats, but a few calls pass key/value pairs to a printf method
// (Errorf("message", "text", "shardId", id, ...)); those become a message and attributes
// instead of a line full of %!(EXTRA ...).
func render(format string, args []any) (string, []any) {
	if len(args) == 0 {
		return format, nil
	}
	if strings.Contains(format, "%") {
		return fmt.Sprintf(format, args...), nil
	}
	if format == "message" && len(args)%2 == 1 {
		return fmt.Sprint(args[0]), args[1:]
	}
	return format, args
}

// demotedLevel is where expected, repetitive library lines go.
const demotedLevel = slog.LevelDebug

// adjustLevel demotes library lines that report normal operation as warnings or errors, and
// would otherwise repeat every shard-sync tick:
//   - rebalancing fails with "AssignedToNotFoundForShard" until every shard has an owner
//     (always, while a child shard waits for its parent or a worker is at its lease cap);
//   - a shard claimed by a stealing worker cannot be leased by the others ("already claimed"),
//     and its old owner's reader stops with the same error;
//   - readers pace themselves to Kinesis' per-shard read limits ("localTPSExceededError so
//     sleep for a second") whenever they catch up on a backlog;
//   - readers stopped by our shutdown fail with errShuttingDown.
func adjustLevel(level slog.Level, msg string) slog.Level {
	if level <= demotedLevel {
		return level
	}
	switch {
	case strings.Contains(msg, chk.ErrShardNotAssigned.Error()),
		strings.HasPrefix(msg, "Not all shards are allocated"),
		strings.HasPrefix(msg, "localTPSExceededError"), strings.HasPrefix(msg, "maxBytesExceededError"),
		strings.Contains(msg, errShuttingDown.Error()):
		return demotedLevel
	case strings.Contains(msg, chk.ErrShardClaimed):
		return min(level, slog.LevelInfo)
	}
	return level
}

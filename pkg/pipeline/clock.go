package pipeline

import (
	"context"
	"time"
)

// Clock is all the time the pipeline sees: the timelines' "now", the cadence and backoff
// timers, the loops' sleeps. Every wait goes through it, so a test that drives a fake clock
// decides exactly when a run, a verification or a retry happens.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now. Its Stop and Reset behave as
	// time.Timer's do since Go 1.23: no stale tick is received after either returns.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the pipeline uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer is time.NewTimer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// sleep waits for d on c, or until ctx is done.
func sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

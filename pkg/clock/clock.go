// Package clock is the one notion of time of the pipeline's packages: the "now" of windows
// and TTLs, and the timers behind cadences, backoff and pacing. Everything that waits takes a
// Clock, so that a test driving clocktest.Fake decides exactly when a window closes, a retry
// starts or a batch is paced, without sleeping for real.
package clock

import (
	"context"
	"time"
)

// Clock is the time a component sees.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now. Its Stop and Reset behave as
	// time.Timer's do since Go 1.23: no stale tick is received after either returns.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the components use.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Real is the wall clock.
type Real struct{}

// Now is time.Now.
func (Real) Now() time.Time { return time.Now() }

// NewTimer is time.NewTimer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Or is c, or Real when c is nil: the default of every option struct's Clock.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Sleep waits d on c, or until ctx is done; it returns ctx.Err() then. A wait of 0 or less
// returns at once (with ctx.Err()). When the timer and ctx end together, ctx wins: a caller
// that was cancelled learns it rather than starting one more attempt.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return ctx.Err()
	}
}

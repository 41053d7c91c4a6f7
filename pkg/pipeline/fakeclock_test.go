package pipeline_test

import (
	"sync"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
)

// fakeClock is a pipeline.Clock whose time moves only when the test moves it. Timers fire
// when the clock reaches their deadline, in deadline order (see rig.advance).
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{} // armed timers
}

func newFakeClock(start time.Time) *fakeClock {
	return &fakeClock{now: start, timers: make(map[*fakeTimer]struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) pipeline.Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// nextDeadline is the earliest deadline of an armed timer.
func (c *fakeClock) nextDeadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first time.Time
	for t := range c.timers {
		if first.IsZero() || t.at.Before(first) {
			first = t.at
		}
	}
	return first, !first.IsZero()
}

// set moves the clock to at (never backwards) and fires every timer due by then.
func (c *fakeClock) set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if at.After(c.now) {
		c.now = at
	}
	for t := range c.timers {
		if !t.at.After(c.now) {
			c.fireLocked(t)
		}
	}
}

func (c *fakeClock) fireLocked(t *fakeTimer) {
	delete(c.timers, t)
	select {
	case t.ch <- c.now:
	default: // a tick is waiting already
	}
}

// fakeTimer behaves as time.Timer does since Go 1.23: Stop and Reset drop a tick that was not
// received, so no stale tick arrives after them.
type fakeTimer struct {
	c  *fakeClock
	ch chan time.Time
	at time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.timers[t]
	delete(t.c.timers, t)
	t.drain()
	return armed
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.timers[t]
	t.drain()
	t.at = t.c.now.Add(d)
	t.c.timers[t] = struct{}{}
	if d <= 0 {
		t.c.fireLocked(t)
	}
	return armed
}

func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

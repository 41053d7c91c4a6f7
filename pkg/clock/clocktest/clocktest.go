// Package clocktest is the fake clock.Clock for tests. Its time moves only when the test
// moves it (Set, Advance), or, in Auto mode, when a timer is armed: then the clock jumps to
// the timer's deadline at once, which makes every Sleep return immediately with the time
// moved on, as if the wait had passed. It holds no goroutine, so it works inside a
// testing/synctest bubble.
package clocktest

import (
	"sync"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
)

// Fake is a clock.Clock whose timers fire when the clock reaches their deadline, in
// deadline order when the test walks them with NextDeadline and Set.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	auto   bool
	timers map[*timer]struct{} // armed timers
	waits  []time.Duration     // every duration a timer was armed with, in order
	onWait func(time.Duration)
}

// New returns a fake clock at start that only the test moves.
func New(start time.Time) *Fake {
	return &Fake{now: start, timers: make(map[*timer]struct{})}
}

// NewAuto returns a fake clock at start that jumps to each timer's deadline as it is armed:
// a Sleep on it returns at once, the clock d later.
func NewAuto(start time.Time) *Fake {
	f := New(start)
	f.auto = true
	return f
}

// OnWait sets a function called (without the clock's lock) with the duration of every timer
// armed from now on, before it can fire: a test injects a failure "during" a wait with it.
func (c *Fake) OnWait(f func(d time.Duration)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onWait = f
}

// Now is the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Waits returns the durations timers were armed with (NewTimer and Reset), in order.
func (c *Fake) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// NewTimer arms a timer d from now.
func (c *Fake) NewTimer(d time.Duration) clock.Timer {
	t := &timer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// NextDeadline is the earliest deadline of an armed timer.
func (c *Fake) NextDeadline() (time.Time, bool) {
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

// Set moves the clock to at (never backwards) and fires every timer due by then.
func (c *Fake) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(at)
}

// Advance moves the clock d forward and fires every timer due by then.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

func (c *Fake) setLocked(at time.Time) {
	if at.After(c.now) {
		c.now = at
	}
	for t := range c.timers {
		if !t.at.After(c.now) {
			c.fireLocked(t)
		}
	}
}

func (c *Fake) fireLocked(t *timer) {
	delete(c.timers, t)
	select {
	case t.ch <- c.now:
	default: // a tick is waiting already
	}
}

// timer behaves as time.Timer does since Go 1.23: Stop and Reset drop a tick that was not
// received, so no stale tick arrives after them.
type timer struct {
	c  *Fake
	ch chan time.Time
	at time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.timers[t]
	delete(t.c.timers, t)
	t.drain()
	return armed
}

func (t *timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	onWait := t.c.onWait
	t.c.mu.Unlock()
	if onWait != nil {
		onWait(d)
	}
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	_, armed := t.c.timers[t]
	t.drain()
	t.c.waits = append(t.c.waits, d)
	t.at = t.c.now.Add(d)
	t.c.timers[t] = struct{}{}
	switch {
	case d <= 0:
		t.c.fireLocked(t)
	case t.c.auto:
		t.c.setLocked(t.at)
	}
	return armed
}

func (t *timer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

package bus

import (
	"sync"
	"time"
)

// Health says whether EventBridge is taking this Emitter's events, from the outcome of its
// calls: a call that failed as a whole (see ErrUnavailable) or whose entries were denied
// permission starts an outage; the next call that EventBridge answered without either ends
// it. Rejected requests (KindRejected) and entry failures such as throttling or malformed
// entries change nothing. The consumer polls Unavailable for /readyz.
//
// With several calls in flight, outcomes land in the order they finish; a mix of failing and
// succeeding calls (e.g. a policy that denies one detail type) may flip the state back and
// forth — readiness checks should look at how long it has lasted, not at one flip.
type Health struct {
	now func() time.Time

	mu     sync.Mutex
	down   bool
	since  time.Time // start of the current outage
	code   string    // the latest failure's code or kind
	lastOK time.Time
}

func newHealth(now func() time.Time) *Health { return &Health{now: now} }

// Unavailable reports whether the bus is unavailable now: since when (the first failure of
// the current outage), and the code (or, without one, the Kind) of the latest failure.
func (h *Health) Unavailable() (since time.Time, code string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.since, h.code, h.down
}

// LastSuccess is when a call last went through (zero if none did yet).
func (h *Health) LastSuccess() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastOK
}

func (h *Health) fail(code string) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		h.down, h.since = true, now
	}
	h.code = code
}

func (h *Health) ok() {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down, h.since, h.code, h.lastOK = false, time.Time{}, "", now
}

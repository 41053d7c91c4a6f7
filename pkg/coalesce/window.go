package coalesce

import (
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Key is what windows are partitioned by.
type Key struct {
	DatastoreID  string
	ResourceType string
}

// Op is the FHIR operation a hint reports.
type Op int

// The operations a window can hold.
const (
	Create Op = iota + 1
	Update
	Delete
)

// Hint is one accepted CloudTrail record: something of Key changed during the second of Time.
type Hint struct {
	EventID string
	Time    time.Time
	Op      Op
	// Region and Account name the datastore's home, for the events' datastore ARN.
	Region, Account string
	// Link is the span context of the batch that delivered the hint (invalid when none); the
	// window's span links to it.
	Link trace.SpanContext
}

// MaxLinks bounds the distinct batch span contexts a window keeps: a window of thousands of
// hints from a few batches needs a few links, and a pathological one must not grow a span.
const MaxLinks = 128

// Window is the set of hints for one key that share a search. It owns the acks of the
// records that fed it: the caller runs them once everything the window found is emitted.
type Window struct {
	Key Key
	// Opened is when the first hint arrived; Closes is when the window stops taking hints.
	Opened, Closes time.Time
	// MinEvent and MaxEvent bound the hints' eventTimes.
	MinEvent, MaxEvent time.Time
	// EventIDs are the distinct CloudTrail event ids, in arrival order: a record delivered
	// twice counts once.
	EventIDs []string
	// Creates, Updates and Deletes count distinct events by operation.
	Creates, Updates, Deletes int
	// Acks are the callbacks of the records that fed this window, duplicates included.
	Acks []func()
	// Region and Account are the first hint's: a datastore lives in one of each.
	Region, Account string
	// Links are the distinct valid batch span contexts of the hints, at most MaxLinks, in
	// arrival order (duplicate deliveries included: they were read too).
	Links []trace.SpanContext

	seen  map[string]struct{}
	links map[trace.SpanID]struct{}
}

func newWindow(key Key, now time.Time, window time.Duration) *Window {
	return &Window{Key: key, Opened: now, Closes: now.Add(window), seen: make(map[string]struct{})}
}

func (w *Window) add(h Hint, ack func()) {
	if ack != nil {
		w.Acks = append(w.Acks, ack)
	}
	w.addLink(h.Link)
	if _, dup := w.seen[h.EventID]; dup {
		return
	}
	w.seen[h.EventID] = struct{}{}
	if w.Region == "" {
		w.Region, w.Account = h.Region, h.Account
	}
	w.EventIDs = append(w.EventIDs, h.EventID)
	if w.MinEvent.IsZero() || h.Time.Before(w.MinEvent) {
		w.MinEvent = h.Time
	}
	if h.Time.After(w.MaxEvent) {
		w.MaxEvent = h.Time
	}
	switch h.Op {
	case Create:
		w.Creates++
	case Update:
		w.Updates++
	case Delete:
		w.Deletes++
	}
}

func (w *Window) addLink(sc trace.SpanContext) {
	if !sc.IsValid() || len(w.Links) >= MaxLinks {
		return
	}
	if _, dup := w.links[sc.SpanID()]; dup {
		return
	}
	if w.links == nil {
		w.links = make(map[trace.SpanID]struct{})
	}
	w.links[sc.SpanID()] = struct{}{}
	w.Links = append(w.Links, sc)
}

// Events is the number of distinct hints.
func (w *Window) Events() int { return len(w.EventIDs) }

// Range is the window's search range under cfg.
func (w *Window) Range(cfg Config) (from, to time.Time) { return cfg.Range(w.MinEvent, w.MaxEvent) }

// ReadyAt is when the window's search may run under cfg: not before it closes, and not
// later than a hint of that moment would need — an eventTime in the future (a skewed or
// hostile record) must not park the window, and the shard's checkpoint, for ever.
func (w *Window) ReadyAt(cfg Config) time.Time {
	r := cfg.ReadyAt(w.MaxEvent)
	if latest := cfg.ReadyAt(w.Closes); r.After(latest) {
		r = latest
	}
	if r.Before(w.Closes) {
		return w.Closes
	}
	return r
}

// fits says whether a hint at t keeps the window's event times within span.
func (w *Window) fits(t time.Time, span time.Duration) bool {
	if w.Events() == 0 {
		return true
	}
	lo, hi := w.MinEvent, w.MaxEvent
	if t.Before(lo) {
		lo = t
	}
	if t.After(hi) {
		hi = t
	}
	return hi.Sub(lo) <= span
}

// Ack runs every record's ack once; later calls do nothing.
func (w *Window) Ack() {
	acks := w.Acks
	w.Acks = nil
	for _, a := range acks {
		a()
	}
}

package coalesce

import (
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
)

var (
	obs = Key{DatastoreID: "095d2262da454bb7347488c930e009eb", ResourceType: "Observation"}
	pat = Key{DatastoreID: "095d2262da454bb7347488c930e009eb", ResourceType: "Patient"}
)

func TestCoalescerGroupsByKeyAndCloses(t *testing.T) {
	cfg := Defaults()
	c := New(cfg)
	t0 := ts("2026-11-20T09:15:03Z")
	acked := 0
	ack := func() { acked++ }

	c.Add(t0, obs, Hint{EventID: "a", Time: t0, Op: Create}, ack)
	c.Add(t0.Add(200*time.Millisecond), obs, Hint{EventID: "b", Time: t0.Add(time.Second), Op: Update}, ack)
	c.Add(t0.Add(300*time.Millisecond), pat, Hint{EventID: "c", Time: t0, Op: Create}, ack)
	// the same CloudTrail event delivered twice: one event, two acks
	c.Add(t0.Add(400*time.Millisecond), obs, Hint{EventID: "a", Time: t0, Op: Create}, ack)

	if c.Open() != 2 {
		t.Fatalf("open windows = %d, want 2", c.Open())
	}
	if next, ok := c.NextClose(); !ok || !next.Equal(t0.Add(cfg.Window)) {
		t.Fatalf("NextClose = %v %v, want %v", next, ok, t0.Add(cfg.Window))
	}
	if got := c.Closed(t0.Add(999 * time.Millisecond)); len(got) != 0 {
		t.Fatalf("closed early: %d windows", len(got))
	}
	got := c.Closed(t0.Add(cfg.Window))
	if len(got) != 1 {
		t.Fatalf("closed %d windows at obs deadline, want 1", len(got))
	}
	w := got[0]
	if w.Key != obs || w.Events() != 2 || w.Creates != 1 || w.Updates != 1 || len(w.Acks) != 3 {
		t.Fatalf("window = key %v events %d creates %d updates %d acks %d", w.Key, w.Events(), w.Creates, w.Updates, len(w.Acks))
	}
	if !w.MinEvent.Equal(t0) || !w.MaxEvent.Equal(t0.Add(time.Second)) {
		t.Fatalf("event bounds = %v..%v", w.MinEvent, w.MaxEvent)
	}
	from, to := w.Range(cfg)
	if !from.Equal(t0.Add(-cfg.Lead)) || !to.Equal(t0.Add(2*time.Second+cfg.Lag)) {
		t.Fatalf("range = [%v, %v)", from, to)
	}
	if !w.ReadyAt(cfg).Equal(t0.Add(2*time.Second + cfg.Settle)) {
		t.Fatalf("ReadyAt = %v", w.ReadyAt(cfg))
	}
	w.Ack()
	w.Ack()
	if acked != 3 {
		t.Fatalf("acked %d, want 3 (once per record)", acked)
	}
	// a hint for a key whose window was handed out opens a new window
	c.Add(t0.Add(2*time.Second), obs, Hint{EventID: "d", Time: t0.Add(2 * time.Second), Op: Update}, ack)
	if c.Open() != 2 {
		t.Fatalf("open = %d, want 2", c.Open())
	}
	if rest := c.Drain(t0.Add(2 * time.Second)); len(rest) != 2 || c.Open() != 0 {
		t.Fatalf("drain = %d windows, open after = %d", len(rest), c.Open())
	}
}

func TestCoalescerClosesFullWindow(t *testing.T) {
	cfg := Defaults()
	cfg.MaxEvents = 3
	c := New(cfg)
	t0 := ts("2026-11-20T09:15:03Z")
	for i, id := range []string{"a", "b"} {
		if full := c.Add(t0, obs, Hint{EventID: id, Time: t0, Op: Create}, nil); full != nil {
			t.Fatalf("window full after %d events", i+1)
		}
	}
	// a duplicate does not fill the window
	if full := c.Add(t0, obs, Hint{EventID: "b", Time: t0, Op: Create}, nil); full != nil {
		t.Fatal("duplicate filled the window")
	}
	full := c.Add(t0, obs, Hint{EventID: "c", Time: t0, Op: Create}, nil)
	if full == nil || full.Events() != 3 || !full.Closes.Equal(t0) {
		t.Fatalf("want a full window closed at once, got %+v", full)
	}
	if c.Open() != 0 {
		t.Fatalf("full window still open")
	}
}

func TestReadyAtNeverBeforeClose(t *testing.T) {
	cfg := Config{Window: 5 * time.Second, Settle: 0, MaxEvents: 10}
	c := New(cfg)
	now := ts("2026-11-20T10:00:00Z")
	old := ts("2026-11-20T09:00:00Z") // a backlog: the hint is an hour old
	c.Add(now, obs, Hint{EventID: "a", Time: old, Op: Create}, nil)
	w := c.Drain(now.Add(5 * time.Second))[0]
	if !w.ReadyAt(cfg).Equal(w.Closes) {
		t.Fatalf("ReadyAt = %v, want the close time %v for an old hint", w.ReadyAt(cfg), w.Closes)
	}
}

// TestCoalescerBoundsSpan: a hint far from the open window's event times (a replayed old
// event, a skewed clock) starts a new window instead of stretching the search range.
func TestCoalescerBoundsSpan(t *testing.T) {
	cfg := Defaults()
	cfg.MaxSpan = time.Minute
	c := New(cfg)
	now := ts("2026-11-20T09:15:03Z")
	if closed := c.Add(now, obs, Hint{EventID: "a", Time: now, Op: Create}, nil); closed != nil {
		t.Fatal("first hint closed a window")
	}
	if closed := c.Add(now, obs, Hint{EventID: "b", Time: now.Add(-59 * time.Second), Op: Create}, nil); closed != nil {
		t.Fatal("a hint within the span closed the window")
	}
	old := now.Add(-24 * time.Hour)
	closed := c.Add(now, obs, Hint{EventID: "c", Time: old, Op: Update}, nil)
	if closed == nil || closed.Events() != 2 || !closed.Closes.Equal(now) {
		t.Fatalf("want the 2-event window closed, got %+v", closed)
	}
	from, to := closed.Range(cfg)
	if to.Sub(from) > cfg.MaxSpan+time.Second+cfg.Lead+cfg.Lag {
		t.Fatalf("closed window's range %v..%v is wider than the span allows", from, to)
	}
	rest := c.Drain(now)
	if len(rest) != 1 || rest[0].Events() != 1 || !rest[0].MinEvent.Equal(old) {
		t.Fatalf("want a new window holding only the old hint, got %d windows", len(rest))
	}
}

// TestReadyAtFutureEventTime: an eventTime in the future does not park the window (and the
// shard's checkpoint) until then.
func TestReadyAtFutureEventTime(t *testing.T) {
	cfg := Defaults()
	c := New(cfg)
	now := ts("2026-11-20T09:15:03Z")
	c.Add(now, obs, Hint{EventID: "a", Time: ts("9000-01-01T00:00:00Z"), Op: Create}, nil)
	w := c.Drain(now.Add(cfg.Window))[0]
	if got, limit := w.ReadyAt(cfg), w.Closes.Add(time.Second+cfg.Settle); got.After(limit) {
		t.Fatalf("ReadyAt = %v, want no later than %v", got, limit)
	}
}

func TestWindowLinksDistinctAndBounded(t *testing.T) {
	cfg := Defaults()
	cfg.MaxEvents = 1 << 20
	c := New(cfg)
	t0 := ts("2026-11-20T09:15:03Z")
	link := func(n int) trace.SpanContext {
		return trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{byte(n), byte(n >> 8), 1}, TraceFlags: trace.FlagsSampled,
		})
	}
	// two hints from one batch, one from another, one without a batch span
	c.Add(t0, obs, Hint{EventID: "a", Time: t0, Op: Create, Link: link(1)}, nil)
	c.Add(t0, obs, Hint{EventID: "b", Time: t0, Op: Create, Link: link(1)}, nil)
	c.Add(t0, obs, Hint{EventID: "c", Time: t0, Op: Create, Link: link(2)}, nil)
	c.Add(t0, obs, Hint{EventID: "d", Time: t0, Op: Create}, nil)
	for i := 3; i < MaxLinks+50; i++ {
		c.Add(t0, obs, Hint{EventID: fmt.Sprint("e", i), Time: t0, Op: Update, Link: link(i)}, nil)
	}
	w := c.Drain(t0)[0]
	if len(w.Links) != MaxLinks {
		t.Fatalf("links = %d, want the bound %d", len(w.Links), MaxLinks)
	}
	if w.Links[0].SpanID() != link(1).SpanID() || w.Links[1].SpanID() != link(2).SpanID() {
		t.Fatalf("links not distinct in arrival order: %v %v", w.Links[0].SpanID(), w.Links[1].SpanID())
	}
}

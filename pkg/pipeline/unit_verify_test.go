package pipeline_test

import (
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
)

// TestUnitVerifyFindsHiddenWrite: a write the search index shows later than settle (5 s
// against 2 s) is missed by the first search, its record is acked when the timeline covers
// it, and verification at the horizon counts one more than was emitted, re-reads the range
// and emits it.
func TestUnitVerifyFindsHiddenWrite(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		w := r.start("w1")
		r.fhir.delay = 5 * time.Second
		r.advance(300 * time.Millisecond)
		at := r.clock.Now()
		id, a := w.write(obsKey, "")
		r.advanceUntil("ack", 100*time.Millisecond, 30*time.Second, a.done)
		if r.hasEvent(obsKey, id) {
			t.Fatal("the first search found a write hidden for longer than settle; the test shows nothing")
		}
		var horizon time.Time // when the searched chunk holding the write is due
		for _, o := range r.tl.obligations(obsKey) {
			if !at.Before(o.From) && at.Before(o.To) {
				horizon = o.To.Add(r.cfg.Timeline.VerifyAfter)
			}
		}
		if horizon.IsZero() {
			t.Fatalf("no obligation holds the write's time: %v", r.tl.obligations(obsKey))
		}
		took := r.advanceUntil("event", 100*time.Millisecond, 30*time.Second, func() bool { return r.hasEvent(obsKey, id) })
		// Found at the horizon: by the verify loop, within one cadence of it.
		if now := r.clock.Now(); now.Before(horizon) || now.After(horizon.Add(r.cfg.Timeline.Window+100*time.Millisecond)) {
			t.Errorf("found at %v, want within a cadence of the horizon %v", now.Sub(t0), horizon.Sub(t0))
		}
		s := w.pipe.Stats().Snapshot()
		if s.FoundByVerify != 1 || s.Rereads < 1 {
			t.Errorf("found by verify %d, re-reads %d; want 1 and at least 1", s.FoundByVerify, s.Rereads)
		}
		r.emittedOnce(1)
		r.advance(time.Minute)
		if obs := r.tl.obligations(obsKey); len(obs) != 0 {
			t.Errorf("obligations left after verification: %v", obs)
		}
		t.Logf("found %v after the ack", took)
	})
}

// TestUnitVerifyCountMatchesNoReread: with the index in step, every obligation is counted
// once, matches, and nothing is read twice — though the key's runs and the worker's verify
// loop both look for due obligations.
func TestUnitVerifyCountMatchesNoReread(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		w := r.start("w1")
		var acks []*ack
		for range 80 {
			_, a := w.write(obsKey, "")
			acks = append(acks, a)
			r.advance(100 * time.Millisecond)
		}
		r.advance(time.Minute)
		for i, a := range acks {
			if !a.done() {
				t.Fatalf("record %d not acked", i)
			}
		}
		s := w.pipe.Stats().Snapshot()
		if s.Rereads != 0 || s.FoundByVerify != 0 {
			t.Errorf("%d re-reads (%d found) with the counts in step", s.Rereads, s.FoundByVerify)
		}
		if got := r.fhir.returnedFor(obsKey); got != 80 {
			t.Errorf("searches returned %d resources for 80 changed", got)
		}
		if n := r.fhir.count("count", obsKey); n == 0 || int64(n) != s.Verified {
			t.Errorf("%d count requests for %d verified ranges", n, s.Verified)
		}
		if obs := r.tl.obligations(obsKey); len(obs) != 0 {
			t.Errorf("obligations left: %v", obs)
		}
		r.emittedOnce(80)
	})
}

// TestUnitVerifyCountIgnored: a server that ignores count requests makes verification
// re-read every range instead — and says so once in the log, however many ranges.
func TestUnitVerifyCountIgnored(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		w := r.start("w1")
		r.fhir.countIgnored = true
		for _, k := range []coalesce.Key{obsKey, patKey} {
			w.write(k, "")
		}
		r.advance(5 * time.Second)
		for _, k := range []coalesce.Key{obsKey, patKey} {
			w.write(k, "")
		}
		r.advance(time.Minute)
		s := w.pipe.Stats().Snapshot()
		if s.Rereads < 2 || s.Rereads != s.Verified {
			t.Errorf("%d re-reads for %d verified ranges: every range should be re-read", s.Rereads, s.Verified)
		}
		if n := r.logs.count("ignored or refused a count request"); n != 1 {
			t.Errorf("logged %d times that counts are ignored, want once", n)
		}
		if s.FoundByVerify != 0 {
			t.Errorf("re-reads found %d changes; there were none to find", s.FoundByVerify)
		}
		r.emittedOnce(4)
	})
}

// TestUnitVerifyCountRefused: a server that answers the count request with a permanent error
// (HealthLake may refuse _summary it does not support) cannot count: verification re-reads
// the ranges instead of failing, and obligations are met.
func TestUnitVerifyCountRefused(t *testing.T) {
	refused := realFHIRErrors(t)["not-found"]
	unit(t, nil, func(t *testing.T, r *rig) {
		r.fhir.fail = func(op string, _ coalesce.Key) error {
			if op == "count" {
				return refused
			}
			return nil
		}
		w := r.start("w1")
		w.write(obsKey, "")
		r.advance(time.Minute)
		s := w.pipe.Stats().Snapshot()
		if s.Verified == 0 || s.Rereads != s.Verified {
			t.Errorf("%d re-reads for %d verified ranges; want every range re-read", s.Rereads, s.Verified)
		}
		if due := r.tl.obligations(obsKey); len(due) != 0 {
			t.Errorf("obligations left: %v", due)
		}
		r.emittedOnce(1)
	})
}

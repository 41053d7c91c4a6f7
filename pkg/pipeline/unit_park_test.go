package pipeline_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// TestUnitParkAndRetry: a key whose searches fail with a 403 is parked after ParkAttempts —
// reported once as Range Failed however long the outage, its records acked — while another
// key of the same datastore flows with its normal lag; when the 403 stops, the parked
// retry searches the range, emits what it holds and unparks it.
func TestUnitParkAndRetry(t *testing.T) {
	errs := realFHIRErrors(t)
	unit(t, nil, func(t *testing.T, r *rig) {
		var failing atomic.Bool
		failing.Store(true)
		r.fhir.fail = func(op string, k coalesce.Key) error {
			if k == patKey && op == "search" && failing.Load() {
				return errs["forbidden"]
			}
			return nil
		}
		w := r.start("w1")
		r.advance(300 * time.Millisecond)
		pat, pa := w.write(patKey, "")
		obs, oa := w.write(obsKey, "")
		took := r.advanceUntil("the healthy key's ack", 100*time.Millisecond, 10*time.Second, oa.done)
		if took > 5*time.Second {
			t.Errorf("the healthy key waited %v", took)
		}
		if !r.hasEvent(obsKey, obs) {
			t.Error("the healthy key's write was not emitted")
		}
		// Parked after ParkAttempts (the report says how many); later chunks of the outage
		// grow the parked range, one attempt each: the record is acked about when its range
		// has settled.
		r.advanceUntil("the failing key's ack (parked)", 100*time.Millisecond, 10*time.Second, pa.done)
		// The outage goes on: more writes and hints for both keys, for 20 s.
		var later []*ack
		for range 20 {
			w.write(patKey, "")
			_, a := w.write(obsKey, "")
			later = append(later, a)
			r.advance(time.Second)
		}
		r.advance(5 * time.Second)
		for i, a := range later {
			if !a.done() {
				t.Errorf("healthy record %d not acked during the other key's outage", i)
			}
		}
		failed := r.bus.events(event.DetailTypeRangeFailed)
		if len(failed) != 1 {
			t.Fatalf("%d Range Failed reports, want 1 for one outage: %+v", len(failed), failed)
		}
		if d := detail[event.RangeFailed](failed[0]); d.ResourceType != "Patient" || d.Reason != "forbidden" || d.Attempts != r.cfg.ParkAttempts {
			t.Errorf("report %+v", d)
		}
		ps := r.tl.parkedRanges()
		if len(ps) != 1 || ps[0].Key != patKey || ps[0].Reason != "forbidden" {
			t.Fatalf("parked %+v", ps)
		}
		if !ps[0].Range.Contains(r.hintRange(t0)) {
			t.Errorf("the parked range %+v does not hold the first write's range", ps[0].Range)
		}
		if r.hasEvent(patKey, pat) {
			t.Error("a write of the failing key was emitted during the outage")
		}
		if s := w.pipe.Stats().Snapshot(); s.Parked != 1 {
			t.Errorf("stats: %d parked", s.Parked)
		}

		failing.Store(false)
		r.advanceUntil("unparked", time.Second, 2*time.Minute, func() bool { return len(r.tl.parkedRanges()) == 0 })
		if !r.hasEvent(patKey, pat) {
			t.Error("the parked range's write was not emitted by the retry")
		}
		if s := w.pipe.Stats().Snapshot(); s.Unparked != 1 {
			t.Errorf("stats: %d unparked", s.Unparked)
		}
		r.emittedOnce(42)
	})
}

// TestUnitParkBusyKey: a key failing with a 403 while its hints keep coming is parked after
// ParkAttempts, within seconds — its next chunk grows with every attempt, and that must not
// restart the count (it did: the records waited until the chunk reached the max span).
func TestUnitParkBusyKey(t *testing.T) {
	errs := realFHIRErrors(t)
	unit(t, nil, func(t *testing.T, r *rig) {
		r.fhir.fail = func(op string, k coalesce.Key) error {
			if op == "search" {
				return errs["forbidden"]
			}
			return nil
		}
		w := r.start("w1")
		var acks []*ack
		for range 100 { // 20 s of hints, 5 a second
			_, a := w.write(patKey, "")
			acks = append(acks, a)
			r.advance(200 * time.Millisecond)
			if len(r.bus.events(event.DetailTypeRangeFailed)) > 0 {
				break
			}
		}
		failed := r.bus.events(event.DetailTypeRangeFailed)
		if len(failed) != 1 || detail[event.RangeFailed](failed[0]).Attempts != r.cfg.ParkAttempts {
			t.Fatalf("after %v of hints: Range Failed %+v, want one after %d attempts", r.clock.Now().Sub(t0), failed, r.cfg.ParkAttempts)
		}
		if took := r.clock.Now().Sub(t0); took > 10*time.Second {
			t.Errorf("parked %v after the first hint", took)
		}
		r.advance(10 * time.Second)
		for i, a := range acks {
			if !a.done() {
				t.Errorf("record %d not acked after its range was parked", i)
			}
		}
	})
}

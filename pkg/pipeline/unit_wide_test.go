package pipeline_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// TestUnitBundleHintFansOut: a Bundle hint (no type) is looked for in every type known for
// the datastore, its deletes resolved through history, and its record acked only once every
// type's timeline covers its range — not when the first one does.
func TestUnitBundleHintFansOut(t *testing.T) {
	errs := realFHIRErrors(t)
	unit(t, nil, func(t *testing.T, r *rig) {
		var patientDown atomic.Bool
		r.fhir.fail = func(op string, k coalesce.Key) error {
			if op == "search" && k == patKey && patientDown.Load() {
				return errs["server-error"]
			}
			return nil
		}
		w := r.start("w1")
		// Hints of both types make them known.
		old, _ := w.write(obsKey, "")
		w.write(patKey, "")
		r.advance(10 * time.Second)
		// The Bundle: a create in each type and a delete.
		patientDown.Store(true)
		at := r.clock.Now()
		obs, _ := r.fhir.write(obsKey, "")
		pat, _ := r.fhir.write(patKey, "")
		r.fhir.remove(obsKey, old)
		b := w.hint(coalesce.Key{DatastoreID: testDS}, event.Mixed)
		rng := r.hintRange(at)
		r.advanceUntil("Observation covers the Bundle", 100*time.Millisecond, 30*time.Second, func() bool {
			return r.tl.state(obsKey).Covers(rng)
		})
		r.advance(5 * time.Second)
		if b.done() {
			t.Fatal("the Bundle's record was acked while Patient's timeline does not cover it")
		}
		if !r.hasEvent(obsKey, obs) {
			t.Error("the Bundle's Observation was not emitted")
		}
		patientDown.Store(false)
		r.advanceUntil("the Bundle's ack", 100*time.Millisecond, 10*time.Second, b.done)
		if !r.hasEvent(patKey, pat) {
			t.Error("the Bundle's Patient was not emitted")
		}
		if n := len(r.bus.events(event.DetailTypeDeleted)); n != 1 {
			t.Errorf("%d delete events for the Bundle's delete", n)
		}
		if s := w.pipe.Stats().Snapshot(); s.WideHints != 1 {
			t.Errorf("%d wide hints", s.WideHints)
		}
		r.emittedOnce(5)
	})
}

// TestUnitCrashBeforeVerification: a worker that dies after searching a range and before its
// horizon leaves the obligation in Redis; another worker, with no hint of the key, verifies
// it and emits the write the first search could not see.
func TestUnitCrashBeforeVerification(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		r.fhir.delay = 5 * time.Second
		w1 := r.start("w1")
		id, a := w1.write(obsKey, "")
		r.advanceUntil("ack", 100*time.Millisecond, 30*time.Second, a.done)
		if r.hasEvent(obsKey, id) || len(r.tl.obligations(obsKey)) == 0 {
			t.Fatalf("want the write unseen and an obligation after the first search: event %v, obligations %v",
				r.hasEvent(obsKey, id), r.tl.obligations(obsKey))
		}
		w1.crash()
		w2 := r.start("w2")
		r.advanceUntil("the late write's event", 100*time.Millisecond, time.Minute, func() bool { return r.hasEvent(obsKey, id) })
		if s := w2.pipe.Stats().Snapshot(); s.FoundByVerify != 1 {
			t.Errorf("w2 found %d by verification, want 1", s.FoundByVerify)
		}
		r.advance(time.Minute)
		if obs := r.tl.obligations(obsKey); len(obs) != 0 {
			t.Errorf("obligations left: %v", obs)
		}
		r.emittedOnce(1)
	})
}

// TestUnitRejectedRecordReported: a record that fails validation is reported on the bus
// after the batch delay (a timer of the injected clock) and then acked.
func TestUnitRejectedRecordReported(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		w := r.start("w1")
		a := w.feed([]byte("not json"))
		r.advance(r.cfg.RejectBatchDelay / 2)
		if a.done() || len(r.bus.events(event.DetailTypeRejected)) != 0 {
			t.Fatal("reported before the batch delay")
		}
		r.advance(r.cfg.RejectBatchDelay)
		if !a.done() || len(r.bus.events(event.DetailTypeRejected)) != 1 {
			t.Errorf("after the batch delay: acked %v, %d reports", a.done(), len(r.bus.events(event.DetailTypeRejected)))
		}
	})
}

// TestUnitRejectReportRetried: a rejected-record report the bus refuses for now is sent
// again after a backoff (flushRejects) until it gets through, and only then is the record
// acked; one the bus refuses for good is counted, offered once, and the record acked anyway.
func TestUnitRejectReportRetried(t *testing.T) {
	t.Run("unavailable, then through", func(t *testing.T) {
		unit(t, nil, func(t *testing.T, r *rig) {
			var refusals atomic.Int32
			r.bus.fail = func(_, _ int, e busEvent) error {
				if e.DetailType == event.DetailTypeRejected && refusals.Add(1) <= 3 {
					return busUnavailable()
				}
				return nil
			}
			w := r.start("w1")
			a := w.feed([]byte("not json"))
			r.advance(r.cfg.RejectBatchDelay)
			if a.done() {
				t.Fatal("acked while its report was refused")
			}
			r.advanceUntil("ack", 100*time.Millisecond, 30*time.Second, a.done)
			if n := refusals.Load(); n != 4 || len(r.bus.events(event.DetailTypeRejected)) != 1 {
				t.Errorf("%d offers, %d reports accepted; want 4 offers, 1 report", n, len(r.bus.events(event.DetailTypeRejected)))
			}
		})
	})
	t.Run("refused for good", func(t *testing.T) {
		unit(t, nil, func(t *testing.T, r *rig) {
			r.bus.fail = func(_, _ int, e busEvent) error {
				if e.DetailType == event.DetailTypeRejected {
					return busMalformed()
				}
				return nil
			}
			w := r.start("w1")
			a := w.feed([]byte("not json"))
			r.advance(r.cfg.RejectBatchDelay)
			r.advanceUntil("ack", 100*time.Millisecond, 10*time.Second, a.done)
			r.advance(10 * time.Second)
			r.bus.mu.Lock()
			refused := r.bus.refused
			r.bus.mu.Unlock()
			if s := w.pipe.Stats().Snapshot(); s.EmitFailed != 1 || s.RejectsReported != 0 || refused != 1 {
				t.Errorf("EmitFailed %d, RejectsReported %d, offers refused %d; want 1, 0, 1", s.EmitFailed, s.RejectsReported, refused)
			}
		})
	})
}

// TestUnitReportRetried: an operational report (here the Range Failed of an untyped hint)
// that the bus refuses for now is sent again after a backoff (report) until it gets through,
// and only then is the hint acked; one refused for good is counted and not sent again.
func TestUnitReportRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse func() error
		times  int32
	}{
		{"unavailable, then through", busUnavailable, 3},
		{"refused for good", busMalformed, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unit(t, nil, func(t *testing.T, r *rig) {
				var offers atomic.Int32
				r.bus.fail = func(_, _ int, e busEvent) error {
					if e.DetailType == event.DetailTypeRangeFailed && offers.Add(1) <= tc.times {
						return tc.refuse()
					}
					return nil
				}
				w := r.start("w1")
				b := w.hint(coalesce.Key{DatastoreID: testDS}, event.Mixed)
				r.advanceUntil("ack", 100*time.Millisecond, 30*time.Second, b.done)
				r.advance(10 * time.Second)
				got, failed := len(r.bus.events(event.DetailTypeRangeFailed)), w.pipe.Stats().Snapshot().EmitFailed
				switch {
				case tc.times < 1000 && (offers.Load() != tc.times+1 || got != 1 || failed != 0):
					t.Errorf("%d offers, %d reports, %d failed; want %d offers, 1 report, 0 failed", offers.Load(), got, failed, tc.times+1)
				case tc.times == 1000 && (offers.Load() != 1 || got != 0 || failed != 1):
					t.Errorf("%d offers, %d reports, %d failed; want 1 offer, 0 reports, 1 failed", offers.Load(), got, failed)
				}
			})
		})
	}
}

// TestUnitUntypedHintReported: a Bundle hint for a datastore with no known type cannot be
// searched; it is reported on the bus as a Range Failed ("no-known-type") and then acked.
func TestUnitUntypedHintReported(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		w := r.start("w1")
		b := w.hint(coalesce.Key{DatastoreID: testDS}, event.Mixed)
		r.advanceUntil("ack", 100*time.Millisecond, 10*time.Second, b.done)
		failed := r.bus.events(event.DetailTypeRangeFailed)
		if len(failed) != 1 || detail[event.RangeFailed](failed[0]).Reason != "no-known-type" || detail[event.RangeFailed](failed[0]).DatastoreID != testDS {
			t.Errorf("Range Failed reports %+v, want one no-known-type for the datastore", failed)
		}
		if s := w.pipe.Stats().Snapshot(); s.UntypedHints != 1 {
			t.Errorf("untyped hints %d, want 1", s.UntypedHints)
		}
	})
}

// TestUnitBulkDeleteReported: a `$bulk-delete` job (StartFHIRBulkDeleteJob) is reported as
// "Deletes Unresolved" (reason bulk-delete, count 0: unknown) for the type it names, or for
// every known type when it names none, over [epoch, its submission second + 1 s), and only
// then acked — while the bus is unavailable, it waits. Nothing is searched for it.
func TestUnitBulkDeleteReported(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		var down atomic.Bool
		r.bus.fail = func(_, _ int, e busEvent) error {
			if e.DetailType == event.DetailTypeDeletesUnresolved && down.Load() {
				return busUnavailable()
			}
			return nil
		}
		w := r.start("w1")
		w.write(obsKey, "")
		w.write(patKey, "")
		r.advance(10 * time.Second)
		searches := r.fhir.count("search") + r.fhir.count("history")

		down.Store(true)
		at := r.clock.Now().Truncate(time.Second)
		typed := w.hint(obsKey, event.BulkDelete)
		r.advance(5 * time.Second)
		if typed.done() {
			t.Fatal("the bulk delete was acked while its report could not be sent")
		}
		down.Store(false)
		r.advanceUntil("the typed bulk delete's ack", 100*time.Millisecond, 30*time.Second, typed.done)
		all := w.hint(coalesce.Key{DatastoreID: testDS}, event.BulkDelete)
		r.advanceUntil("the typeless bulk delete's ack", 100*time.Millisecond, 30*time.Second, all.done)

		got := map[string]int{}
		for _, e := range r.bus.events(event.DetailTypeDeletesUnresolved) {
			d := detail[event.DeletesUnresolved](e)
			if d.Reason != "bulk-delete" || d.Count != 0 || d.DatastoreID != testDS || d.From != "1970-01-01T00:00:00.000Z" {
				t.Errorf("report %+v, want bulk-delete, count 0, from the epoch", d)
			}
			if d.ResourceType == "Observation" && got["Observation"] == 0 && d.To != at.Add(time.Second).UTC().Format("2006-01-02T15:04:05.000Z") {
				t.Errorf("the typed report ends at %s, want the job's second + 1 s (%v)", d.To, at.Add(time.Second))
			}
			got[d.ResourceType]++
		}
		if got["Observation"] != 2 || got["Patient"] != 1 || len(got) != 2 {
			t.Errorf("reports per type %v, want Observation 2 (typed + typeless), Patient 1", got)
		}
		if s := w.pipe.Stats().Snapshot(); s.BulkDeletes != 3 {
			t.Errorf("bulk delete reports counted %d, want 3", s.BulkDeletes)
		}
		if n := r.fhir.count("search") + r.fhir.count("history"); n != searches {
			t.Errorf("%d searches and history reads for bulk deletes, want none", n-searches)
		}
	})
}

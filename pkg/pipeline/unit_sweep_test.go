package pipeline_test

import (
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
)

// TestUnitSweepFindsLostHints: writes whose CloudTrail hints never arrive, on a key that then
// goes quiet, are found by the next sweep — at most one interval plus settle late — and
// counted as found by sweeps; a sweep over a range with nothing new costs a count, no search.
func TestUnitSweepFindsLostHints(t *testing.T) {
	unit(t, func(c *pipeline.Config) { c.SweepInterval = 30 * time.Second }, func(t *testing.T, r *rig) {
		w := r.start("w1")
		r.advance(200 * time.Millisecond)
		_, first := w.write(obsKey, "") // makes the type known
		r.advanceUntil("first ack", 100*time.Millisecond, 30*time.Second, first.done)
		var lost []string
		for range 3 {
			id, _ := r.fhir.write(obsKey, "") // no hint: CloudTrail lost it
			lost = append(lost, id)
			r.advance(time.Second)
		}
		defer func() {
			if t.Failed() {
				t.Logf("stats %+v\nlogs:\n%s", w.pipe.Stats().Snapshot(), r.logs.String())
			}
		}()
		r.advanceUntil("the lost writes' events", time.Second, 30*time.Second+r.cfg.Timeline.Settle+5*time.Second, func() bool {
			for _, id := range lost {
				if !r.hasEvent(obsKey, id) {
					return false
				}
			}
			return true
		})
		s := w.pipe.Stats().Snapshot()
		if s.SweepFound != 3 {
			t.Errorf("found by sweeps %d, want the 3 writes whose hints were lost; stats %+v", s.SweepFound, s)
		}
		searches := r.fhir.count("search")
		r.advance(70 * time.Second) // two more sweeps, nothing written
		s = w.pipe.Stats().Snapshot()
		if s.SweepSkipped == 0 {
			t.Errorf("no sweep range was skipped on a matching count; stats %+v", s)
		}
		if n := r.fhir.count("search") - searches; n != 0 {
			t.Errorf("sweeps over ranges with nothing new cost %d searches (counts match: none needed)", n)
		}
		r.emittedOnce(4)
	})
}

// TestUnitSweepSharedByWorkers: with two workers, each datastore's sweep is marked by one of
// them per interval and each range searched once.
func TestUnitSweepSharedByWorkers(t *testing.T) {
	unit(t, func(c *pipeline.Config) { c.SweepInterval = 30 * time.Second }, func(t *testing.T, r *rig) {
		a, b := r.start("w1"), r.start("w2")
		r.advance(200 * time.Millisecond)
		_, first := a.write(obsKey, "")
		r.advanceUntil("first ack", 100*time.Millisecond, 30*time.Second, first.done)
		id, _ := r.fhir.write(obsKey, "")
		r.advanceUntil("the lost write's event", time.Second, 45*time.Second, func() bool { return r.hasEvent(obsKey, id) })
		sa, sb := a.pipe.Stats().Snapshot(), b.pipe.Stats().Snapshot()
		if got := sa.SweepFound + sb.SweepFound; got != 1 {
			t.Errorf("found by sweeps %d across the workers, want 1", got)
		}
		if got := r.fhir.returnedFor(obsKey); got != 2 {
			t.Errorf("the FHIR server returned %d resources, want each of the 2 writes once", got)
		}
		r.emittedOnce(2)
	})
}

// TestUnitLostHintsInATimelineGap: a key's traffic goes on while every hint of a stretch is
// lost, then hints resume. The gap is searched with the next hint's range (the timeline is
// contiguous, no sweep needed), and the changes there that no delivered hint's range reached
// are counted as found without a hint; those its neighbours' ranges reached are not (nothing
// can tell their hints were lost).
func TestUnitLostHintsInATimelineGap(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) { // sweeps off: the gap is found by the timeline
		w := r.start("w1")
		r.advance(200 * time.Millisecond)
		var acks []*ack
		var ids []string
		var times, hints []time.Time
		step := func(hinted bool) {
			times = append(times, r.clock.Now()) // the fake server writes at the clock's now
			id, _ := r.fhir.write(obsKey, "")
			ids = append(ids, id)
			if hinted {
				hints = append(hints, r.clock.Now())
				acks = append(acks, w.hint(obsKey, event.Update))
			}
			r.advance(500 * time.Millisecond)
		}
		for range 6 {
			step(true)
		}
		for range 20 { // 10 s of writes, every hint lost
			step(false)
		}
		for range 6 {
			step(true)
		}
		r.advanceUntil("every write on the bus, every hint acked", 500*time.Millisecond, time.Minute, func() bool {
			for _, id := range ids {
				if !r.hasEvent(obsKey, id) {
					return false
				}
			}
			for _, a := range acks {
				if !a.done() {
					return false
				}
			}
			return true
		})
		reached := func(at time.Time) bool {
			for _, h := range hints {
				if rng := r.hintRange(h); !at.Before(rng.From) && at.Before(rng.To) {
					return true
				}
			}
			return false
		}
		want := 0
		for _, at := range times {
			if !reached(at) {
				want++
			}
		}
		s := w.pipe.Stats().Snapshot()
		if s.SweepFound != int64(want) || want == 0 {
			t.Errorf("found without a hint %d; want %d (the gap's writes no delivered hint's range reached)", s.SweepFound, want)
		}
	})
}

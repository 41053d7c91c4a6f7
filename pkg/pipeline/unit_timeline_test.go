package pipeline_test

import (
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// TestUnitAckOnlyWhenCovered: a hint is acked once the shared timeline covers its range,
// never before — and that is as soon as its range settled (within a cadence).
func TestUnitAckOnlyWhenCovered(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		w := r.start("w1")
		r.advance(300 * time.Millisecond)
		at := r.clock.Now()
		id, a := w.write(obsKey, "")
		rng := r.hintRange(at)
		took := r.advanceUntil("ack", 100*time.Millisecond, 30*time.Second, func() bool {
			if a.done() && !r.tl.state(obsKey).Covers(rng) {
				r.t.Fatalf("acked at %v while the timeline %+v does not cover %+v", r.clock.Now().Sub(t0), r.tl.state(obsKey), rng)
			}
			return a.done()
		})
		// Searchable once its end is Settle old; then at most one cadence more.
		earliest := rng.To.Add(r.cfg.Timeline.Settle).Sub(at)
		if took < earliest || took > earliest+r.cfg.Timeline.Window+100*time.Millisecond {
			t.Errorf("acked %v after the write, want between %v and a cadence later", took, earliest)
		}
		if !r.hasEvent(obsKey, id) {
			t.Errorf("the write was not emitted: %v", r.changes())
		}
		r.emittedOnce(1)
	})
}

// TestUnitLateHintAckedWithoutSearch: a hint whose range the timeline covers already (a late
// or repeated record) is acked without a search, however many arrive.
func TestUnitLateHintAckedWithoutSearch(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		w := r.start("w1")
		r.advance(200 * time.Millisecond)
		at := r.clock.Now()
		_, first := w.write(obsKey, "")
		r.advanceUntil("first ack", 100*time.Millisecond, 30*time.Second, first.done)
		r.advance(5 * time.Second)
		searches := r.fhir.count("search")
		// The same hint again, as a redelivered record: its second was searched.
		var late []*ack
		for range 5 {
			late = append(late, w.hintAt(obsKey, event.Update, at))
		}
		r.advance(0)
		for i, a := range late {
			if !a.done() {
				t.Errorf("late hint %d not acked at once", i)
			}
		}
		if n := r.fhir.count("search") - searches; n != 0 {
			t.Errorf("late hints cost %d searches", n)
		}
	})
}

// TestUnitHintAfterIdleSearchesItsSecond: a hint arriving after the scheduler sat idle is
// filed at its own second, so its record is acked only after the write was searched. (The
// scheduler took the time at the top of its loop, before waiting: a hint after a quiet
// minute was filed a minute in the past, clamped there as "from the future", and acked
// as soon as that old range was covered — its write never searched.)
func TestUnitHintAfterIdleSearchesItsSecond(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		w := r.start("w1")
		_, first := w.write(obsKey, "")
		r.advanceUntil("first ack", 100*time.Millisecond, 30*time.Second, first.done)
		r.advance(time.Minute) // nothing due: the scheduler waits
		id, a := w.write(obsKey, "")
		r.advanceUntil("ack", 100*time.Millisecond, 30*time.Second, func() bool {
			if a.done() && !r.hasEvent(obsKey, id) {
				t.Fatalf("acked at %v before its write was emitted", r.clock.Now().Sub(t0))
			}
			return a.done()
		})
	})
}

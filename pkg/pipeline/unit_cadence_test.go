package pipeline_test

import (
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// TestUnitBusyKeyOneSearchPerCadence: a key hinted ten times a second for 20 s is searched
// at most once per cadence, and every change is emitted once.
func TestUnitBusyKeyOneSearchPerCadence(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		w := r.start("w1")
		var acks []*ack
		for range 200 {
			_, a := w.write(obsKey, "")
			acks = append(acks, a)
			r.advance(100 * time.Millisecond)
		}
		r.advanceUntil("every ack", 100*time.Millisecond, 30*time.Second, func() bool {
			for _, a := range acks {
				if !a.done() {
					return false
				}
			}
			return true
		})
		times := r.fhir.callTimes("search", obsKey)
		for i := 1; i < len(times); i++ {
			if gap := times[i].Sub(times[i-1]); gap < r.cfg.Timeline.Window {
				t.Errorf("searches %d and %d of the key %v apart, under the cadence %v", i-1, i, gap, r.cfg.Timeline.Window)
			}
		}
		// 20 s of hints and the settle after them: about 25 cadences, not 200 searches.
		if len(times) > 26 {
			t.Errorf("%d searches for 200 hints over 20 s", len(times))
		}
		if got := r.fhir.returnedFor(obsKey); got != 200 {
			t.Errorf("searches returned %d resources for 200 changed", got)
		}
		r.emittedOnce(200)
		t.Logf("%d searches, %d runs", len(times), w.pipe.Stats().Snapshot().Runs)
	})
}

// TestUnitTwoWorkersReadEachChangeOnce: two workers share the timelines, the FHIR server and
// dedup; hints of one key reach both (a key's records land on every shard). Between them they
// read each change once — resources returned by searches equal the resources changed — with
// one search per key and cadence, and every record of both is acked.
func TestUnitTwoWorkersReadEachChangeOnce(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		ws := []*worker{r.start("w1"), r.start("w2")}
		var acks []*ack
		n := 0
		for i := range 150 {
			for _, k := range []coalesce.Key{obsKey, patKey} {
				r.fhir.write(k, "")
				n++
				// Each hint to one worker, every third to both (a redelivery).
				acks = append(acks, ws[i%2].hint(k, event.Create))
				if i%3 == 0 {
					acks = append(acks, ws[(i+1)%2].hint(k, event.Create))
				}
			}
			r.advance(100 * time.Millisecond)
		}
		r.advanceUntil("every ack", 100*time.Millisecond, 30*time.Second, func() bool {
			for _, a := range acks {
				if !a.done() {
					return false
				}
			}
			return true
		})
		r.advance(30 * time.Second) // past every verification horizon: counts match, no re-read
		for _, k := range []coalesce.Key{obsKey, patKey} {
			if got := r.fhir.returnedFor(k); got != 150 {
				t.Errorf("%s: searches returned %d resources for 150 changed", k.ResourceType, got)
			}
			times := r.fhir.callTimes("search", k)
			for i := 1; i < len(times); i++ {
				if gap := times[i].Sub(times[i-1]); gap < r.cfg.Timeline.Window {
					t.Errorf("%s: searches %v apart (two workers searched the key at once?)", k.ResourceType, gap)
				}
			}
			if len(times) > 22 {
				t.Errorf("%s: %d searches over 15 s", k.ResourceType, len(times))
			}
		}
		r.emittedOnce(n)
		var searchesBy [2]int64
		for i, w := range ws {
			s := w.pipe.Stats().Snapshot()
			searchesBy[i] = s.Searches
			if s.Rereads != 0 {
				t.Errorf("%s re-read %d ranges; the counts should have matched", w.name, s.Rereads)
			}
		}
		t.Logf("searches by worker %v", searchesBy)
	})
}

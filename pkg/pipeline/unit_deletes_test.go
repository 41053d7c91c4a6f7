package pipeline_test

import (
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// createThenDelete creates an Observation with its hint, then deletes it with its hint, and
// returns once both records are acked: the delete's id.
func createThenDelete(r *rig, w *worker) string {
	r.t.Helper()
	r.advance(200 * time.Millisecond)
	id, created := w.write(obsKey, "")
	r.advanceUntil("create acked", 100*time.Millisecond, 30*time.Second, created.done)
	r.advance(3 * time.Second)
	r.fhir.remove(obsKey, id)
	deleted := w.hint(obsKey, event.Delete)
	r.advanceUntil("delete acked", 100*time.Millisecond, 30*time.Second, deleted.done)
	return id
}

// TestUnitDeletesResolvedOrReported: a delete hint becomes "FHIR Resource Deleted" where the
// server has type-level history; where it refuses history, "HealthLake CDC Deletes
// Unresolved" reports the hints (once), and the records are acked.
func TestUnitDeletesResolvedOrReported(t *testing.T) {
	for _, history := range []bool{true, false} {
		name := map[bool]string{true: "history", false: "no history"}[history]
		t.Run(name, func(t *testing.T) {
			unit(t, nil, func(t *testing.T, r *rig) {
				if !history {
					forbidden := realFHIRErrors(t)["forbidden"]
					r.fhir.fail = func(op string, _ coalesce.Key) error {
						if op == "history" {
							return forbidden
						}
						return nil
					}
				}
				w := r.start("w1")
				id := createThenDelete(r, w)
				r.advance(5 * time.Second)
				deletes := r.bus.events(event.DetailTypeDeleted)
				unresolved := r.bus.events(event.DetailTypeDeletesUnresolved)
				if history && (len(deletes) != 1 || detail[event.ChangeDetail](deletes[0]).ID != id || len(unresolved) != 0) {
					t.Errorf("with history: %d deletes %+v, %d unresolved; want the one delete", len(deletes), deletes, len(unresolved))
				}
				if !history && (len(deletes) != 0 || len(unresolved) != 1 ||
					detail[event.DeletesUnresolved](unresolved[0]).Count != 1 || detail[event.DeletesUnresolved](unresolved[0]).Reason != "forbidden") {
					t.Errorf("without history: %d deletes, unresolved %+v; want one report of 1", len(deletes), unresolved)
				}
				// Settled at the first read (found, or reported): no history read at the
				// verification horizon, however long we wait.
				r.advance(30 * time.Second)
				if s := w.pipe.Stats().Snapshot(); s.DeletesSettled != 0 {
					t.Errorf("%d history re-reads at the horizon for a delete settled at its first read", s.DeletesSettled)
				}
			})
		})
	}
}

// TestUnitDeletesSettledAtVerification: a delete hint that its first history read could not
// match is read again at the verification horizon. A delete the history index showed late
// (after the first read) is emitted then; a delete hint history still does not hold is reported as "Deletes
// Unresolved" with reason missing-from-history; a Bundle hint with no delete behind it is not. The
// records are acked at once either way (the report, not the ack, waits for the horizon).
func TestUnitDeletesSettledAtVerification(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		r.fhir.delay, r.fhir.historyLags = 6*time.Second, true // past the first read (range end + settle), before verify (10 s)
		w := r.start("w1")
		createThenDelete(r, w)
		if n := len(r.bus.events(event.DetailTypeDeleted)); n != 0 {
			t.Fatalf("%d deletes emitted before the history index showed the delete; the test needs the first read to miss it", n)
		}
		r.advanceUntil("late delete emitted", 100*time.Millisecond, 30*time.Second, func() bool {
			return len(r.bus.events(event.DetailTypeDeleted)) == 1
		})
		if s := w.pipe.Stats().Snapshot(); s.DeletesFoundLate != 1 || s.DeletesUnresolved != 0 {
			t.Errorf("found late %d, unresolved %d; want 1 and 0", s.DeletesFoundLate, s.DeletesUnresolved)
		}

		r.advance(20 * time.Second)
		phantom := w.hint(obsKey, event.Delete)                          // a DeleteResource hint with no delete in history
		bundle := w.hint(coalesce.Key{DatastoreID: testDS}, event.Mixed) // a Bundle that deleted nothing
		r.advanceUntil("phantom acked", 100*time.Millisecond, 30*time.Second, func() bool { return phantom.done() && bundle.done() })
		if n := len(r.bus.events(event.DetailTypeDeletesUnresolved)); n != 0 {
			t.Fatalf("%d unresolved reports before the verification horizon", n)
		}
		r.advanceUntil("phantom reported", 100*time.Millisecond, 30*time.Second, func() bool {
			return len(r.bus.events(event.DetailTypeDeletesUnresolved)) > 0
		})
		r.advance(20 * time.Second)
		un := r.bus.events(event.DetailTypeDeletesUnresolved)
		if len(un) != 1 {
			t.Fatalf("unresolved reports %+v; want one", un)
		}
		if d := detail[event.DeletesUnresolved](un[0]); d.Count != 1 || d.Reason != "missing-from-history" || d.Bundles != 0 {
			t.Errorf("unresolved reports %+v; want one of count 1, reason missing-from-history", un)
		}
		if n := len(r.bus.events(event.DetailTypeDeleted)); n != 1 {
			t.Errorf("%d deletes emitted; want still 1", n)
		}
		if s := w.pipe.Stats().Snapshot(); s.DeletesUnresolved != 1 {
			t.Errorf("unresolved counter %d; want 1", s.DeletesUnresolved)
		}
	})
}

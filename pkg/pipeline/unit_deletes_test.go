package pipeline_test

import (
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

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
				r.advance(200 * time.Millisecond)
				id, created := w.write(obsKey, "")
				r.advanceUntil("create acked", 100*time.Millisecond, 30*time.Second, created.done)
				r.advance(3 * time.Second)
				r.fhir.remove(obsKey, id)
				deleted := w.hint(obsKey, event.Delete)
				r.advanceUntil("delete acked", 100*time.Millisecond, 30*time.Second, deleted.done)
				r.advance(5 * time.Second)
				deletes := r.bus.events(event.DetailTypeDeleted)
				unresolved := r.bus.events(event.DetailTypeDeletesUnresolved)
				if history && (len(deletes) != 1 || deletes[0].D.ID != id || len(unresolved) != 0) {
					t.Errorf("with history: %d deletes %+v, %d unresolved; want the one delete", len(deletes), deletes, len(unresolved))
				}
				if !history && (len(deletes) != 0 || len(unresolved) != 1 || unresolved[0].D.Count != 1 || unresolved[0].D.Reason != "forbidden") {
					t.Errorf("without history: %d deletes, unresolved %+v; want one report of 1", len(deletes), unresolved)
				}
			})
		})
	}
}

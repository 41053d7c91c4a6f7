package pipeline_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
)

// TestUnitAllVersions: one resource updated 20 times within one settle period. With
// AllVersions every version reaches the bus, 2..21 in order after the create; without it
// one event stands for the 20 updates (the version the search shows).
func TestUnitAllVersions(t *testing.T) {
	for _, all := range []bool{true, false} {
		t.Run(map[bool]string{true: "all", false: "latest"}[all], func(t *testing.T) {
			unit(t, func(c *pipeline.Config) { c.AllVersions = all }, func(t *testing.T, r *rig) {
				w := r.start("w1")
				r.advance(200 * time.Millisecond)
				id, created := w.write(obsKey, "")
				r.advanceUntil("create acked", 100*time.Millisecond, 30*time.Second, created.done)
				r.advance(3 * time.Second)
				var last *ack
				for range 20 {
					r.fhir.write(obsKey, id)
					last = w.hint(obsKey, event.Update)
					r.advance(50 * time.Millisecond)
				}
				r.advanceUntil("updates acked", 100*time.Millisecond, 30*time.Second, last.done)
				r.advance(15 * time.Second) // past verification: nothing more may come
				var versions []string
				for _, e := range r.bus.events("") {
					if !e.isChange() {
						continue
					}
					if d := detail[event.ChangeDetail](e); d.ID == id {
						versions = append(versions, d.VersionID)
					}
				}
				want := []string{"1"}
				if all {
					for v := 2; v <= 21; v++ {
						want = append(want, strconv.Itoa(v))
					}
				} else {
					want = append(want, "21")
				}
				if len(versions) != len(want) {
					t.Fatalf("versions on the bus %v; want %v", versions, want)
				}
				for i := range want {
					if versions[i] != want[i] {
						t.Fatalf("versions on the bus %v; want %v in that order", versions, want)
					}
				}
				if n := r.fhir.count("instance-history"); all != (n > 0) {
					t.Errorf("instance-history reads %d with all=%v", n, all)
				}
			})
		})
	}
}

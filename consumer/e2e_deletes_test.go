package main

import (
	"context"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/simulate"
)

// TestE2EDeletes: 200 writes, then 40 of those resources deleted, each with its DeleteResource
// hint, in two datastores at once. Where the server has type-level history, every delete is
// on the bus as "FHIR Resource Deleted", once. Where it has none (the local server's knob
// typeHistory=false answers 400, as a server without type-level history may), nothing is
// emitted as deleted and "HealthLake CDC Deletes Unresolved" reports account for every one
// of the 40 deletes — never a silent ack.
func TestE2EDeletes(t *testing.T) {
	e := newE2E(t, 2)
	withHistory, without := stack.RandomHex(16), stack.RandomHex(16)
	stack.FHIRAdmin(t).Configure(without, stack.FHIRKnobs{TypeHistory: stack.Ptr(false)})
	e.startConsumer("deletes-1")
	types := []string{"Observation", "Patient"}
	var recs [][]byte
	for i := range 200 {
		for _, ds := range []string{withHistory, without} {
			recs = append(recs, e.write(ds, types[i%2], "", i))
		}
	}
	e.put(recs...)
	e.waitComplete(90 * time.Second)

	w, err := simulate.NewHTTPWriter(simulate.HTTPWriterOptions{Endpoint: e.fhir + "/datastore/{datastoreId}/r4/"})
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]map[string]bool{withHistory: {}, without: {}}
	recs = recs[:0]
	e.mu.Lock()
	writes := append([]e2eWrite(nil), e.writes...)
	e.mu.Unlock()
	for _, wr := range writes {
		if len(deleted[wr.DS]) == 40 {
			continue
		}
		at := time.Now().UTC()
		if _, err := w.Delete(context.Background(), wr.DS, wr.Type, wr.ID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		deleted[wr.DS][wr.Type+"/"+wr.ID] = true
		rec, err := cloudtrail.Encode(cloudtrail.Change{
			EventID: "ct-" + stack.RandomHex(10), DatastoreID: wr.DS, ResourceType: wr.Type, Operation: event.Delete,
			EventTime: at, Region: "us-east-1", Account: "123456789012",
		}, "eb-"+stack.RandomHex(10), "req-"+stack.RandomHex(6))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
		time.Sleep(20 * time.Millisecond) // spread over a few seconds, as a real workload is
	}
	e.put(recs...)

	var emitted map[string]int
	var unresolved int
	var reports []event.DeletesUnresolved
	stack.Eventually(t, 90*time.Second, "40 deletes emitted in one datastore and 40 reported in the other", func() bool {
		emitted, unresolved, reports = map[string]int{}, 0, nil
		for _, l := range stack.Recorded(t, e.source) {
			switch l.DetailType {
			case event.DetailTypeDeleted:
				d := stack.Detail[event.ChangeDetail](t, l)
				emitted[d.DatastoreID+"/"+d.ResourceType+"/"+d.ID]++
			case event.DetailTypeDeletesUnresolved:
				d := stack.Detail[event.DeletesUnresolved](t, l)
				reports = append(reports, d)
				if d.DatastoreID == without {
					unresolved += d.Count
				}
			}
		}
		return len(emitted) >= 40 && unresolved >= 40
	})
	time.Sleep(5 * time.Second) // past the verification horizon (3 s): settling adds nothing
	for _, l := range stack.Recorded(t, e.source) {
		if l.DetailType == event.DetailTypeDeletesUnresolved {
			if d := stack.Detail[event.DeletesUnresolved](t, l); d.DatastoreID == withHistory {
				t.Errorf("a Deletes Unresolved report for the datastore with history: %+v", d)
			}
		}
	}
	for k, n := range emitted {
		ds, rest := k[:32], k[33:]
		switch {
		case ds == without:
			t.Errorf("a delete emitted for the datastore without history: %s", rest)
		case !deleted[ds][rest]:
			t.Errorf("a delete emitted for a resource that was not deleted: %s", rest)
		case n != 1:
			t.Errorf("delete of %s emitted %d times", rest, n)
		}
	}
	if len(emitted) != 40 || unresolved != 40 {
		t.Errorf("%d deletes emitted (want 40); unresolved counts add up to %d (want 40) over %d reports", len(emitted), unresolved, len(reports))
	}
	for _, r := range reports {
		if r.DatastoreID == without && (r.Reason == "" || r.From >= r.To) {
			t.Errorf("report without a reason or range: %+v", r)
		}
	}
	t.Logf("40 deletes resolved through history; 40 unresolved reported in %d events", len(reports))
}

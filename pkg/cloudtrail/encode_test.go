package cloudtrail

import (
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

func TestEncodeRoundTrip(t *testing.T) {
	v := mustValidator(t)
	base := Change{
		EventID: "31feacd9-6646-4c4f-934b-83b0f6cf6188", DatastoreID: storeA, ResourceType: "Observation",
		EventTime: time.Date(2026, 11, 20, 9, 15, 2, 0, time.UTC), Region: "us-west-2", Account: "123456789012",
	}
	with := func(f func(c *Change)) Change {
		c := base
		f(&c)
		return c
	}
	for _, c := range []struct {
		name string
		in   Change
		want Change // what Decide gives back
	}{
		{"create", with(func(c *Change) { c.Operation = event.Create }), with(func(c *Change) { c.Operation, c.EventName = event.Create, "CreateResource" })},
		{"update", with(func(c *Change) { c.Operation = event.Update }), with(func(c *Change) { c.Operation, c.EventName = event.Update, "UpdateResource" })},
		{"delete", with(func(c *Change) { c.Operation = event.Delete }), with(func(c *Change) { c.Operation, c.EventName = event.Delete, "DeleteResource" })},
		{"patch", with(func(c *Change) { c.Operation, c.EventName = event.Update, "PatchResource" }),
			with(func(c *Change) { c.Operation, c.EventName = event.Update, "PatchResource" })},
		{"bulk delete", with(func(c *Change) { c.Operation = event.BulkDelete }),
			with(func(c *Change) { c.Operation, c.EventName = event.BulkDelete, "StartFHIRBulkDeleteJob" })},
		{"bulk delete of every type", with(func(c *Change) { c.Operation, c.ResourceType = event.BulkDelete, "" }),
			with(func(c *Change) {
				c.Operation, c.ResourceType, c.EventName, c.AllTypes = event.BulkDelete, "", "StartFHIRBulkDeleteJob", true
			})},
		{"bundle", with(func(c *Change) { c.Operation, c.ResourceType = event.Mixed, "" }),
			with(func(c *Change) {
				c.Operation, c.ResourceType, c.EventName, c.AllTypes = event.Mixed, "", "ProcessBundle", true
			})},
		{"update without type", with(func(c *Change) { c.Operation, c.ResourceType, c.EventName = event.Mixed, "", "UpdateResource" }),
			with(func(c *Change) {
				c.Operation, c.ResourceType, c.EventName, c.AllTypes = event.Mixed, "", "UpdateResource", true
			})},
		{"create of a Bundle", with(func(c *Change) { c.Operation, c.ResourceType, c.EventName = event.Mixed, "Bundle", "CreateResource" }),
			with(func(c *Change) {
				c.Operation, c.ResourceType, c.EventName, c.AllTypes = event.Mixed, "Bundle", "CreateResource", true
			})},
		{"unknown write", with(func(c *Change) { c.Operation, c.ResourceType, c.EventName = event.Mixed, "", "EraseResource" }),
			with(func(c *Change) {
				c.Operation, c.ResourceType, c.EventName, c.AllTypes, c.Unrecognised = event.Mixed, "", "EraseResource", true, true
			})},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := Encode(c.in, "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "e70389e9-d359-4e95-b701-ba93603eb5b5")
			if err != nil {
				t.Fatal(err)
			}
			if d := v.Decide(data); d.Outcome != Act || d.Change != c.want {
				t.Fatalf("Decide(Encode(c)) = %v %s %q\n%+v, want Act with\n%+v", d.Outcome, d.Reason, d.Detail, d.Change, c.want)
			}
		})
	}
	for _, bad := range []Change{
		{},
		with(func(c *Change) { c.Operation = event.Import }),
		with(func(c *Change) { c.Operation, c.EventName = event.Create, "ReadResource" }),       // not a write
		with(func(c *Change) { c.Operation, c.EventName = event.Create, "StartFHIRImportJob" }), // management
		with(func(c *Change) { c.Operation, c.EventName = event.Create, "PatchResource" }),      // a patch is an update
		with(func(c *Change) { c.Operation, c.EventName = event.Mixed, "Create2" }),             // not a label
		with(func(c *Change) { c.Operation = event.Create; c.ResourceType = "" }),               // Decide: mixed
		with(func(c *Change) { c.Operation = event.Mixed }),                                     // a Bundle names no Observation
	} {
		if _, err := Encode(bad, "x", "y"); err == nil {
			t.Errorf("Encode(%+v): want an error", bad)
		}
	}
}

func TestEncodeImportEventRoundTrip(t *testing.T) {
	v := mustValidator(t)
	for _, status := range []string{JobStatusCompleted, JobStatusCompletedWithErrors} {
		for _, submitted := range []time.Time{{}, time.Date(2026, 11, 20, 8, 50, 50, 986e6, time.UTC)} {
			c := Change{
				EventID: "36c865ef-da41-76ef-c882-3ba8dad8656b", DatastoreID: storeA, Operation: event.Import,
				EventTime: time.Date(2026, 11, 20, 9, 14, 42, 0, time.UTC), Region: "us-west-2", Account: "123456789012",
				JobID: jobA, JobStatus: status, JobSubmitTime: submitted,
			}
			data, err := EncodeImportEvent(c)
			if err != nil {
				t.Fatal(err)
			}
			want := c
			want.AllTypes = true
			want.EventName = map[string]string{JobStatusCompleted: "Import Job Completed", JobStatusCompletedWithErrors: "Import Job Completed With Errors"}[status]
			if d := v.Decide(data); d.Outcome != Act || d.Change != want {
				t.Errorf("Decide(EncodeImportEvent(c)) = %v %s %q\n%+v, want\n%+v", d.Outcome, d.Reason, d.Detail, d.Change, want)
			}
		}
	}
	for _, bad := range []Change{{}, {Operation: event.Create, JobStatus: JobStatusCompleted}, {Operation: event.Import, JobStatus: "FAILED"}} {
		if _, err := EncodeImportEvent(bad); err == nil {
			t.Errorf("EncodeImportEvent(%+v): want an error", bad)
		}
	}
}

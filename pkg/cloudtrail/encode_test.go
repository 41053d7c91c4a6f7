package cloudtrail

import (
	"testing"
	"time"
)

func TestEncodeRoundTrip(t *testing.T) {
	v, err := NewValidator(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []Operation{Create, Update, Delete} {
		c := Change{
			EventID: "31feacd9-6646-4c4f-934b-83b0f6cf6188", DatastoreID: "095d2262da454bb7347488c930e009eb",
			ResourceType: "Observation", Operation: op, EventTime: time.Date(2026, 11, 20, 9, 15, 2, 0, time.UTC),
			Region: "us-west-2", Account: "123456789012",
		}
		data, err := Encode(c, "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "e70389e9-d359-4e95-b701-ba93603eb5b5")
		if err != nil {
			t.Fatal(err)
		}
		d := v.Decide(data)
		if d.Outcome != Act || d.Change != c {
			t.Fatalf("%v: Decide(Encode(c)) = %v %s %q %+v, want Act with %+v", op, d.Outcome, d.Reason, d.Detail, d.Change, c)
		}
	}
	if _, err := Encode(Change{}, "x", "y"); err == nil {
		t.Fatal("encoding a change without an operation: want an error")
	}
}

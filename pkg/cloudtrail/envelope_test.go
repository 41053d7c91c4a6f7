package cloudtrail

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// WrapRecord is Encode's other direction for records CloudTrail wrote: a fixture's CloudTrail
// record wrapped again is the fixture (but for the envelope id), and decides the same.
func TestWrapRecord(t *testing.T) {
	for _, name := range []string{"bundle-batch.json", "patch-observation.json", "create-patient.json", "ignore-failed-create.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			ID     string          `json:"id"`
			Detail json.RawMessage `json:"detail"`
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		got, err := WrapRecord(env.Detail, env.ID)
		if err != nil {
			t.Fatal(err)
		}
		var want, gotC bytes.Buffer
		json.Compact(&want, b)
		json.Compact(&gotC, got)
		if want.String() != gotC.String() {
			t.Errorf("%s:\n%s\nwant\n%s", name, gotC.String(), want.String())
		}
		if !bytes.Contains(got, env.Detail) {
			t.Errorf("%s: the record is not in the envelope byte for byte", name)
		}
	}
	// Missing fields stay empty and Decide names them; only a non-object is an error.
	got, err := WrapRecord([]byte(`{"eventSource":"healthlake.amazonaws.com","eventName":"CreateResource","awsRegion":7,"eventID":"e","eventTime":"2026-11-20T09:15:02Z","requestParameters":{"datastoreId":"095d2262da454bb7347488c930e009eb","resourceType":"Patient"},"responseElements":{"statusCode":201},"recipientAccountId":"123456789012"}`), "x")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewValidator(nil)
	if d := v.Decide(got); d.Outcome != Reject {
		t.Errorf("record without its fields: %v %v", d.Outcome, d.Reason)
	}
	if _, err := WrapRecord([]byte(`[1]`), "x"); err == nil {
		t.Error("an array wrapped")
	}
}

package simulate

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestBody(t *testing.T) {
	for _, typ := range SupportedTypes() {
		t.Run(typ, func(t *testing.T) {
			create, err := Body(typ, 99, 0, "", "Patient/p-1")
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Body(typ, 99, 0, "", "Patient/p-1")
			if !bytes.Equal(create, again) {
				t.Error("same seed and version, different bodies")
			}
			other, _ := Body(typ, 100, 0, "", "Patient/p-1")
			if bytes.Equal(create, other) {
				t.Error("different seeds, same body")
			}
			update, err := Body(typ, 99, 1, "the-id", "Patient/p-1")
			if err != nil {
				t.Fatal(err)
			}
			update2, _ := Body(typ, 99, 2, "the-id", "Patient/p-1")
			if bytes.Equal(update, update2) {
				t.Error("versions 1 and 2 are the same body")
			}

			var c, u map[string]any
			if err := json.Unmarshal(create, &c); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(update, &u); err != nil {
				t.Fatal(err)
			}
			if c["resourceType"] != typ || u["resourceType"] != typ {
				t.Errorf("resourceType %v / %v", c["resourceType"], u["resourceType"])
			}
			if _, ok := c["id"]; ok {
				t.Error("a create carries an id")
			}
			if u["id"] != "the-id" {
				t.Errorf("update id %v", u["id"])
			}
			if !strings.Contains(string(create), `"code":"synthetic"`) {
				t.Error("no synthetic tag")
			}
			if typ != "Patient" && typ != "Practitioner" && typ != "Organization" && !strings.Contains(string(create), `"reference":"Patient/p-1"`) {
				t.Error("no patient reference")
			}
		})
	}
	if _, err := Body("Medication", 1, 0, "", ""); err == nil {
		t.Error("unsupported type: no error")
	}
	// Without a patient, a subject is a display-only reference (Condition.subject is 1..1).
	b, _ := Body("Condition", 1, 0, "", "")
	if !strings.Contains(string(b), `"subject":{"display":`) {
		t.Errorf("no display-only subject: %s", b)
	}
}

// What stays and what changes between versions: the Observation's code and time stay, the
// value and status change.
func TestBodyVersionsKeepIdentity(t *testing.T) {
	type obs struct {
		Status string `json:"status"`
		Code   struct {
			Text string `json:"text"`
		} `json:"code"`
		Effective string `json:"effectiveDateTime"`
		Value     struct {
			Value float64 `json:"value"`
		} `json:"valueQuantity"`
	}
	var v [3]obs
	for i := range v {
		b, _ := Body("Observation", 5, i, "", "Patient/x")
		if err := json.Unmarshal(b, &v[i]); err != nil {
			t.Fatal(err)
		}
	}
	if v[0].Code != v[1].Code || v[1].Code != v[2].Code || v[0].Effective != v[2].Effective {
		t.Errorf("code or time changed between versions: %+v", v)
	}
	if v[0].Status != "final" || v[1].Status != "amended" || v[1].Value == v[2].Value {
		t.Errorf("updates do not change status and value: %+v", v)
	}
}

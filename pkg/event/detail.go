package event

import (
	"encoding/json"
	"time"
)

// ChangeDetail is the Detail of a "FHIR Resource Created/Updated/Deleted" entry, the output
// contract's main type: Builder.Entry writes it, and readers (verification, tests) decode it.
// The field order is the JSON order.
type ChangeDetail struct {
	DatastoreID  string    `json:"datastoreId"`
	ResourceType string    `json:"resourceType"`
	ID           string    `json:"id"`
	VersionID    string    `json:"versionId"` // "" for a delete whose history entry has none
	LastUpdated  Timestamp `json:"lastUpdated"`
	Action       Operation `json:"action"`
	// Resource is the FHIR JSON of the version, embedded as JSON; absent for deletes and when
	// ContentOmitted says why.
	Resource       json.RawMessage `json:"resource,omitempty"`
	ContentOmitted string          `json:"contentOmitted,omitempty"` // OmittedIDOnly or OmittedSize
	Trigger        TriggerDetail   `json:"trigger"`
	TraceParent    string          `json:"traceparent,omitempty"`
}

// TriggerDetail is the "trigger" of a ChangeDetail: the wire form of a Trigger. EventIDs holds
// at most MaxTriggerEventIDs ids (never null); EventCount is the full count.
type TriggerDetail struct {
	EventIDs   []string  `json:"eventIds"`
	EventCount int       `json:"eventCount"`
	From       Timestamp `json:"from,omitzero"`
	To         Timestamp `json:"to,omitzero"`
}

// Rejected is the detail of a "HealthLake CDC Record Rejected" event (see Builder.Rejected):
// where the record is and why it was acked unused — never its data.
type Rejected struct {
	Reason         string `json:"reason"`
	Detail         string `json:"detail,omitempty"`
	ShardID        string `json:"shardId"`
	SequenceNumber string `json:"sequenceNumber"`
}

// Timestamp is a time of the output contract: RFC 3339 in UTC with milliseconds, like
// HealthLake's meta.lastUpdated ("2026-03-04T05:06:07.089Z"), so a detail's lastUpdated reads
// like the resource's own. time.Time's encoding would drop trailing zeros of the fraction and
// keep the zone; the zero time encodes as "" and "" decodes as the zero time. Decoding accepts
// any RFC 3339 time.
type Timestamp struct{ time.Time }

// MarshalJSON writes t as RFC 3339 in UTC with milliseconds.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + formatTime(t.Time) + `"`), nil
}

// UnmarshalJSON reads an RFC 3339 time; "" and null are the zero time.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if s := string(b); s == `""` || s == "null" {
		t.Time = time.Time{}
		return nil
	}
	return t.Time.UnmarshalJSON(b)
}

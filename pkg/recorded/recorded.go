// Package recorded is the line format of the local EventBridge recorder's output file: one
// JSON object a line for every entry it accepted, in the order it received them. The recorder
// (deploy/local/recorder) writes it; `producer verify` (pkg/verify) and the tests read it. It is
// a package of its own, with no dependencies, because a shipped program and a test-only helper
// (deploy/local/stack) both import it and the recorder should not pull in either.
package recorded

import (
	"encoding/json"
	"time"
)

// Line is one line of the file. The field order is the JSON order. Detail is the entry's Detail,
// compacted; decode it by DetailType (the output contract's types are in pkg/event).
type Line struct {
	Received     time.Time       `json:"received"` // when the recorder got the call, UTC
	EventID      string          `json:"eventId"`
	EventBusName string          `json:"eventBusName"` // "default" when the entry named none
	Source       string          `json:"source"`
	DetailType   string          `json:"detailType"`
	Time         time.Time       `json:"time"`      // the entry's Time, else Received (as AWS does), UTC
	Resources    []string        `json:"resources"` // never null
	Detail       json.RawMessage `json:"detail"`
	TraceHeader  string          `json:"traceHeader,omitempty"`
}

package event

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// RangeFailed is the detail of a "HealthLake CDC Range Failed" event. It names a key, a
// `_lastUpdated` range and why its search failed — never a resource or a search result.
type RangeFailed struct {
	DatastoreID  string `json:"datastoreId"`
	ResourceType string `json:"resourceType"`
	From         string `json:"from"`
	To           string `json:"to"`
	// Reason is a short stable code of the failure (e.g. "forbidden", "not-found",
	// "malformed-bundle"); Detail a human text, cut to MaxRejectedDetailBytes.
	Reason   string `json:"reason"`
	Detail   string `json:"detail,omitempty"`
	Attempts int    `json:"attempts"`
}

// RangeFailed builds the "HealthLake CDC Range Failed" entry for a parked range, at time at.
func (b Builder) RangeFailed(d RangeFailed, at time.Time) types.PutEventsRequestEntry {
	d.Detail = truncate(d.Detail, MaxRejectedDetailBytes)
	return b.operational(DetailTypeRangeFailed, d, at)
}

package event

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// Watermark is the detail of a "HealthLake CDC Watermark" event: every change of every known
// type of the datastore with meta.lastUpdated before LowWatermark has been searched, verified
// and emitted — before this event was put. Types gives the same per resource type. Times are
// RFC 3339 with milliseconds, UTC.
type Watermark struct {
	DatastoreID  string            `json:"datastoreId"`
	LowWatermark string            `json:"lowWatermark"`
	Types        map[string]string `json:"types,omitempty"`
	// HeldBy names what holds the watermark back when a range of the datastore is parked.
	HeldBy string `json:"heldBy,omitempty"`
}

// Watermark builds the "HealthLake CDC Watermark" entry, at time at.
func (b Builder) Watermark(d Watermark, at time.Time) types.PutEventsRequestEntry {
	return b.operational(DetailTypeWatermark, d, at)
}

// DeletesUnresolved is the detail of a "HealthLake CDC Deletes Unresolved" event: Count
// DeleteResource hints of the type in [From, To) whose resources history could not name
// (Reason: "missing-from-history" when history, read again at the verification horizon, holds fewer
// deletes than there were hints; otherwise why history could not be read, e.g. "forbidden").
// Bundles counts hints in the range that may have deleted any number of the type's resources
// (Bundles, typeless writes) where history could not be read. Consumers reconcile them, e.g.
// by reading the ids they hold for that type.
type DeletesUnresolved struct {
	DatastoreID  string `json:"datastoreId"`
	ResourceType string `json:"resourceType"`
	From         string `json:"from"`
	To           string `json:"to"`
	Count        int    `json:"count"`
	Bundles      int    `json:"bundles,omitempty"`
	Reason       string `json:"reason"`
}

// DeletesUnresolved builds the "HealthLake CDC Deletes Unresolved" entry, at time at.
func (b Builder) DeletesUnresolved(d DeletesUnresolved, at time.Time) types.PutEventsRequestEntry {
	return b.operational(DetailTypeDeletesUnresolved, d, at)
}

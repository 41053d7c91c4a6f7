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

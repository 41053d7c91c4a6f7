package event_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

func ExampleBuilder_Entry() {
	b, err := event.NewBuilder(event.Options{
		BusName: "healthlake-cdc",
		Region:  "us-east-1",
		Account: "123456789012",
	})
	if err != nil {
		panic(err)
	}
	lastUpdated := time.Date(2026, 3, 4, 5, 6, 7, 89_000_000, time.UTC)
	e, err := b.Entry(event.Change{
		DatastoreID:  "0123456789abcdef0123456789abcdef",
		ResourceType: "Observation",
		ID:           "obs-1",
		VersionID:    "1",
		LastUpdated:  lastUpdated,
		Action:       event.ActionFor("1", true, false),
		Resource:     json.RawMessage(`{"resourceType":"Observation","id":"obs-1","status":"final"}`),
		Trigger: event.Trigger{
			EventIDs: []string{"2f0e1c55-6b0e-4c8e-9a8e-0c7c3a1f9d11"},
			From:     lastUpdated.Truncate(time.Second).Add(-2 * time.Second),
			To:       lastUpdated.Truncate(time.Second).Add(6 * time.Second),
		},
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(*e.Source, "|", *e.DetailType, "|", *e.EventBusName)
	fmt.Println(e.Resources[0])
	fmt.Println(e.Time.Format(time.RFC3339Nano))
	var detail bytes.Buffer
	_ = json.Indent(&detail, []byte(*e.Detail), "", "  ")
	fmt.Println(detail.String())
	// Output:
	// healthlake.cdc | FHIR Resource Created | healthlake-cdc
	// arn:aws:healthlake:us-east-1:123456789012:datastore/fhir/0123456789abcdef0123456789abcdef
	// 2026-03-04T05:06:07.089Z
	// {
	//   "datastoreId": "0123456789abcdef0123456789abcdef",
	//   "resourceType": "Observation",
	//   "id": "obs-1",
	//   "versionId": "1",
	//   "lastUpdated": "2026-03-04T05:06:07.089Z",
	//   "action": "create",
	//   "resource": {
	//     "resourceType": "Observation",
	//     "id": "obs-1",
	//     "status": "final"
	//   },
	//   "trigger": {
	//     "eventIds": [
	//       "2f0e1c55-6b0e-4c8e-9a8e-0c7c3a1f9d11"
	//     ],
	//     "eventCount": 1,
	//     "from": "2026-03-04T05:06:05.000Z",
	//     "to": "2026-03-04T05:06:13.000Z"
	//   },
	//   "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	// }
}

package event_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

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

// A reader of the bus decodes an entry's Detail into the contract's own types, chosen by the
// DetailType; the resource stays raw JSON until it is needed.
func ExampleChangeDetail() {
	b, err := event.NewBuilder(event.Options{Region: "us-east-1", Account: "123456789012"})
	if err != nil {
		panic(err)
	}
	lastUpdated := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	e, err := b.Entry(event.Change{
		DatastoreID: "0123456789abcdef0123456789abcdef", ResourceType: "Observation", ID: "obs-1",
		VersionID: "2", LastUpdated: lastUpdated, Action: event.Update,
		Resource: json.RawMessage(`{"resourceType":"Observation","id":"obs-1"}`),
		Trigger:  event.Trigger{EventIDs: []string{"e1", "e2"}, From: lastUpdated.Add(-time.Second), To: lastUpdated.Add(time.Second)},
	})
	if err != nil {
		panic(err)
	}
	r := b.Rejected("undecodable", "not JSON", "shardId-000000000000", "4955", lastUpdated)

	for _, e := range []types.PutEventsRequestEntry{e, r} {
		switch *e.DetailType {
		case event.DetailTypeCreated, event.DetailTypeUpdated, event.DetailTypeDeleted:
			var d event.ChangeDetail
			if err := json.Unmarshal([]byte(*e.Detail), &d); err != nil {
				panic(err)
			}
			fmt.Println(d.Action, d.ResourceType+"/"+d.ID, "version", d.VersionID, "at", d.LastUpdated.Format(time.RFC3339))
			fmt.Println("  trigger:", d.Trigger.EventCount, "events,", d.Trigger.To.Sub(d.Trigger.From.Time), "searched;", len(d.Resource), "bytes of resource")
		case event.DetailTypeRejected:
			var d event.Rejected
			if err := json.Unmarshal([]byte(*e.Detail), &d); err != nil {
				panic(err)
			}
			fmt.Println("rejected:", d.Reason, "at", d.ShardID, d.SequenceNumber)
		}
	}
	// Output:
	// update Observation/obs-1 version 2 at 2026-03-04T05:06:07Z
	//   trigger: 2 events, 2s searched; 43 bytes of resource
	// rejected: undecodable at shardId-000000000000 4955
}

package cloudtrail_test

import (
	"fmt"
	"strings"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
)

func ExampleValidator_Decide() {
	// Act only on one datastore; an empty allow-list would accept any.
	v, err := cloudtrail.NewValidator([]string{"095d2262da454bb7347488c930e009eb"})
	if err != nil {
		panic(err)
	}

	// One Kinesis record's data: the EventBridge event the rule forwards (trimmed; the real
	// one also carries userIdentity, tlsDetails and so on, which are not read).
	const record = `{
	  "detail-type": "AWS API Call via CloudTrail",
	  "source": "aws.healthlake", "account": "123456789012", "region": "us-west-2",
	  "detail": {
	    "eventTime": "2026-11-20T09:15:02Z",
	    "eventSource": "healthlake.amazonaws.com",
	    "eventName": "CreateResource",
	    "requestParameters": {
	      "datastoreId": "095d2262da454bb7347488c930e009eb",
	      "resourceType": "Patient",
	      "resourceId": "HIDDEN_DUE_TO_SECURITY_REASONS"
	    },
	    "responseElements": {"statusCode": 201},
	    "eventID": "31feacd9-6646-4c4f-934b-83b0f6cf6188"
	  }
	}`

	d := v.Decide([]byte(record))
	switch d.Outcome {
	case cloudtrail.Act:
		c := d.Change
		fmt.Println(d.Outcome, c.Operation, c.DatastoreID, c.ResourceType, c.EventTime.Format("15:04:05"))
	default: // Skip or Reject: ack; count by d.Reason; log d.Detail (no PHI in it)
		fmt.Println(d.Outcome, d.Reason, d.Detail)
	}

	// A search is skipped; a resource type that is no FHIR R4 type is rejected.
	fmt.Println(v.Decide([]byte(strings.Replace(record, "CreateResource", "SearchWithGet", 1))).Reason)
	fmt.Println(v.Decide([]byte(strings.Replace(record, `"Patient"`, `"Patient/../x"`, 1))).Reason)
	// Output:
	// act create 095d2262da454bb7347488c930e009eb Patient 09:15:02
	// not-a-mutation
	// bad-resource-type
}

func ExampleValidator_Decide_import() {
	v, err := cloudtrail.NewValidator(nil)
	if err != nil {
		panic(err)
	}
	// HealthLake sends this straight to EventBridge; the rule forwards it into the stream.
	const record = `{
	  "id": "36c865ef-da41-76ef-c882-3ba8dad8656b", "detail-type": "Import Job Completed",
	  "source": "aws.healthlake", "account": "123456789012", "time": "2026-11-20T09:14:42Z",
	  "region": "us-west-2",
	  "detail": {
	    "jobId": "08c60716d6321710893ff88410e902c2", "submitTime": "2026-11-20T08:50:50.986Z",
	    "datastoreId": "095d2262da454bb7347488c930e009eb"
	  }
	}`
	c := v.Decide([]byte(record)).Change
	fmt.Println(c.Operation, c.AllTypes, c.JobID, c.JobStatus, c.JobSubmitTime.Format("15:04:05.000"), c.EventTime.Format("15:04:05"))
	// Output:
	// import true 08c60716d6321710893ff88410e902c2 COMPLETED 08:50:50.986 09:14:42
}

package cloudtrail

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// Encode returns the Kinesis record data an EventBridge rule delivers for c: the
// "AWS API Call via CloudTrail" envelope around the CloudTrail record of one successful
// HealthLake call, shaped like the fixtures (resourceId hidden, eventTime in whole seconds).
// envelopeID is the EventBridge event id; requestID the API request id. The producer uses it
// where no real CloudTrail exists.
//
// The eventName is c.EventName, or, when that is empty, CreateResource, UpdateResource,
// DeleteResource, ProcessBundle or StartFHIRBulkDeleteJob for Create, Update, Delete, Mixed or
// BulkDelete. So Encode makes
// PatchResource (EventName "PatchResource", Operation Update), Bundle-shaped hints
// (ProcessBundle, or any mutation, with an empty ResourceType: no resourceType is written) and
// unknown write-like names (any letters-only name Decide does not know) as well. The name must
// agree with the operation Decide would give it, so that Decide(Encode(c)) gives c back with
// EventName, AllTypes and Unrecognised filled in.
func Encode(c Change, envelopeID, requestID string) ([]byte, error) {
	name := c.EventName
	if name == "" {
		name = map[event.Operation]string{event.Create: "CreateResource", event.Update: "UpdateResource", event.Delete: "DeleteResource", event.Mixed: "ProcessBundle", event.BulkDelete: "StartFHIRBulkDeleteJob"}[c.Operation]
	}
	if !isLabel(name, false) {
		return nil, fmt.Errorf("cloudtrail: encode: operation %v, event name %q: want a letters-only name", c.Operation, name)
	}
	class, op := classify(name)
	if class != classMutation && class != classUnknown {
		return nil, fmt.Errorf("cloudtrail: encode: %s is not a write Decide acts on", name)
	}
	if (c.ResourceType == "" || c.ResourceType == "Bundle") && op != event.BulkDelete {
		op = event.Mixed
	}
	if op == event.Mixed && c.ResourceType != "" && c.ResourceType != "Bundle" {
		return nil, fmt.Errorf("cloudtrail: encode: %s touches any type; Decide drops resource type %q", name, c.ResourceType)
	}
	if op != c.Operation {
		return nil, fmt.Errorf("cloudtrail: encode: %s with resource type %q is decided as %v, not %v", name, c.ResourceType, op, c.Operation)
	}
	status := 200
	switch op {
	case event.Create:
		status = 201
	case event.Delete:
		status = 204
	case event.BulkDelete:
		status = 202 // an asynchronous job, accepted
	}
	at := c.EventTime.UTC().Truncate(time.Second).Format(time.RFC3339)
	type params struct {
		DatastoreID  string `json:"datastoreId"`
		ResourceType string `json:"resourceType,omitempty"`
		ResourceID   string `json:"resourceId,omitempty"`
	}
	type response struct {
		StatusCode int `json:"statusCode"`
	}
	type identity struct {
		Type        string `json:"type"`
		PrincipalID string `json:"principalId"`
		AccountID   string `json:"accountId"`
	}
	type detail struct {
		EventVersion       string   `json:"eventVersion"`
		UserIdentity       identity `json:"userIdentity"`
		EventTime          string   `json:"eventTime"`
		EventSource        string   `json:"eventSource"`
		EventName          string   `json:"eventName"`
		AWSRegion          string   `json:"awsRegion"`
		RequestParameters  params   `json:"requestParameters"`
		ResponseElements   response `json:"responseElements"`
		RequestID          string   `json:"requestID"`
		EventID            string   `json:"eventID"`
		ReadOnly           bool     `json:"readOnly"`
		EventType          string   `json:"eventType"`
		ManagementEvent    bool     `json:"managementEvent"`
		RecipientAccountID string   `json:"recipientAccountId"`
		EventCategory      string   `json:"eventCategory"`
	}
	rp := params{DatastoreID: c.DatastoreID}
	if c.ResourceType != "" {
		// Modelled: a Bundle POST to the base URL has no type and no single resource id.
		rp.ResourceType, rp.ResourceID = c.ResourceType, "HIDDEN_DUE_TO_SECURITY_REASONS"
	}
	return json.Marshal(eventBridgeEvent[detail]{
		eventHead: eventHead{
			Version: "0", ID: envelopeID, DetailType: detailTypeAPICall, Source: "aws.healthlake",
			Account: c.Account, Time: at, Region: c.Region, Resources: []string{},
		},
		Detail: detail{
			EventVersion: "1.08",
			UserIdentity: identity{Type: "AssumedRole", PrincipalID: "AROAEXAMPLEID:healthlake-cdc-producer", AccountID: c.Account},
			EventTime:    at, EventSource: "healthlake.amazonaws.com", EventName: name, AWSRegion: c.Region,
			RequestParameters: rp,
			ResponseElements:  response{StatusCode: status},
			RequestID:         requestID, EventID: c.EventID, EventType: "AwsApiCall", ManagementEvent: true,
			RecipientAccountID: c.Account, EventCategory: "Management",
		},
	})
}

// EncodeImportEvent returns the Kinesis record data for an "Import Job Completed" (c.JobStatus
// JobStatusCompleted) or "Import Job Completed With Errors" (JobStatusCompletedWithErrors)
// event, as HealthLake sends it to EventBridge and the rule forwards it: c.EventID is the
// EventBridge event id, c.EventTime its time (whole seconds), c.JobSubmitTime the detail's
// submitTime (milliseconds; omitted when zero). c.Operation must be Import. Decide gives c back
// with EventName and AllTypes filled in. The producer puts these after an import it simulated.
func EncodeImportEvent(c Change) ([]byte, error) {
	if c.Operation != event.Import {
		return nil, fmt.Errorf("cloudtrail: encode import event: operation %v, want import", c.Operation)
	}
	detailType := map[string]string{
		JobStatusCompleted: DetailTypeImportJobCompleted, JobStatusCompletedWithErrors: DetailTypeImportJobCompletedWithErrors,
	}[c.JobStatus]
	if detailType == "" {
		return nil, fmt.Errorf("cloudtrail: encode import event: job status %q, want %s or %s", c.JobStatus, JobStatusCompleted, JobStatusCompletedWithErrors)
	}
	type input struct {
		S3URI string `json:"s3Uri"`
	}
	type detail struct {
		JobID           string `json:"jobId"`
		SubmitTime      string `json:"submitTime,omitempty"`
		DatastoreID     string `json:"datastoreId"`
		InputDataConfig input  `json:"inputDataConfig"`
	}
	d := detail{JobID: c.JobID, DatastoreID: c.DatastoreID, InputDataConfig: input{S3URI: "s3://healthlake-cdc-simulated-import/input/"}}
	if !c.JobSubmitTime.IsZero() {
		d.SubmitTime = c.JobSubmitTime.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return json.Marshal(eventBridgeEvent[detail]{
		eventHead: eventHead{
			Version: "0", ID: c.EventID, DetailType: detailType, Source: "aws.healthlake", Account: c.Account,
			Time: c.EventTime.UTC().Truncate(time.Second).Format(time.RFC3339), Region: c.Region,
			// The documented ARN form of a HealthLake datastore.
			Resources: []string{"arn:aws:healthlake:" + c.Region + ":" + c.Account + ":datastore/fhir/" + c.DatastoreID},
		},
		Detail: d,
	})
}

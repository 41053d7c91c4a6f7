package cloudtrail

import (
	"strconv"
	"time"
)

// Outcome is what the consumer does with a record. The zero value is not a valid outcome, so a
// Decision that was never filled in is never taken for Act.
type Outcome int

const (
	// Act: a successful HealthLake resource mutation whose fields all passed validation.
	Act Outcome = iota + 1
	// Skip: a well-formed record the consumer has no use for; ack it and count it as ignored.
	Skip
	// Reject: a broken or hostile record; ack it, count it as rejected and report it.
	Reject
)

func (o Outcome) String() string {
	switch o {
	case Act:
		return "act"
	case Skip:
		return "skip"
	case Reject:
		return "reject"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Reason says why a record was skipped or rejected. The values are stable and few, so they can
// be used as a metric label; the specifics (which field) go into Decision.Detail.
type Reason string

// Skip reasons.
const (
	// NotHealthLake: source is not aws.healthlake, or detail.eventSource is not
	// healthlake.amazonaws.com.
	NotHealthLake Reason = "not-healthlake"
	// NotAMutation: any event name other than CreateResource, UpdateResource, DeleteResource
	// (ReadResource, SearchWithGet, SearchWithPost, GetCapabilities, datastore management...).
	NotAMutation Reason = "not-a-mutation"
	// FailedCall: detail.errorCode is present, responseElements is null or absent, or
	// responseElements.statusCode is not 2xx. Nothing changed, so there is nothing to find.
	FailedCall Reason = "failed-call"
)

// Reject reasons.
const (
	// TooLarge: the data is above MaxDataSize; no Kinesis record can be that big.
	TooLarge Reason = "too-large"
	// Undecodable: not JSON, truncated, or not a JSON object.
	Undecodable Reason = "undecodable"
	// MissingField: a field the decision needs is absent or null.
	MissingField Reason = "missing-field"
	// BadFieldType: a field the decision needs has the wrong JSON type (a number where a string
	// belongs, say).
	BadFieldType Reason = "bad-field-type"
	// BadField: eventID, account, region or statusCode is not in the shape AWS writes it.
	BadField Reason = "bad-field"
	// BadEventTime: detail.eventTime is not an RFC 3339 time.
	BadEventTime Reason = "bad-event-time"
	// BadDatastoreID: requestParameters.datastoreId is not exactly 32 lower-case hex characters.
	BadDatastoreID Reason = "bad-datastore-id"
	// BadResourceType: requestParameters.resourceType is not a FHIR R4 resource type name.
	BadResourceType Reason = "bad-resource-type"
	// DatastoreNotAllowed: a well-formed datastore id outside the configured allow-list.
	DatastoreNotAllowed Reason = "datastore-not-allowed"
)

// Operation is the kind of change a mutation made.
type Operation int

const (
	Create Operation = iota + 1
	Update
	Delete
)

// String returns "create", "update" or "delete": the action names of the output contract.
func (op Operation) String() string {
	switch op {
	case Create:
		return "create"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return "Operation(" + strconv.Itoa(int(op)) + ")"
}

// Change is one validated HealthLake mutation: the hint that some resource of ResourceType in
// DatastoreID changed at EventTime. CloudTrail never says which resource.
//
// Every field passed validation, so DatastoreID (32 lower-case hex) and ResourceType (an R4
// type name) are safe to put into a URL path.
type Change struct {
	EventID      string // detail.eventID, the CloudTrail event id (a record may repeat it)
	DatastoreID  string
	ResourceType string
	Operation    Operation
	EventTime    time.Time // UTC, whole seconds (CloudTrail has no finer precision)
	Region       string    // the EventBridge envelope's region
	Account      string    // the EventBridge envelope's account
}

// Decision is the verdict on one record.
type Decision struct {
	Outcome Outcome
	Reason  Reason // empty for Act
	// Detail is for humans (logs, the rejected-record report): which field and what is wrong
	// with it. It never contains a value taken from the record, so it carries no PHI.
	Detail string
	Change Change // set only for Act
}

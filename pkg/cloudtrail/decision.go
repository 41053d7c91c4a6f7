package cloudtrail

import (
	"strconv"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
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
	// NotAMutation: a HealthLake call or event that changes no FHIR data a search could find:
	// a read-only call (ReadOnlyEventNames, or read-like by name), a management call
	// (ManagementEventNames), an import job that has not completed, an export job or a
	// datastore lifecycle event.
	NotAMutation Reason = "not-a-mutation"
	// UnknownEventType: an aws.healthlake event whose detail-type is neither "AWS API Call via
	// CloudTrail" nor one HealthLake is documented to send. Counted apart so that a new kind of
	// durable HealthLake event shows up on the dashboards instead of vanishing among the reads.
	UnknownEventType Reason = "unknown-event-type"
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
	// BadField: eventID (or an import event's id), eventName, account, region or statusCode is
	// not in the shape AWS writes it, or an import event's jobStatus contradicts its detail-type.
	BadField Reason = "bad-field"
	// BadEventTime: detail.eventTime (an import event's time or detail.submitTime) is not an
	// RFC 3339 time in the years 2000 to 9998.
	BadEventTime Reason = "bad-event-time"
	// BadDatastoreID: requestParameters.datastoreId is not exactly 32 lower-case hex characters.
	BadDatastoreID Reason = "bad-datastore-id"
	// BadResourceType: requestParameters.resourceType is not a FHIR R4 resource type name.
	BadResourceType Reason = "bad-resource-type"
	// BadJobID: an import event's detail.jobId is not 32 lower-case hex characters.
	BadJobID Reason = "bad-job-id"
	// DatastoreNotAllowed: a well-formed datastore id outside the configured allow-list.
	DatastoreNotAllowed Reason = "datastore-not-allowed"
)

// Change is one validated HealthLake hint: some resource of ResourceType in DatastoreID changed
// at EventTime (or, with AllTypes, resources of any type). CloudTrail never says which resource.
//
// Every field passed validation, so DatastoreID (32 lower-case hex), ResourceType (an R4 type
// name, "Bundle" or empty) and JobID (32 lower-case hex) are safe to put into a URL or a request;
// EventName is safe as a metric label.
type Change struct {
	// EventID is the CloudTrail event id (detail.eventID); for an import, the EventBridge
	// event id. A record may repeat it.
	EventID     string
	DatastoreID string
	// ResourceType is the one type changed. With AllTypes it is empty, or "Bundle" when the
	// record named that type (the Bundle type is then one of the types to look at). For a
	// BulkDelete, the type the job deletes (AllTypes when the record names none).
	ResourceType string
	// Operation is event.Create, event.Update or event.Delete of ResourceType, or
	// event.Mixed (a Bundle, a mutation without a type, another write-level operation, an
	// unknown write-like name) or event.Import (a completed import job), both with AllTypes,
	// or event.BulkDelete (a `$bulk-delete` job started: StartFHIRBulkDeleteJob).
	Operation event.Operation
	// EventTime: UTC, whole seconds. CloudTrail: detail.eventTime. Import: the EventBridge
	// event's time, when the job finished (about its EndTime).
	EventTime time.Time
	Region    string // the EventBridge envelope's region
	Account   string // the EventBridge envelope's account
	// EventName is the CloudTrail eventName, or an import event's detail-type. It is one of a
	// small set of AWS names, letters only (import detail-types: and spaces), at most 64
	// characters; an unknown name that is not is OtherEventName. Safe as a metric label.
	EventName string
	// AllTypes: the change may touch every resource type of the datastore (Operation Mixed,
	// Import, or BulkDelete naming no type). The consumer looks at every type it knows for
	// DatastoreID.
	AllTypes bool
	// Unrecognised: a successful call whose eventName is in no list of this package and not
	// read-like (see ActsOnEventName). Operation is Mixed. Count these by EventName: each is a
	// name to add to the lists.
	Unrecognised bool
	// Import only: the job (32 lower-case hex), its status (JobStatusCompleted or
	// JobStatusCompletedWithErrors, from the detail-type) and its submit time (detail.submitTime,
	// UTC with milliseconds; zero if the event had none).
	JobID         string
	JobStatus     string
	JobSubmitTime time.Time
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

package cloudtrail

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MaxDataSize is the largest record data Decide looks at: the Kinesis limit for one record.
// Anything bigger did not come from the stream and is rejected before it is parsed.
const MaxDataSize = 1 << 20

// An eventTime outside these years is no CloudTrail time. The bounds also keep the query
// ranges computed from it (minus a lead, plus a lag) within the four-digit years FHIR allows.
const (
	minYear = 2000
	maxYear = 9998
)

// Validator decides what to do with records. It is safe for concurrent use; the zero value
// accepts any datastore.
type Validator struct {
	allowed map[string]struct{} // empty: any datastore
}

// NewValidator returns a Validator that acts only on the datastores in allowList, or on any
// datastore when allowList is empty. Every entry must itself be a datastore id (32 lower-case
// hex characters), so that a typo fails at start-up instead of silently rejecting everything.
func NewValidator(allowList []string) (*Validator, error) {
	v := &Validator{}
	if len(allowList) == 0 {
		return v, nil
	}
	v.allowed = make(map[string]struct{}, len(allowList))
	for i, id := range allowList {
		if !IsDatastoreID(id) {
			return nil, fmt.Errorf("cloudtrail: allow-list entry %d (%q) is not a datastore id: want 32 lower-case hex characters", i, id)
		}
		v.allowed[id] = struct{}{}
	}
	return v, nil
}

// IsDatastoreID reports whether s has the shape of a HealthLake datastore id: exactly 32
// lower-case hexadecimal characters.
func IsDatastoreID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Decide decodes one Kinesis record's data (the EventBridge event around a CloudTrail record)
// and says whether to act on it, skip it or reject it. It never panics and never returns a
// zero Outcome; see the package documentation for the order of the checks.
func (v *Validator) Decide(data []byte) Decision {
	// 1. Decode.
	if len(data) > MaxDataSize {
		return reject(TooLarge, "record data is "+strconv.Itoa(len(data))+" bytes, above the 1 MiB Kinesis record limit")
	}
	if !isObject(data) {
		return reject(Undecodable, "data is not a JSON object")
	}
	var env envelope
	detailType := present
	if err := json.Unmarshal(data, &env); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			// Only detail can produce a type error (every other field type records
			// mismatches itself); judged below, after source, as it may be no HealthLake event.
			if te.Field != "detail" {
				return reject(BadFieldType, te.Field+" has the wrong JSON type")
			}
			detailType = wrongType
		case errors.As(err, &se):
			return reject(Undecodable, "data is not valid JSON (error at byte "+strconv.FormatInt(se.Offset, 10)+")")
		default:
			return reject(Undecodable, "data is not valid JSON")
		}
	}

	// 2. Skip what is not a successful HealthLake mutation, looking only at the fields that
	// say so: the rest of a read, a search or a failed call may be odd without harm.
	if d, ok := need(env.Source.p, "source", "string"); !ok {
		return d
	}
	if env.Source.s != "aws.healthlake" {
		return skip(NotHealthLake, "source is not aws.healthlake")
	}
	if d, ok := need(detailType, "detail", "object"); !ok {
		return d
	}
	det := env.Detail
	if det == nil {
		return reject(MissingField, "detail is missing or null")
	}
	if det.EventSource.p == wrongType {
		return reject(BadFieldType, "detail.eventSource is not a JSON string")
	}
	if det.EventSource.s != "healthlake.amazonaws.com" {
		return skip(NotHealthLake, "detail.eventSource is not healthlake.amazonaws.com")
	}
	if det.EventName.p == wrongType {
		return reject(BadFieldType, "detail.eventName is not a JSON string")
	}
	var op Operation
	switch det.EventName.s {
	case "CreateResource":
		op = Create
	case "UpdateResource":
		op = Update
	case "DeleteResource":
		op = Delete
	default:
		return skip(NotAMutation, "detail.eventName is not CreateResource, UpdateResource or DeleteResource")
	}
	if det.ErrorCode.p != absent {
		return skip(FailedCall, "detail.errorCode is present")
	}
	switch det.ResponseElements.p {
	case absent:
		return skip(FailedCall, "detail.responseElements is null")
	case wrongType:
		return reject(BadFieldType, "detail.responseElements is not a JSON object")
	}
	status := det.ResponseElements.v.StatusCode
	if d, ok := need(status.p, "detail.responseElements.statusCode", "number"); !ok {
		return d
	}
	if !status.valid {
		return reject(BadField, "detail.responseElements.statusCode is not an HTTP status code")
	}
	if status.code/100 != 2 {
		return skip(FailedCall, "detail.responseElements.statusCode is not 2xx")
	}

	// 3. A mutation: every field the Change is made of must be there, well typed and well
	// formed, and the datastore allowed. Only then may a value reach a URL.
	params := &det.RequestParameters.v
	for _, f := range [...]struct {
		p          presence
		name, want string
	}{
		{det.EventID.p, "detail.eventID", "string"},
		{det.EventTime.p, "detail.eventTime", "string"},
		{det.RequestParameters.p, "detail.requestParameters", "object"},
		{params.DatastoreID.p, "detail.requestParameters.datastoreId", "string"},
		{params.ResourceType.p, "detail.requestParameters.resourceType", "string"},
		{env.Account.p, "account", "string"},
		{env.Region.p, "region", "string"},
	} {
		if d, ok := need(f.p, f.name, f.want); !ok {
			return d
		}
	}
	if !isEventID(det.EventID.s) {
		return reject(BadField, "detail.eventID is not 1 to 64 letters, digits and hyphens")
	}
	t, err := time.Parse(time.RFC3339, det.EventTime.s)
	if err != nil {
		return reject(BadEventTime, "detail.eventTime is not an RFC 3339 time")
	}
	if t = t.UTC(); t.Year() < minYear || t.Year() > maxYear {
		return reject(BadEventTime, "detail.eventTime is not in the years 2000 to 9998")
	}
	if !IsDatastoreID(params.DatastoreID.s) {
		return reject(BadDatastoreID, "detail.requestParameters.datastoreId is not 32 lower-case hex characters")
	}
	if !IsResourceType(params.ResourceType.s) {
		return reject(BadResourceType, "detail.requestParameters.resourceType is not a FHIR R4 resource type name")
	}
	if !isAccount(env.Account.s) {
		return reject(BadField, "account is not 12 digits")
	}
	if !isRegion(env.Region.s) {
		return reject(BadField, "region is not a region name")
	}
	if len(v.allowed) > 0 {
		if _, ok := v.allowed[params.DatastoreID.s]; !ok {
			return reject(DatastoreNotAllowed, "detail.requestParameters.datastoreId is not in the allow-list")
		}
	}
	return Decision{
		Outcome: Act,
		Change: Change{
			EventID:      det.EventID.s,
			DatastoreID:  params.DatastoreID.s,
			ResourceType: params.ResourceType.s,
			Operation:    op,
			// CloudTrail writes whole seconds; flooring anything finer keeps the coalescer's
			// floor(eventTime) arithmetic exact.
			EventTime: t.Truncate(time.Second),
			Region:    env.Region.s,
			Account:   env.Account.s,
		},
	}
}

func reject(r Reason, detail string) Decision {
	return Decision{Outcome: Reject, Reason: r, Detail: detail}
}

func skip(r Reason, detail string) Decision {
	return Decision{Outcome: Skip, Reason: r, Detail: detail}
}

// need rejects a field that is absent or of the wrong JSON type.
func need(p presence, name, want string) (Decision, bool) {
	switch p {
	case absent:
		return reject(MissingField, name+" is missing or null"), false
	case wrongType:
		return reject(BadFieldType, name+" is not a JSON "+want), false
	}
	return Decision{}, true
}

// isObject reports whether the first non-blank byte opens a JSON object. Checked before
// decoding because encoding/json turns a top-level null into a struct without complaint.
func isObject(data []byte) bool {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// isEventID accepts what CloudTrail writes (a UUID) and a little more, but nothing that would
// bloat or break the trigger list of an emitted event.
func isEventID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '-' {
			return false
		}
	}
	return true
}

// isAccount: an AWS account id, 12 digits. It becomes part of the datastore ARN.
func isAccount(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isRegion: a region name such as us-west-2 or us-gov-west-1. It becomes part of the datastore
// ARN and the HealthLake endpoint host name.
func isRegion(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

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
func IsDatastoreID(s string) bool { return isHex32(s) }

// IsJobID reports whether s has the shape of a HealthLake import or export job id. The API
// reference allows 1 to 32 characters of a wide class (letters, digits, spaces, _.:/=+-%@), but
// every job id AWS shows is 32 lower-case hex characters, like a datastore id; only that shape
// is accepted, so a job id is safe in a request, a log and a URL.
func IsJobID(s string) bool { return isHex32(s) }

func isHex32(s string) bool {
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

// Decide decodes one Kinesis record's data (an aws.healthlake EventBridge event: an API call via
// CloudTrail, or an import job event) and says whether to act on it, skip it or reject it. It never panics and never returns a
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

	// 2. Skip what announces no change, looking only at the fields that say so: the rest of a
	// read, a search, a failed call or a job event may be odd without harm.
	if d, ok := need(env.Source.p, "source", "string"); !ok {
		return d
	}
	if env.Source.s != "aws.healthlake" {
		return skip(NotHealthLake, "source is not aws.healthlake")
	}
	if env.DetailType.p == wrongType {
		return reject(BadFieldType, "detail-type is not a JSON string")
	}
	switch env.DetailType.kind {
	case kindImportCompleted:
		return v.decideImport(data, &env, JobStatusCompleted)
	case kindImportCompletedWithErrors:
		return v.decideImport(data, &env, JobStatusCompletedWithErrors)
	case kindService:
		return skip(NotAMutation, "detail-type is a HealthLake job or datastore event other than a completed import")
	case kindUnknown:
		return skip(UnknownEventType, "detail-type is not one HealthLake is known to send")
	}
	// An API call via CloudTrail (or a record without detail-type, as older producers wrote).
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
	if d, ok := need(det.EventName.p, "detail.eventName", "string"); !ok {
		return d
	}
	name := det.EventName.s
	if name == "" {
		return reject(BadField, "detail.eventName is empty")
	}
	class, op := classify(name)
	switch class {
	case classReadOnly:
		return skip(NotAMutation, "detail.eventName is a read-only call")
	case classManagement:
		return skip(NotAMutation, "detail.eventName is a datastore or job management call")
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
	// formed, and the datastore allowed. Only then may a value reach a URL. resourceType may be
	// absent (a Bundle names none); then every type of the datastore is a candidate.
	params := &det.RequestParameters.v
	for _, f := range [...]struct {
		p          presence
		name, want string
	}{
		{det.EventID.p, "detail.eventID", "string"},
		{det.EventTime.p, "detail.eventTime", "string"},
		{det.RequestParameters.p, "detail.requestParameters", "object"},
		{params.DatastoreID.p, "detail.requestParameters.datastoreId", "string"},
		{env.Account.p, "account", "string"},
		{env.Region.p, "region", "string"},
	} {
		if d, ok := need(f.p, f.name, f.want); !ok {
			return d
		}
	}
	if params.ResourceType.p == wrongType {
		return reject(BadFieldType, "detail.requestParameters.resourceType is not a JSON string")
	}
	if !isEventID(det.EventID.s) {
		return reject(BadField, "detail.eventID is not 1 to 64 letters, digits and hyphens")
	}
	t, d, ok := eventTime(det.EventTime.s, "detail.eventTime")
	if !ok {
		return d
	}
	if !IsDatastoreID(params.DatastoreID.s) {
		return reject(BadDatastoreID, "detail.requestParameters.datastoreId is not 32 lower-case hex characters")
	}
	rt := ""
	if params.ResourceType.p == present {
		rt = params.ResourceType.s
		if !IsResourceType(rt) {
			return reject(BadResourceType, "detail.requestParameters.resourceType is not a FHIR R4 resource type name")
		}
	}
	if d, ok := v.checkOrigin(&env, params.DatastoreID.s, "detail.requestParameters.datastoreId"); !ok {
		return d
	}
	// A Bundle (by name or by type) or a write without a type may touch any type: the type
	// named, other than Bundle itself, says nothing about the others.
	if rt == "" || rt == "Bundle" || op == Mixed {
		op = Mixed
		if rt != "Bundle" {
			rt = ""
		}
	}
	label := name
	if !isLabel(name, false) {
		label = OtherEventName
	}
	return Decision{
		Outcome: Act,
		Change: Change{
			EventID:      det.EventID.s,
			DatastoreID:  params.DatastoreID.s,
			ResourceType: rt,
			Operation:    op,
			// CloudTrail writes whole seconds; flooring anything finer keeps the coalescer's
			// floor(eventTime) arithmetic exact.
			EventTime:    t.Truncate(time.Second),
			Region:       env.Region.s,
			Account:      env.Account.s,
			EventName:    label,
			AllTypes:     op == Mixed,
			Unrecognised: class == classUnknown,
		},
	}
}

// decideImport decides an "Import Job Completed" or "Import Job Completed With Errors" event
// (status is what its detail-type stands for), as strictly as an API call: the job id reaches
// a DescribeFHIRImportJob request and the datastore id a URL.
func (v *Validator) decideImport(data []byte, env *envelope, status string) Decision {
	var ev serviceEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		// The first pass decoded data, and these fields record type mismatches themselves.
		return reject(Undecodable, "data is not valid JSON")
	}
	det := &ev.Detail.v
	for _, f := range [...]struct {
		p          presence
		name, want string
	}{
		{ev.ID.p, "id", "string"},
		{ev.Time.p, "time", "string"},
		{ev.Detail.p, "detail", "object"},
		{det.DatastoreID.p, "detail.datastoreId", "string"},
		{det.JobID.p, "detail.jobId", "string"},
		{env.Account.p, "account", "string"},
		{env.Region.p, "region", "string"},
	} {
		if d, ok := need(f.p, f.name, f.want); !ok {
			return d
		}
	}
	for _, f := range [...]struct {
		p    presence
		name string
	}{{det.JobStatus.p, "detail.jobStatus"}, {det.SubmitTime.p, "detail.submitTime"}} {
		if f.p == wrongType {
			return reject(BadFieldType, f.name+" is not a JSON string")
		}
	}
	// HealthLake documents no jobStatus in these events; one that disagrees with the
	// detail-type leaves no way to tell which is true.
	if det.JobStatus.p == present && det.JobStatus.s != status {
		return reject(BadField, "detail.jobStatus contradicts the detail-type")
	}
	if !isEventID(ev.ID.s) {
		return reject(BadField, "id is not 1 to 64 letters, digits and hyphens")
	}
	t, d, ok := eventTime(ev.Time.s, "time")
	if !ok {
		return d
	}
	if !IsDatastoreID(det.DatastoreID.s) {
		return reject(BadDatastoreID, "detail.datastoreId is not 32 lower-case hex characters")
	}
	if !IsJobID(det.JobID.s) {
		return reject(BadJobID, "detail.jobId is not 32 lower-case hex characters")
	}
	var submitted time.Time
	if det.SubmitTime.p == present {
		if submitted, d, ok = eventTime(det.SubmitTime.s, "detail.submitTime"); !ok {
			return d
		}
	}
	if d, ok := v.checkOrigin(env, det.DatastoreID.s, "detail.datastoreId"); !ok {
		return d
	}
	detailType := DetailTypeImportJobCompleted
	if status == JobStatusCompletedWithErrors {
		detailType = DetailTypeImportJobCompletedWithErrors
	}
	return Decision{
		Outcome: Act,
		Change: Change{
			EventID:       ev.ID.s,
			DatastoreID:   det.DatastoreID.s,
			Operation:     Import,
			EventTime:     t.Truncate(time.Second),
			Region:        env.Region.s,
			Account:       env.Account.s,
			EventName:     detailType,
			AllTypes:      true,
			JobID:         det.JobID.s,
			JobStatus:     status,
			JobSubmitTime: submitted,
		},
	}
}

// eventTime parses an RFC 3339 time of the years 2000 to 9998, in UTC.
func eventTime(s, name string) (time.Time, Decision, bool) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, reject(BadEventTime, name+" is not an RFC 3339 time"), false
	}
	if t = t.UTC(); t.Year() < minYear || t.Year() > maxYear {
		return time.Time{}, reject(BadEventTime, name+" is not in the years 2000 to 9998"), false
	}
	return t, Decision{}, true
}

// checkOrigin checks the account, the region and the allow-list, in that order.
func (v *Validator) checkOrigin(env *envelope, datastoreID, field string) (Decision, bool) {
	if !isAccount(env.Account.s) {
		return reject(BadField, "account is not 12 digits"), false
	}
	if !isRegion(env.Region.s) {
		return reject(BadField, "region is not a region name"), false
	}
	if len(v.allowed) > 0 {
		if _, ok := v.allowed[datastoreID]; !ok {
			return reject(DatastoreNotAllowed, field+" is not in the allow-list"), false
		}
	}
	return Decision{}, true
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

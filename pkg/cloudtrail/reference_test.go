package cloudtrail

// The decoder Decide used before the hand-written one in wire.go, kept as the reference the new
// one must agree with (FuzzDecideMatchesReference, TestDecideMatchesReference): encoding/json
// into structs whose leaf types record the JSON type they saw. It shares the name tables and
// the shape checks (isEventID, isAccount, ...) with the package; everything that reads JSON is
// frozen here as it was.

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// The record as it arrives: only the fields a decision needs. Everything else (userIdentity,
// tlsDetails, errorMessage...) is skipped by the decoder without being stored.
//
// Leaf fields use the types below instead of string/int: they never fail decoding, they only
// note what JSON type they saw. encoding/json gives up on a field at the first type mismatch
// and reports only the earliest one, so with plain types a number in a field that only matters
// for mutations (say requestParameters.resourceType on a search) would hide what the fields that
// decide a skip hold. With these, Decide looks at the fields in its own order and names the
// exact field that is wrong.
//
// encoding/json matches keys case-insensitively and keeps the last of duplicate keys. Neither
// lets a value bypass validation: whichever value is kept is the one validated.
type refEnvelope struct {
	Source     refString     `json:"source"`
	DetailType refDetailType `json:"detail-type"`
	Account    refString     `json:"account"`
	Region     refString     `json:"region"`
	// A pointer to a plain struct, not a refObject: detail is most of the record, and a nested
	// Unmarshal would scan it twice more. A detail of the wrong type is the only way the outer
	// Unmarshal can return a *json.UnmarshalTypeError.
	Detail *refDetail `json:"detail"`
}

type refDetail struct {
	EventSource       refString                       `json:"eventSource"`
	EventName         refString                       `json:"eventName"`
	EventID           refString                       `json:"eventID"`
	EventTime         refString                       `json:"eventTime"`
	ErrorCode         refString                       `json:"errorCode"`
	RequestParameters refObject[refRequestParameters] `json:"requestParameters"`
	ResponseElements  refObject[refResponseElements]  `json:"responseElements"`
}

type refRequestParameters struct {
	DatastoreID  refString `json:"datastoreId"`
	ResourceType refString `json:"resourceType"`
}

type refResponseElements struct {
	StatusCode refStatus `json:"statusCode"`
}

// refServiceEvent holds what an import event adds to refEnvelope. Decoded in a second pass, only for
// the import detail-types: they come a few times a day, so the hot path (CloudTrail records)
// does not pay for fields it never reads.
type refServiceEvent struct {
	ID     refString                   `json:"id"`
	Time   refString                   `json:"time"`
	Detail refObject[refServiceDetail] `json:"detail"`
}

type refServiceDetail struct {
	DatastoreID refString `json:"datastoreId"`
	JobID       refString `json:"jobId"`
	JobStatus   refString `json:"jobStatus"` // not documented; judged if present
	SubmitTime  refString `json:"submitTime"`
}

// refDetailType maps detail-type onto a detailKind without keeping (allocating) the string:
// it is read on every record and only ever compared with constants.
type refDetailType struct {
	kind detailKind
	p    presence
}

func (j *refDetailType) UnmarshalJSON(b []byte) error {
	*j = refDetailType{}
	switch b[0] {
	case 'n':
		return nil
	case '"':
	default:
		j.p = wrongType
		return nil
	}
	j.p = present
	raw := b[1 : len(b)-1]
	if bytes.IndexByte(b, '\\') >= 0 {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		raw = []byte(s)
	}
	j.kind = kindOf(raw)
	return nil
}

// refString is a JSON string field that records a value of another type instead of failing.
type refString struct {
	s string
	p presence
}

func (j *refString) UnmarshalJSON(b []byte) error {
	*j = refString{}
	switch b[0] {
	case 'n':
	case '"':
		j.p = present
		if bytes.IndexByte(b, '\\') < 0 {
			// The decoder has validated b, so without escapes the content is the string.
			j.s = string(b[1 : len(b)-1])
			return nil
		}
		return json.Unmarshal(b, &j.s)
	default:
		j.p = wrongType
	}
	return nil
}

// refObject is a JSON object field that records a value of another type instead of failing.
// Only for small objects: the nested Unmarshal scans b again.
type refObject[T any] struct {
	v T
	p presence
}

func (j *refObject[T]) UnmarshalJSON(b []byte) error {
	*j = refObject[T]{}
	switch b[0] {
	case 'n':
	case '{':
		j.p = present
		return json.Unmarshal(b, &j.v)
	default:
		j.p = wrongType
	}
	return nil
}

// refStatus is an HTTP status code: a JSON number. A number that is not an integer from 100
// to 599 is present but not valid (valid false); a string, even "201", is the wrong type.
type refStatus struct {
	code  int
	p     presence
	valid bool
}

func (j *refStatus) UnmarshalJSON(b []byte) error {
	*j = refStatus{}
	switch c := b[0]; {
	case c == 'n':
	case c >= '0' && c <= '9':
		j.p = present
		if len(b) != 3 {
			return nil
		}
		n := 0
		for _, d := range b {
			if d < '0' || d > '9' {
				return nil
			}
			n = n*10 + int(d-'0')
		}
		j.code, j.valid = n, n >= 100 && n <= 599
	case c == '-':
		j.p = present // negative: present, never valid
	default:
		j.p = wrongType
	}
	return nil
}

// Decide decodes one Kinesis record's data (an aws.healthlake EventBridge event: an API call
// via CloudTrail, or an import job event) and says whether to act on it, skip it or reject
// it. It never panics and never returns a zero Outcome; see the package documentation for
// the order of the checks.
func refDecide(v *Validator, data []byte) Decision {
	// 1. Decode.
	if len(data) > MaxDataSize {
		return reject(TooLarge, "record data is "+strconv.Itoa(len(data))+" bytes, above the 1 MiB Kinesis record limit")
	}
	if !isObject(data) {
		return reject(Undecodable, "data is not a JSON object")
	}
	var env refEnvelope
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
		return refDecideImport(v, data, &env, JobStatusCompleted)
	case kindImportCompletedWithErrors:
		return refDecideImport(v, data, &env, JobStatusCompletedWithErrors)
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
	t, d, ok := refEventTime(det.EventTime.s, "detail.eventTime")
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
	if d, ok := refCheckOrigin(v, &env, params.DatastoreID.s, "detail.requestParameters.datastoreId"); !ok {
		return d
	}
	// A Bundle (by name or by type) or a write without a type may touch any type: the type
	// named, other than Bundle itself, says nothing about the others.
	if rt == "" || rt == "Bundle" || op == event.Mixed {
		op = event.Mixed
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
			AllTypes:     op == event.Mixed,
			Unrecognised: class == classUnknown,
		},
	}
}

// decideImport decides an "Import Job Completed" or "Import Job Completed With Errors" event
// (status is what its detail-type stands for), as strictly as an API call: the job id reaches
// a DescribeFHIRImportJob request and the datastore id a URL.
func refDecideImport(v *Validator, data []byte, env *refEnvelope, status string) Decision {
	var ev refServiceEvent
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
	t, d, ok := refEventTime(ev.Time.s, "time")
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
		if submitted, d, ok = refEventTime(det.SubmitTime.s, "detail.submitTime"); !ok {
			return d
		}
	}
	if d, ok := refCheckOrigin(v, env, det.DatastoreID.s, "detail.datastoreId"); !ok {
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
			Operation:     event.Import,
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
func refEventTime(s, name string) (time.Time, Decision, bool) {
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
func refCheckOrigin(v *Validator, env *refEnvelope, datastoreID, field string) (Decision, bool) {
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

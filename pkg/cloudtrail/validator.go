package cloudtrail

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
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

// isHex32 and the checks below take a string or the bytes of one, so that Decide can check a
// value before it copies it.
func isHex32[S ~string | ~[]byte](s S) bool {
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
// CloudTrail, or an import job event) and says whether to act on it, skip it or reject it. It
// never panics and never returns a zero Outcome; see the package documentation for the order
// of the checks.
func (v *Validator) Decide(data []byte) Decision {
	// 1. Decode.
	if len(data) > MaxDataSize {
		return reject(TooLarge, "record data is "+strconv.Itoa(len(data))+" bytes, above the 1 MiB Kinesis record limit")
	}
	if !isObject(data) {
		return reject(Undecodable, "data is not a JSON object")
	}
	var r record
	if !decodeRecord(data, &r) {
		return syntaxError(data)
	}

	// 2. Skip what announces no change, looking only at the fields that say so: the rest of a
	// read, a search, a failed call or a job event may be odd without harm.
	if d, ok := need(r.source.p, "source", "string"); !ok {
		return d
	}
	if string(r.source.s) != "aws.healthlake" {
		return skip(NotHealthLake, "source is not aws.healthlake")
	}
	if r.detailType.p == wrongType {
		return reject(BadFieldType, "detail-type is not a JSON string")
	}
	kind := kindAPICall // no detail-type, as older producers wrote
	if r.detailType.p == present {
		kind = kindOf(r.detailType.s)
	}
	switch kind {
	case kindImportCompleted:
		return v.decideImport(&r, JobStatusCompleted)
	case kindImportCompletedWithErrors:
		return v.decideImport(&r, JobStatusCompletedWithErrors)
	case kindService:
		return skip(NotAMutation, "detail-type is a HealthLake job or datastore event other than a completed import")
	case kindUnknown:
		return skip(UnknownEventType, "detail-type is not one HealthLake is known to send")
	}
	// An API call via CloudTrail.
	if r.apiWrongType {
		return reject(BadFieldType, "detail is not a JSON object")
	}
	if !r.apiSeen {
		return reject(MissingField, "detail is missing or null")
	}
	det := &r.api
	if det.eventSource.p == wrongType {
		return reject(BadFieldType, "detail.eventSource is not a JSON string")
	}
	if string(det.eventSource.s) != "healthlake.amazonaws.com" {
		return skip(NotHealthLake, "detail.eventSource is not healthlake.amazonaws.com")
	}
	if d, ok := need(det.eventName.p, "detail.eventName", "string"); !ok {
		return d
	}
	if len(det.eventName.s) == 0 {
		return reject(BadField, "detail.eventName is empty")
	}
	// A known name comes with the table's copy of it; only an unknown one is copied.
	name, known := eventNameIndex[string(det.eventName.s)]
	if !known {
		name = eventNameInfo{name: string(det.eventName.s)}
		name.class, name.op = classify(name.name)
	}
	switch name.class {
	case classReadOnly:
		return skip(NotAMutation, "detail.eventName is a read-only call")
	case classManagement:
		return skip(NotAMutation, "detail.eventName is a datastore or job management call")
	}
	if det.errorCode.p != absent {
		return skip(FailedCall, "detail.errorCode is present")
	}
	switch det.response.p {
	case absent:
		return skip(FailedCall, "detail.responseElements is null")
	case wrongType:
		return reject(BadFieldType, "detail.responseElements is not a JSON object")
	}
	status := det.response.statusCode
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
	params := &det.params
	for _, f := range [...]struct {
		p          presence
		name, want string
	}{
		{det.eventID.p, "detail.eventID", "string"},
		{det.eventTime.p, "detail.eventTime", "string"},
		{params.p, "detail.requestParameters", "object"},
		{params.datastoreID.p, "detail.requestParameters.datastoreId", "string"},
		{r.account.p, "account", "string"},
		{r.region.p, "region", "string"},
	} {
		if d, ok := need(f.p, f.name, f.want); !ok {
			return d
		}
	}
	if params.resourceType.p == wrongType {
		return reject(BadFieldType, "detail.requestParameters.resourceType is not a JSON string")
	}
	if !isEventID(det.eventID.s) {
		return reject(BadField, "detail.eventID is not 1 to 64 letters, digits and hyphens")
	}
	t, d, ok := eventTime(det.eventTime.s, "detail.eventTime")
	if !ok {
		return d
	}
	if !isHex32(params.datastoreID.s) {
		return reject(BadDatastoreID, "detail.requestParameters.datastoreId is not 32 lower-case hex characters")
	}
	rt := ""
	if params.resourceType.p == present {
		var ok bool
		if rt, ok = resourceTypeSet[string(params.resourceType.s)]; !ok {
			return reject(BadResourceType, "detail.requestParameters.resourceType is not a FHIR R4 resource type name")
		}
	}
	if d, ok := v.checkOrigin(&r, params.datastoreID.s, "detail.requestParameters.datastoreId"); !ok {
		return d
	}
	// A Bundle (by name or by type) or a write without a type may touch any type: the type
	// named, other than Bundle itself, says nothing about the others.
	op := name.op
	switch {
	case op == event.BulkDelete:
		// The type it names (Bundle too: stored Bundles), or every type when it names none.
	case rt == "" || rt == "Bundle" || op == event.Mixed:
		op = event.Mixed
		if rt != "Bundle" {
			rt = ""
		}
	}
	label := name.name
	if !isLabel(label, false) {
		label = OtherEventName
	}
	var s [4]string
	copyStrings(s[:], det.eventID.s, params.datastoreID.s, r.region.s, r.account.s)
	return Decision{
		Outcome: Act,
		Change: Change{
			EventID:      s[0],
			DatastoreID:  s[1],
			ResourceType: rt,
			Operation:    op,
			// CloudTrail writes whole seconds; flooring anything finer keeps the coalescer's
			// floor(eventTime) arithmetic exact.
			EventTime:    t.Truncate(time.Second),
			Region:       s[2],
			Account:      s[3],
			EventName:    label,
			AllTypes:     op == event.Mixed || (op == event.BulkDelete && rt == ""),
			Unrecognised: name.class == classUnknown,
		},
	}
}

// decideImport decides an "Import Job Completed" or "Import Job Completed With Errors" event
// (status is what its detail-type stands for), as strictly as an API call: the job id reaches
// a DescribeFHIRImportJob request and the datastore id a URL.
func (v *Validator) decideImport(r *record, status string) Decision {
	det := &r.job
	for _, f := range [...]struct {
		p          presence
		name, want string
	}{
		{r.id.p, "id", "string"},
		{r.time.p, "time", "string"},
		{det.p, "detail", "object"},
		{det.datastoreID.p, "detail.datastoreId", "string"},
		{det.jobID.p, "detail.jobId", "string"},
		{r.account.p, "account", "string"},
		{r.region.p, "region", "string"},
	} {
		if d, ok := need(f.p, f.name, f.want); !ok {
			return d
		}
	}
	for _, f := range [...]struct {
		p    presence
		name string
	}{{det.jobStatus.p, "detail.jobStatus"}, {det.submitTime.p, "detail.submitTime"}} {
		if f.p == wrongType {
			return reject(BadFieldType, f.name+" is not a JSON string")
		}
	}
	// HealthLake documents no jobStatus in these events; one that disagrees with the
	// detail-type leaves no way to tell which is true.
	if det.jobStatus.p == present && string(det.jobStatus.s) != status {
		return reject(BadField, "detail.jobStatus contradicts the detail-type")
	}
	if !isEventID(r.id.s) {
		return reject(BadField, "id is not 1 to 64 letters, digits and hyphens")
	}
	t, d, ok := eventTime(r.time.s, "time")
	if !ok {
		return d
	}
	if !isHex32(det.datastoreID.s) {
		return reject(BadDatastoreID, "detail.datastoreId is not 32 lower-case hex characters")
	}
	if !isHex32(det.jobID.s) {
		return reject(BadJobID, "detail.jobId is not 32 lower-case hex characters")
	}
	var submitted time.Time
	if det.submitTime.p == present {
		if submitted, d, ok = eventTime(det.submitTime.s, "detail.submitTime"); !ok {
			return d
		}
	}
	if d, ok := v.checkOrigin(r, det.datastoreID.s, "detail.datastoreId"); !ok {
		return d
	}
	detailType := DetailTypeImportJobCompleted
	if status == JobStatusCompletedWithErrors {
		detailType = DetailTypeImportJobCompletedWithErrors
	}
	var s [5]string
	copyStrings(s[:], r.id.s, det.datastoreID.s, r.region.s, r.account.s, det.jobID.s)
	return Decision{
		Outcome: Act,
		Change: Change{
			EventID:       s[0],
			DatastoreID:   s[1],
			Operation:     event.Import,
			EventTime:     t.Truncate(time.Second),
			Region:        s[2],
			Account:       s[3],
			EventName:     detailType,
			AllTypes:      true,
			JobID:         s[4],
			JobStatus:     status,
			JobSubmitTime: submitted,
		},
	}
}

// copyStrings sets dst[i] to string(src[i]), copying all of src into one new string: a Change
// keeps four or five short values that live exactly as long as it does, and one allocation
// costs less than one each.
func copyStrings(dst []string, src ...[]byte) {
	n := 0
	for _, b := range src {
		n += len(b)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, b := range src {
		sb.Write(b)
	}
	all := sb.String()
	for i, b := range src {
		dst[i], all = all[:len(b)], all[len(b):]
	}
}

// syntaxError is the Decision on data decodeRecord found not to be JSON. encoding/json says
// where the error is, so the Detail is the one it always was.
func syntaxError(data []byte) Decision {
	var se *json.SyntaxError
	if err := json.Unmarshal(data, &struct{}{}); errors.As(err, &se) {
		return reject(Undecodable, "data is not valid JSON (error at byte "+strconv.FormatInt(se.Offset, 10)+")")
	}
	return reject(Undecodable, "data is not valid JSON")
}

// eventTime parses an RFC 3339 time of the years 2000 to 9998, in UTC, as time.Parse does.
func eventTime(s []byte, name string) (time.Time, Decision, bool) {
	t, ok := parseUTC(s)
	if !ok {
		var err error
		if t, err = time.Parse(time.RFC3339, string(s)); err != nil {
			return time.Time{}, reject(BadEventTime, name+" is not an RFC 3339 time"), false
		}
		t = t.UTC()
	}
	if t.Year() < minYear || t.Year() > maxYear {
		return time.Time{}, reject(BadEventTime, name+" is not in the years 2000 to 9998"), false
	}
	return t, Decision{}, true
}

// parseUTC parses the one form CloudTrail writes, "2006-01-02T15:04:05Z", without the string
// copy and the generality of time.Parse. It reports false for anything else, valid or not,
// which eventTime leaves to time.Parse (it accepts more: fractions, offsets, a one-digit hour).
func parseUTC(s []byte) (time.Time, bool) {
	if len(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range s[i : i+n] {
			if !isDigit(c) {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

// daysIn is the number of days of month (1 to 12) in year, Gregorian.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// checkOrigin checks the account, the region and the allow-list, in that order.
func (v *Validator) checkOrigin(r *record, datastoreID []byte, field string) (Decision, bool) {
	if !isAccount(r.account.s) {
		return reject(BadField, "account is not 12 digits"), false
	}
	if !isRegion(r.region.s) {
		return reject(BadField, "region is not a region name"), false
	}
	if len(v.allowed) > 0 {
		if _, ok := v.allowed[string(datastoreID)]; !ok {
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
func isEventID[S ~string | ~[]byte](s S) bool {
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
func isAccount[S ~string | ~[]byte](s S) bool {
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
func isRegion[S ~string | ~[]byte](s S) bool {
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

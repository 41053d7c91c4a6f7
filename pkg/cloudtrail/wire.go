package cloudtrail

import (
	"bytes"
	"encoding/json"
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
type envelope struct {
	Source     jsonString     `json:"source"`
	DetailType jsonDetailType `json:"detail-type"`
	Account    jsonString     `json:"account"`
	Region     jsonString     `json:"region"`
	// A pointer to a plain struct, not a jsonObject: detail is most of the record, and a nested
	// Unmarshal would scan it twice more. A detail of the wrong type is the only way the outer
	// Unmarshal can return a *json.UnmarshalTypeError.
	Detail *detail `json:"detail"`
}

type detail struct {
	EventSource       jsonString                    `json:"eventSource"`
	EventName         jsonString                    `json:"eventName"`
	EventID           jsonString                    `json:"eventID"`
	EventTime         jsonString                    `json:"eventTime"`
	ErrorCode         jsonString                    `json:"errorCode"`
	RequestParameters jsonObject[requestParameters] `json:"requestParameters"`
	ResponseElements  jsonObject[responseElements]  `json:"responseElements"`
}

type requestParameters struct {
	DatastoreID  jsonString `json:"datastoreId"`
	ResourceType jsonString `json:"resourceType"`
}

type responseElements struct {
	StatusCode jsonStatus `json:"statusCode"`
}

// serviceEvent holds what an import event adds to envelope. Decoded in a second pass, only for
// the import detail-types: they come a few times a day, so the hot path (CloudTrail records)
// does not pay for fields it never reads.
type serviceEvent struct {
	ID     jsonString                `json:"id"`
	Time   jsonString                `json:"time"`
	Detail jsonObject[serviceDetail] `json:"detail"`
}

type serviceDetail struct {
	DatastoreID jsonString `json:"datastoreId"`
	JobID       jsonString `json:"jobId"`
	JobStatus   jsonString `json:"jobStatus"` // not documented; judged if present
	SubmitTime  jsonString `json:"submitTime"`
}

// detailKind is what an envelope's detail-type says the event is.
type detailKind uint8

const (
	kindAPICall         detailKind = iota // "AWS API Call via CloudTrail", or no detail-type
	kindImportCompleted                   // an import job finished: act
	kindImportCompletedWithErrors
	kindService // another documented aws.healthlake event: skip
	kindUnknown // any other string
)

// jsonDetailType maps detail-type onto a detailKind without keeping (allocating) the string:
// it is read on every record and only ever compared with constants.
type jsonDetailType struct {
	kind detailKind
	p    presence
}

func (j *jsonDetailType) UnmarshalJSON(b []byte) error {
	*j = jsonDetailType{}
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

// kindOf compares string(s) with constants only, which the compiler does without a copy.
func kindOf(s []byte) detailKind {
	switch string(s) {
	case detailTypeAPICall:
		return kindAPICall
	case DetailTypeImportJobCompleted:
		return kindImportCompleted
	case DetailTypeImportJobCompletedWithErrors:
		return kindImportCompletedWithErrors
	}
	for _, t := range serviceEventTypes {
		if string(s) == t {
			return kindService
		}
	}
	return kindUnknown
}

// presence is what a field held, judged by its JSON type only.
type presence uint8

const (
	absent    presence = iota // no such key, or null
	present                   // the expected JSON type
	wrongType                 // any other JSON type
)

// jsonString is a JSON string field that records a value of another type instead of failing.
type jsonString struct {
	s string
	p presence
}

func (j *jsonString) UnmarshalJSON(b []byte) error {
	*j = jsonString{}
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

// jsonObject is a JSON object field that records a value of another type instead of failing.
// Only for small objects: the nested Unmarshal scans b again.
type jsonObject[T any] struct {
	v T
	p presence
}

func (j *jsonObject[T]) UnmarshalJSON(b []byte) error {
	*j = jsonObject[T]{}
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

// jsonStatus is an HTTP status code: a JSON number. A number that is not an integer from 100
// to 599 is present but not valid (valid false); a string, even "201", is the wrong type.
type jsonStatus struct {
	code  int
	p     presence
	valid bool
}

func (j *jsonStatus) UnmarshalJSON(b []byte) error {
	*j = jsonStatus{}
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

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Limits of PutEvents as AWS documents them.
const (
	maxEntries      = 10
	maxRequestBytes = 256 * 1024 // total entry size, computed by entrySize
	timeEntryBytes  = 14         // a set Time counts as 14 bytes, whatever its value
)

// putEventsRequest is the JSON 1.1 body of AWSEvents.PutEvents.
type putEventsRequest struct {
	Entries    []putEventsEntry `json:"Entries"`
	EndpointID string           `json:"EndpointId,omitempty"`
}

// putEventsEntry is one request entry. Time is an epoch-seconds number on the wire.
type putEventsEntry struct {
	Time         *json.Number `json:"Time,omitempty"`
	Source       string       `json:"Source"`
	Resources    []string     `json:"Resources"`
	DetailType   string       `json:"DetailType"`
	Detail       string       `json:"Detail"`
	EventBusName string       `json:"EventBusName"`
	TraceHeader  string       `json:"TraceHeader"`
}

type putEventsResponse struct {
	FailedEntryCount int                    `json:"FailedEntryCount"`
	Entries          []putEventsResultEntry `json:"Entries"`
}

type putEventsResultEntry struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

// entrySize is the size AWS charges an entry against the 256 KB PutEvents limit
// ("Calculating PutEvents event entry size"): 14 bytes for a set Time plus the UTF-8 bytes of
// Source, DetailType, Detail and each Resources string. EventBusName and TraceHeader are free.
func entrySize(e putEventsEntry) int {
	n := 0
	if e.Time != nil {
		n += timeEntryBytes
	}
	n += len(e.Source) + len(e.DetailType) + len(e.Detail)
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// requestSize sums entrySize over the entries of one call.
func requestSize(entries []putEventsEntry) int {
	n := 0
	for _, e := range entries {
		n += entrySize(e)
	}
	return n
}

// validateRequest applies the checks AWS makes to the call as a whole; an error here fails the
// call with a ValidationException rather than single entries.
func validateRequest(req putEventsRequest) error {
	switch n := len(req.Entries); {
	case n == 0:
		return fmt.Errorf("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length greater than or equal to 1")
	case n > maxEntries:
		return fmt.Errorf("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to %d (got %d entries)", maxEntries, n)
	}
	if size := requestSize(req.Entries); size > maxRequestBytes {
		return fmt.Errorf("Total size of the entries in the request is over the limit: %d bytes > %d bytes", size, maxRequestBytes)
	}
	return nil
}

// validateEntry applies the per-entry checks; AWS reports these as a failed entry
// (ErrorCode InvalidArgument), not as a failed call. It returns the Detail compacted, which
// checking it costs anyway.
func validateEntry(e putEventsEntry) ([]byte, error) {
	switch {
	case e.Source == "":
		return nil, fmt.Errorf("Parameter Source is not valid. Reason: Source is a required argument.")
	case e.DetailType == "":
		return nil, fmt.Errorf("Parameter DetailType is not valid. Reason: DetailType is a required argument.")
	case e.Detail == "":
		return nil, fmt.Errorf("Parameter Detail is not valid. Reason: Detail is a required argument.")
	}
	detail, ok := compactObject(e.Detail)
	if !ok {
		return nil, fmt.Errorf("Parameter Detail is not valid. Reason: Detail must be a JSON object.")
	}
	if e.Time != nil {
		if _, err := parseEpochSeconds(*e.Time); err != nil {
			return nil, fmt.Errorf("Parameter Time is not valid. Reason: %v", err)
		}
	}
	return detail, nil
}

// compactObject returns s compacted if it is one valid JSON object (one scan checks and
// compacts).
func compactObject(s string) ([]byte, bool) {
	b := bytes.TrimSpace([]byte(s))
	if len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return nil, false
	}
	return out.Bytes(), true
}

// parseEpochSeconds reads the epoch-seconds timestamps of the JSON protocols ("1700000000.123")
// without going through float64, so milliseconds survive exactly.
func parseEpochSeconds(n json.Number) (time.Time, error) {
	s := string(n)
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	intPart, fracPart, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
	}
	var nsec int64
	if fracPart != "" {
		if len(fracPart) > 9 {
			fracPart = fracPart[:9]
		}
		f, err := strconv.ParseUint(fracPart, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("invalid timestamp %q", s)
		}
		nsec = int64(f) * int64(math.Pow10(9-len(fracPart)))
		if strings.HasPrefix(intPart, "-") {
			nsec = -nsec
		}
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// writeAPIError answers an AWS JSON 1.1 error: the SDK reads the code from X-Amzn-ErrorType or
// __type and decides from it whether to retry (ThrottlingException is retried).
func writeAPIError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{code, message})
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	_ = json.NewEncoder(w).Encode(v)
}

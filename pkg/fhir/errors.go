package fhir

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors, matched with errors.Is. All of them are permanent: repeating the call
// cannot help.
var (
	ErrInvalidDatastoreID  = errors.New("datastore id is not 32 lower-case hex digits")
	ErrInvalidResourceType = errors.New("resource type is not a FHIR resource type name")
	ErrInvalidRange        = errors.New("time range is empty or unset")
	ErrForeignNextLink     = errors.New("next link leaves the endpoint's scheme, host or base path")
	ErrNextLinkLoop        = errors.New("next link repeats a page already read")
	ErrTooManyPages        = errors.New("too many pages")
	ErrPageTooLarge        = errors.New("response body exceeds the page size limit")
	ErrNotJSON             = errors.New("response is not JSON")
	ErrMalformedBundle     = errors.New("response is not a well-formed Bundle")
)

// StatusError is an HTTP response the client did not accept. It carries no body: only the
// status and the OperationOutcome issue codes (FHIR code values such as "throttled" or
// "not-supported"), which hold no PHI.
type StatusError struct {
	Op         string // "search" or "history"
	StatusCode int
	Retryable  bool     // the status is one that a later attempt may not get (429, 5xx)
	Attempts   int      // requests made for this page
	IssueCodes []string // OperationOutcome issue[].code, at most maxIssueCodes
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fhir %s: HTTP %d", e.Op, e.StatusCode)
	if len(e.IssueCodes) > 0 {
		fmt.Fprintf(&b, " (issues: %s)", strings.Join(e.IssueCodes, ", "))
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	return b.String()
}

// permanentError marks an error that a later retry of the same call cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err: err} }

func permanentf(sentinel error, format string, args ...any) error {
	return permanent(fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...))
}

// IsPermanent reports whether err says that retrying the same call later cannot help: a
// rejected request (4xx other than 429), a next link or page the client refuses, an invalid
// argument. Context errors, network errors and retryable statuses that ran out of attempts are
// not permanent; nil is not permanent.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return !se.Retryable
	}
	return false
}

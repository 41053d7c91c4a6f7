package fhir

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// Error classes, matched with errors.Is; Reason names them. Every error of this package is in
// at most one class, and wraps its sentinel (so errors.Is works however far it was wrapped).
// None of them carries a URL, a resource id, a body or a diagnostics text: they are safe to
// log and to put on the bus.
var (
	// Permanent: a later retry of the same call cannot help.
	ErrInvalidArgument = errors.New("invalid argument") // a value that may not go into a URL; no request made
	ErrUnauthorized    = errors.New("unauthorized")     // HTTP 401
	ErrForbidden       = errors.New("forbidden")        // HTTP 403 (HealthLake also answers expired credentials so)
	ErrNotFound        = errors.New("not found")        // HTTP 404 without issue code not-supported
	ErrGone            = errors.New("gone")             // HTTP 410: a deleted resource or version
	ErrBadRequest      = errors.New("bad request")      // HTTP 400, 422 and other 4xx not named here
	ErrUnsupported     = errors.New("not supported by the server")
	ErrUnexpected      = errors.New("unexpected response status") // 1xx, 3xx (redirects are never followed), odd 5xx
	ErrPagingLoop      = errors.New("paging loop")

	// Retryable: the call may succeed later.
	ErrThrottled   = errors.New("throttled")    // HTTP 429
	ErrServerError = errors.New("server error") // HTTP 500, 502, 503, 504
)

// Sentinels for one cause each, within a class where they have one.
var (
	ErrInvalidDatastoreID  = &classError{"datastore id is not 32 lower-case hex digits", ErrInvalidArgument}
	ErrInvalidResourceType = &classError{"resource type is not a FHIR resource type name", ErrInvalidArgument}
	ErrInvalidResourceID   = &classError{"resource id or version id is not a FHIR id", ErrInvalidArgument}
	ErrInvalidRange        = &classError{"time range is empty or unset", ErrInvalidArgument}
	// ErrHistoryUnsupported: the server does not offer type-level history (or history for
	// this type: HealthLake lets customers opt types out of history). It is also
	// ErrUnsupported.
	ErrHistoryUnsupported = &classError{"type-level history is not supported by the server", ErrUnsupported}
	ErrNextLinkLoop       = &classError{"next link repeats a page already read", ErrPagingLoop}
	ErrTooManyPages       = &classError{"too many pages", ErrPagingLoop}
	ErrForeignNextLink    = errors.New("next link leaves the endpoint's scheme, host or base path")
	ErrPageTooLarge       = errors.New("response body exceeds the page size limit")
	ErrNotJSON            = errors.New("response is not JSON")
	ErrMalformedBundle    = errors.New("response is not a well-formed Bundle")
	ErrMalformedResource  = errors.New("response is not the requested resource version")
)

// classError is a sentinel that belongs to a class.
type classError struct {
	msg   string
	class error
}

func (e *classError) Error() string { return e.msg }
func (e *classError) Unwrap() error { return e.class }

// reasons maps sentinels to the stable names Reason returns, most specific first.
var reasons = []struct {
	err    error
	reason string
}{
	{ErrHistoryUnsupported, "history-unsupported"},
	{ErrUnsupported, "unsupported"},
	{ErrInvalidArgument, "invalid-argument"},
	{ErrUnauthorized, "unauthorized"},
	{ErrForbidden, "forbidden"},
	{ErrNotFound, "not-found"},
	{ErrGone, "gone"},
	{ErrBadRequest, "bad-request"},
	{ErrUnexpected, "unexpected-status"},
	{ErrPagingLoop, "paging-loop"},
	{ErrForeignNextLink, "foreign-next-link"},
	{ErrPageTooLarge, "page-too-large"},
	{ErrNotJSON, "not-json"},
	{ErrMalformedBundle, "malformed-bundle"},
	{ErrMalformedResource, "malformed-resource"},
	{ErrThrottled, "throttled"},
	{ErrServerError, "server-error"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "timeout"},
}

// Reason names the class of err with a short stable string for reports and metrics:
// "forbidden", "not-found", "paging-loop", "malformed-bundle", "throttled", … (see the
// sentinels); "timeout" and "network" for transport failures; "" for nil; "other" for an
// error this package did not make, such as one a visit callback returned.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var te *transportError
	if errors.As(err, &te) {
		return "network"
	}
	return "other"
}

// transportError is a request that got no (complete) response: connection refused or reset,
// a body cut short. Retryable.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// StatusError is an HTTP response the client did not accept. It carries no body: only the
// status and the OperationOutcome issue codes (FHIR code values such as "throttled" or
// "not-supported"), which hold no PHI. It wraps its class: errors.Is(err, ErrForbidden) for a
// 403, and so on.
type StatusError struct {
	Op         string // "search", "count", "history", "instance-history" or "vread"
	StatusCode int
	Retryable  bool     // the status is one that a later attempt may not get (429, 5xx)
	Attempts   int      // requests made for this page
	IssueCodes []string // OperationOutcome issue[].code, at most maxIssueCodes
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "fhir: HTTP %d", e.StatusCode)
	if len(e.IssueCodes) > 0 {
		fmt.Fprintf(&b, " (issues: %s)", strings.Join(e.IssueCodes, ", "))
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	return b.String()
}

// Unwrap returns the error's class. An answer that says the interaction is not supported —
// 405 or 501, or 400/404 with issue code not-supported, the shapes FHIR servers use — is
// ErrUnsupported, and ErrHistoryUnsupported for a type-level history.
func (e *StatusError) Unwrap() error {
	code := e.StatusCode
	notSupported := false
	for _, c := range e.IssueCodes {
		if c == "not-supported" {
			notSupported = true
		}
	}
	switch {
	case code == 405 || code == 501 || notSupported && (code == 400 || code == 404):
		if e.Op == "history" {
			return ErrHistoryUnsupported
		}
		return ErrUnsupported
	case code == 401:
		return ErrUnauthorized
	case code == 403:
		return ErrForbidden
	case code == 404:
		return ErrNotFound
	case code == 410:
		return ErrGone
	case code == 429:
		return ErrThrottled
	case retryableStatus(code):
		return ErrServerError
	case code >= 400 && code < 500:
		return ErrBadRequest
	default:
		return ErrUnexpected
	}
}

// permanent marks err as one that a later retry of the same call cannot fix.
func permanent(err error) error { return retry.Permanent(err) }

func permanentf(sentinel error, format string, args ...any) error {
	return permanent(fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...))
}

// IsPermanent is !e.Retryable, for retry.IsPermanent: a rejected request (4xx other than
// 429) is permanent; a retryable status that ran out of attempts is not. Callers ask
// retry.IsPermanent(err), which also knows this package's other permanent errors (a next link
// or page the client refuses, an invalid argument); context and network errors are not
// permanent.
func (e *StatusError) IsPermanent() bool { return !e.Retryable }

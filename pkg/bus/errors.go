package bus

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// CodeEntryTooLarge is the Code of an EntryError for an entry over MaxRequestBytes, which is
// never sent. It is this package's code, not one of EventBridge's.
const CodeEntryTooLarge = "EntryTooLarge"

// EntryError is why one entry was not accepted.
type EntryError struct {
	// Code is EventBridge's ErrorCode for the entry, the error code of a call that failed as a
	// whole, CodeEntryTooLarge, or empty for a call error without a code (network).
	Code    string
	Message string
	// Attempts is how many PutEvents calls carried the entry (0 if it was never sent).
	Attempts int
	// Permanent is true when sending the entry again cannot help.
	Permanent bool
	// Err is the error of the call, when the call failed as a whole.
	Err error
}

func (e *EntryError) Error() string {
	kind := "retryable"
	if e.Permanent {
		kind = "permanent"
	}
	what := e.Code
	switch {
	case what == "" && e.Err != nil:
		what = e.Err.Error()
	case e.Message != "":
		what += ": " + e.Message
	}
	return fmt.Sprintf("eventbridge: entry not accepted after %d attempts (%s): %s", e.Attempts, kind, what)
}

func (e *EntryError) Unwrap() error { return e.Err }

// IsPermanent reports whether err says the entry can never be accepted as it is, so it should
// be reported (and its change counted as failed) rather than retried. A retryable error that
// ran out of attempts, or a context error, is not permanent: try again later.
func IsPermanent(err error) bool {
	var ee *EntryError
	return errors.As(err, &ee) && ee.Permanent
}

// Per-entry ErrorCodes EventBridge documents as non-retryable (PutEventsResultEntry), and
// ValidationException for good measure. Any other entry code is retried until MaxAttempts: an
// unknown code costs a few retries, a wrongly dropped event costs a change.
var permanentEntryCodes = map[string]bool{
	"AccessDeniedException":               true,
	"InvalidAccountIdException":           true,
	"InvalidArgument":                     true,
	"MalformedDetail":                     true,
	"RedactionFailure":                    true,
	"NotAuthorizedForSourceException":     true,
	"NotAuthorizedForDetailTypeException": true,
	"ValidationException":                 true,
}

// Call-level error codes that may succeed later: the SDK's throttle and transient codes plus
// EventBridge's internal errors. Any other API error code (ValidationException,
// ResourceNotFoundException for a missing bus, AccessDeniedException, ...) is permanent.
var retryableCallCodes = map[string]bool{
	"Throttling":                             true,
	"ThrottlingException":                    true,
	"ThrottledException":                     true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"BandwidthLimitExceeded":                 true,
	"LimitExceededException":                 true,
	"RequestThrottled":                       true,
	"SlowDown":                               true,
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
	"InternalFailure":                        true,
	"InternalException":                      true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"ServiceUnavailableException":            true,
}

// callError turns the error of a whole PutEvents call into the EntryError of each of its
// entries (Attempts filled in by the caller).
func callError(err error) *EntryError {
	ee := &EntryError{Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		ee.Code, ee.Message = ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var invalid *smithy.InvalidParamsError
	switch {
	case errors.As(err, &invalid):
		// The SDK refused to send the input; it will refuse again.
		ee.Permanent = true
	case retryableCallCodes[ee.Code], status >= 500, status == http.StatusTooManyRequests:
	case ee.Code != "":
		ee.Permanent = true
	case status >= 400:
		// An answer without a code we could read: as permanent as its 4xx says.
		ee.Permanent = true
	default:
		// No answer at all: connection refused or reset, timeout, DNS, the SDK's retry quota.
	}
	return ee
}

// isContextError reports whether err is ctx ending (so it belongs to the caller, not to
// EventBridge).
func isContextError(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

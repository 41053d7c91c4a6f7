package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// CodeEntryTooLarge is the Code of an EntryError for an entry over Options.MaxEntryBytes,
// which is never sent. It is this package's code, not one of EventBridge's.
const CodeEntryTooLarge = "EntryTooLarge"

// ErrUnavailable is matched (errors.Is) by the error of every entry that failed because the
// bus refused the call as a whole — credentials, access, a missing bus, throttling, a server
// error, a timeout, no connection — or because EventBridge denied the entry permission
// (AccessDeniedException, NotAuthorizedFor…). Such an entry is fine; the bus is not, for now:
// do not ack, retry later, and report not-ready while it lasts (see Health).
var ErrUnavailable = errors.New("eventbridge unavailable")

// EntryError is why one entry was not accepted.
type EntryError struct {
	// Code is EventBridge's ErrorCode for the entry, the error code of a call that failed as a
	// whole, CodeEntryTooLarge, or empty for a call error without a code (network, timeout).
	Code    string
	Message string
	// Attempts is how many PutEvents calls carried the entry (0 if it was never sent).
	Attempts int
	// Permanent is true only when the entry itself can never be accepted as it is (malformed,
	// too large): report it and move on. Everything else is worth retrying later.
	Permanent bool
	// Unavailable is true when the failure is about the bus or the caller's rights, not the
	// entry; errors.Is(err, ErrUnavailable) then holds.
	Unavailable bool
	// Err is the error of the call (a *CallError) when the call failed as a whole, or the
	// context's error when Emit stopped before the entry got through.
	Err error
}

func (e *EntryError) Error() string {
	kind := "retryable"
	switch {
	case e.Permanent:
		kind = "permanent"
	case e.Unavailable:
		kind = "retryable, bus unavailable"
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

// Is makes errors.Is(err, ErrUnavailable) true for entry-level denials too, which carry no
// call error.
func (e *EntryError) Is(target error) bool { return target == ErrUnavailable && e.Unavailable }

// IsPermanent is e.Permanent, for retry.IsPermanent: a caller asks retry.IsPermanent(err)
// whether the entry can never be accepted as it is, so it should be reported (and its change
// counted as failed) rather than retried. A retryable error that ran out of attempts, a
// call-level error of any kind, or a context error is not permanent: try again later.
func (e *EntryError) IsPermanent() bool { return e.Permanent }

// Kind is the class of a call-level failure, for metrics, logs and readiness.
type Kind string

// Kinds of CallError.
const (
	// KindCredentials: expired, invalid or unobtainable credentials, a bad signature.
	KindCredentials Kind = "credentials"
	// KindAccessDenied: the caller may not PutEvents (IAM, bus policy, KMS key).
	KindAccessDenied Kind = "access-denied"
	// KindNotFound: the event bus does not exist (ResourceNotFoundException).
	KindNotFound Kind = "not-found"
	// KindThrottled: the account's PutEvents quota is exhausted.
	KindThrottled Kind = "throttled"
	// KindServer: a 5xx or an internal error of EventBridge.
	KindServer Kind = "server"
	// KindTimeout: the call ran into Options.CallTimeout or a transport timeout.
	KindTimeout Kind = "timeout"
	// KindNetwork: no answer at all (connection refused or reset, DNS).
	KindNetwork Kind = "network"
	// KindRejected: the request as a whole was refused as invalid (ValidationException,
	// SerializationException, 413, the SDK's parameter check). Something in its entries is
	// wrong, not the bus: the entries are retried one per call to find which; a single-entry
	// call rejected like this fails its entry permanently.
	KindRejected Kind = "rejected"
	// KindBadResponse: an answer whose results do not line up with the entries sent.
	KindBadResponse Kind = "bad-response"
	// KindOther: any other API error; retried, as unavailable.
	KindOther Kind = "other"
)

// CallError is a PutEvents call that failed as a whole. It wraps the SDK's error, and matches
// ErrUnavailable unless its Kind is KindRejected.
type CallError struct {
	Kind Kind
	// Code and Message are the API error's, when the service answered with one.
	Code, Message string
	// Status is the HTTP status, 0 when there was no answer.
	Status int
	Err    error
}

func (e *CallError) Error() string {
	return fmt.Sprintf("eventbridge: PutEvents failed (%s): %v", e.Kind, e.Err)
}

func (e *CallError) Unwrap() error { return e.Err }

// Is makes every CallError but a rejected request match ErrUnavailable.
func (e *CallError) Is(target error) bool { return target == ErrUnavailable && e.Kind != KindRejected }

// unavailable reports whether the error says the bus as a whole is not taking events.
func (e *CallError) unavailable() bool { return e.Kind != KindRejected }

// label is what Health reports: the API error code if there is one, else the kind.
func (e *CallError) label() string {
	if e.Code != "" {
		return e.Code
	}
	return string(e.Kind)
}

// Entry-level ErrorCodes that say the entry itself can never be accepted. The PutEventsResult
// Entry reference ("Amazon EventBridge API Reference", PutEventsResultEntry) lists as
// non-retryable AccessDeniedException, InvalidAccountIdException, InvalidArgument,
// MalformedDetail, RedactionFailure, NotAuthorizedForSourceException and
// NotAuthorizedForDetailTypeException; of those only the ones about the entry's content are
// here (RedactionFailure concerns CloudTrail events, which are content too), plus
// ValidationException, which the reference does not list for entries but can only be about
// the entry when it comes on one. The permission codes are in deniedEntryCodes instead.
var permanentEntryCodes = map[string]bool{
	"InvalidArgument":     true,
	"MalformedDetail":     true,
	"RedactionFailure":    true,
	"ValidationException": true,
}

// Entry-level ErrorCodes that are "non-retryable" in the reference's sense — the same call
// fails again at once — yet succeed after an operator fixes a policy or the configuration.
// Treating them as permanent would drop every event for as long as the policy is wrong, so
// they are retried with backoff and reported as the bus being unavailable.
var deniedEntryCodes = map[string]bool{
	"AccessDeniedException":               true,
	"InvalidAccountIdException":           true,
	"NotAuthorizedForSourceException":     true,
	"NotAuthorizedForDetailTypeException": true,
}

// Call-level codes by kind. Any code not here is KindOther (retryable), or KindServer on a 5xx.
var callCodeKinds = map[string]Kind{
	// Credentials and signatures (the AWS JSON protocols' common errors, STS's wording too).
	"ExpiredTokenException":       KindCredentials,
	"ExpiredToken":                KindCredentials,
	"UnrecognizedClientException": KindCredentials,
	"InvalidClientTokenId":        KindCredentials,
	"InvalidSignatureException":   KindCredentials,
	"SignatureDoesNotMatch":       KindCredentials,
	"IncompleteSignature":         KindCredentials,
	"MissingAuthenticationToken":  KindCredentials,
	"RequestExpired":              KindCredentials,
	"AccessDeniedException":       KindAccessDenied,
	"AccessDenied":                KindAccessDenied,
	"NotAuthorized":               KindAccessDenied,
	"KMSAccessDeniedException":    KindAccessDenied,
	"ResourceNotFoundException":   KindNotFound,
	// Throttling: the SDK's throttle codes.
	"Throttling":                             KindThrottled,
	"ThrottlingException":                    KindThrottled,
	"ThrottledException":                     KindThrottled,
	"RequestThrottledException":              KindThrottled,
	"TooManyRequestsException":               KindThrottled,
	"ProvisionedThroughputExceededException": KindThrottled,
	"RequestLimitExceeded":                   KindThrottled,
	"BandwidthLimitExceeded":                 KindThrottled,
	"LimitExceededException":                 KindThrottled,
	"RequestThrottled":                       KindThrottled,
	"SlowDown":                               KindThrottled,
	"RequestTimeout":                         KindTimeout,
	"RequestTimeoutException":                KindTimeout,
	"InternalFailure":                        KindServer,
	"InternalException":                      KindServer,
	"InternalServerError":                    KindServer,
	"ServiceUnavailable":                     KindServer,
	"ServiceUnavailableException":            KindServer,
	// The request itself.
	"ValidationException":    KindRejected,
	"SerializationException": KindRejected,
	"InvalidParameterValue":  KindRejected,
}

// classify turns the error of a whole PutEvents call into a CallError. timedOut says the
// call's own context (with CallTimeout) ran out: a timeout of EventBridge, not the caller's.
func classify(timedOut bool, err error) *CallError {
	ce := &CallError{Kind: KindNetwork, Err: err}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		ce.Code, ce.Message = ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		ce.Status = re.HTTPStatusCode()
	}
	var invalid *smithy.InvalidParamsError
	var signing *v4.SigningError
	var netErr net.Error
	kind, known := callCodeKinds[ce.Code]
	switch {
	case errors.As(err, &invalid), ce.Status == http.StatusRequestEntityTooLarge:
		// The SDK refused to send the input, or the body was too large: the entries' fault.
		ce.Kind = KindRejected
	case known:
		ce.Kind = kind
	case errors.As(err, &signing):
		// The SDK could not sign: most often it could not retrieve credentials (expired SSO
		// session, no IMDS, a failing credential process).
		ce.Kind = KindCredentials
	case ce.Status == http.StatusTooManyRequests:
		ce.Kind = KindThrottled
	case ce.Status == http.StatusUnauthorized:
		ce.Kind = KindCredentials
	case ce.Status == http.StatusForbidden:
		ce.Kind = KindAccessDenied
	case ce.Status >= 500:
		ce.Kind = KindServer
	case ce.Code != "" || ce.Status >= 400:
		ce.Kind = KindOther
	case timedOut && errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		ce.Kind = KindTimeout
	default:
		// No answer at all: connection refused or reset, DNS, the SDK's retry quota.
	}
	return ce
}

// isContextError reports whether err is ctx ending (so it belongs to the caller, not to
// EventBridge).
func isContextError(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func responseError(status int, err error) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      err,
		},
		RequestID: "req-1",
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: code + " message"} }
	for _, tc := range []struct {
		name     string
		err      error
		timedOut bool
		code     string
		kind     Kind
	}{
		{"throttling", responseError(400, api("ThrottlingException")), false, "ThrottlingException", KindThrottled},
		{"internal", responseError(500, api("InternalException")), false, "InternalException", KindServer},
		{"unknown code on a 5xx", responseError(503, api("Whatever")), false, "Whatever", KindServer},
		{"429 without a code", responseError(429, errors.New("too many")), false, "", KindThrottled},
		{"502 without a code", responseError(502, errors.New("bad gateway")), false, "", KindServer},
		{"missing bus", responseError(400, api("ResourceNotFoundException")), false, "ResourceNotFoundException", KindNotFound},
		{"access denied", responseError(400, api("AccessDeniedException")), false, "AccessDeniedException", KindAccessDenied},
		{"access denied, new bus status", responseError(403, api("AccessDeniedException")), false, "AccessDeniedException", KindAccessDenied},
		{"expired token", responseError(400, api("ExpiredTokenException")), false, "ExpiredTokenException", KindCredentials},
		{"unknown key", responseError(400, api("UnrecognizedClientException")), false, "UnrecognizedClientException", KindCredentials},
		{"bad signature", responseError(400, api("InvalidSignatureException")), false, "InvalidSignatureException", KindCredentials},
		{"credentials not retrievable", &v4.SigningError{Err: fmt.Errorf("failed to retrieve credentials: %w", errors.New("token expired"))}, false, "", KindCredentials},
		{"403 without a code", responseError(403, errors.New("forbidden")), false, "", KindAccessDenied},
		{"unknown 4xx code", responseError(400, api("SomethingNew")), false, "SomethingNew", KindOther},
		{"400 without a code", responseError(400, errors.New("bad")), false, "", KindOther},
		{"call validation", responseError(400, api("ValidationException")), false, "ValidationException", KindRejected},
		{"413", responseError(413, errors.New("too large")), false, "", KindRejected},
		{"the SDK refused the input", &smithy.InvalidParamsError{Context: "PutEventsInput"}, false, "", KindRejected},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, false, "", KindNetwork},
		{"transport timeout", &net.OpError{Op: "read", Err: timeoutError{}}, false, "", KindTimeout},
		{"call timeout", fmt.Errorf("operation error: %w", context.DeadlineExceeded), true, "", KindTimeout},
		{"the SDK gave up retrying a throttle", &retry.MaxAttemptsError{Attempt: 3, Err: responseError(400, api("ThrottlingException"))}, false, "ThrottlingException", KindThrottled},
		{"wrapped", fmt.Errorf("operation error EventBridge: PutEvents: %w", responseError(400, api("ResourceNotFoundException"))), false, "ResourceNotFoundException", KindNotFound},
	} {
		ce := classify(tc.timedOut, tc.err)
		if ce.Code != tc.code || ce.Kind != tc.kind || !errors.Is(ce, tc.err) {
			t.Errorf("%s: code %q kind %s; want %q %s (wrapping the call error)", tc.name, ce.Code, ce.Kind, tc.code, tc.kind)
		}
		if got, want := errors.Is(ce, ErrUnavailable), tc.kind != KindRejected; got != want {
			t.Errorf("%s: errors.Is(ErrUnavailable) = %v, want %v", tc.name, got, want)
		}
	}
}

func TestIsContextError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if isContextError(ctx, context.Canceled) {
		t.Error("a live context's Canceled error (from elsewhere) counted as ours")
	}
	cancel()
	if !isContextError(ctx, fmt.Errorf("op: %w", context.Canceled)) {
		t.Error("cancelled context not recognised")
	}
}

func TestPack(t *testing.T) {
	sizes := []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}
	idx := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	solo := make([]bool, len(sizes))
	if got := fmt.Sprint(pack(idx, sizes, solo, 1000)); got != "[[0 1 2 3 4 5 6 7 8 9] [10 11]]" {
		t.Errorf("by count: %s", got)
	}
	if got := fmt.Sprint(pack(idx, sizes, solo, 35)); got != "[[0 1 2] [3 4 5] [6 7 8] [9 10 11]]" {
		t.Errorf("by bytes: %s", got)
	}
	solo[3], solo[4] = true, true
	if got := fmt.Sprint(pack(idx, sizes, solo, 1000)); got != "[[0 1 2] [3] [4] [5 6 7 8 9 10 11]]" {
		t.Errorf("solo: %s", got)
	}
	// The calls are capped slices: appending to one cannot overwrite the next.
	calls := pack(idx, sizes, make([]bool, len(sizes)), 1000)
	_ = append(calls[0], 99)
	if calls[1][0] != 10 {
		t.Error("calls share a backing array past their length")
	}
}

func TestMaxEmitDuration(t *testing.T) {
	// Defaults: 6 × 5 s + 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s.
	if got, want := (Options{}).MaxEmitDuration(), 33100*1e6; float64(got) != want {
		t.Errorf("default MaxEmitDuration %v, want 33.1s", got)
	}
	o := Options{MaxAttempts: 3, CallTimeout: 2e9, BaseBackoff: 1e9, MaxBackoff: 15e8}
	if got := o.MaxEmitDuration(); got != 6e9+1e9+15e8 {
		t.Errorf("MaxEmitDuration %v, want 8.5s", got)
	}
}

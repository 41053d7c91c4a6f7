package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
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

func TestCallErrorClassification(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: code + " message"} }
	for _, tc := range []struct {
		name      string
		err       error
		code      string
		permanent bool
	}{
		{"throttling", responseError(400, api("ThrottlingException")), "ThrottlingException", false},
		{"internal", responseError(500, api("InternalException")), "InternalException", false},
		{"unknown code on a 5xx", responseError(503, api("Whatever")), "Whatever", false},
		{"429 without a code", responseError(429, errors.New("too many")), "", false},
		{"502 without a code", responseError(502, errors.New("bad gateway")), "", false},
		{"missing bus", responseError(400, api("ResourceNotFoundException")), "ResourceNotFoundException", true},
		{"call validation", responseError(400, api("ValidationException")), "ValidationException", true},
		{"access denied", responseError(400, api("AccessDeniedException")), "AccessDeniedException", true},
		{"400 without a code", responseError(400, errors.New("bad")), "", true},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, "", false},
		{"the SDK gave up retrying a throttle", &retry.MaxAttemptsError{Attempt: 3, Err: responseError(400, api("ThrottlingException"))}, "ThrottlingException", false},
		{"the SDK refused the input", &smithy.InvalidParamsError{Context: "PutEventsInput"}, "", true},
		{"wrapped", fmt.Errorf("operation error EventBridge: PutEvents: %w", responseError(400, api("ResourceNotFoundException"))), "ResourceNotFoundException", true},
	} {
		ee := callError(tc.err)
		if ee.Code != tc.code || ee.Permanent != tc.permanent || !errors.Is(ee, tc.err) {
			t.Errorf("%s: code %q permanent %v; want %q %v (wrapping the call error)", tc.name, ee.Code, ee.Permanent, tc.code, tc.permanent)
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

package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// fakeAPI is a PutEvents that answers with fn and remembers every call's entries.
type fakeAPI struct {
	fn    func(ctx context.Context, call int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error)
	mu    sync.Mutex
	calls [][]types.PutEventsRequestEntry
}

func (f *fakeAPI) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, in.Entries)
	f.mu.Unlock()
	if f.fn == nil {
		return accept(in), nil
	}
	return f.fn(ctx, n, in)
}

// markers lists the marker of each entry of each call, in call order.
func (f *fakeAPI) markers() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]string, len(f.calls))
	for c, entries := range f.calls {
		for _, e := range entries {
			out[c] = append(out[c], marker(e))
		}
	}
	return out
}

// accept answers a call with every entry accepted.
func accept(in *eventbridge.PutEventsInput) *eventbridge.PutEventsOutput {
	return fail(in, nil)
}

// fail answers a call with the entries at the indexes in codes failed with those codes.
func fail(in *eventbridge.PutEventsInput, codes map[int]string) *eventbridge.PutEventsOutput {
	out := &eventbridge.PutEventsOutput{Entries: make([]types.PutEventsResultEntry, len(in.Entries))}
	for i := range in.Entries {
		if code, ok := codes[i]; ok {
			out.Entries[i] = types.PutEventsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("injected " + code)}
			out.FailedEntryCount++
		} else {
			out.Entries[i] = types.PutEventsResultEntry{EventId: aws.String(fmt.Sprintf("ev-%d", i))}
		}
	}
	return out
}

// entry is an entry whose Detail carries marker m and is padded to about size bytes.
func entry(m string, size int) types.PutEventsRequestEntry {
	pad := ""
	if size > len(m)+30 {
		pad = strings.Repeat("x", size-len(m)-30)
	}
	return types.PutEventsRequestEntry{
		Source:     aws.String("healthlake.cdc"),
		DetailType: aws.String("test"),
		Detail:     aws.String(`{"m":"` + m + `","pad":"` + pad + `"}`),
	}
}

func marker(e types.PutEventsRequestEntry) string {
	if e.EventBusName != nil {
		return *e.EventBusName
	}
	d := aws.ToString(e.Detail)
	d = strings.TrimPrefix(d, `{"m":"`)
	m, _, _ := strings.Cut(d, `"`)
	return m
}

func entries(n, size int) []types.PutEventsRequestEntry {
	out := make([]types.PutEventsRequestEntry, n)
	for i := range out {
		out[i] = entry(strconv.Itoa(i), size)
	}
	return out
}

// t1 is the start of the fake clocks. It is the real time, because Emit compares the clock
// against the real deadline of ctx.
var t1 = time.Now()

// newEmitter returns an Emitter on a fake clock that jumps over every backoff wait (and
// records it), so no test sleeps; opts.Clock, when set, is kept.
func newEmitter(t *testing.T, api bus.PutEventsAPI, opts bus.Options) (*bus.Emitter, *clocktest.Fake) {
	t.Helper()
	c, _ := opts.Clock.(*clocktest.Fake)
	if opts.Clock == nil {
		c = clocktest.NewAuto(t1)
		opts.Clock = c
	}
	e, err := bus.New(api, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e, c
}

func allNil(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}
}

func callSizes(calls [][]string) []int {
	out := make([]int, len(calls))
	for i, c := range calls {
		out[i] = len(c)
	}
	return out
}

func TestBatchesOfTen(t *testing.T) {
	api := &fakeAPI{}
	e, _ := newEmitter(t, api, bus.Options{MaxInFlight: 1})
	errs := e.Emit(context.Background(), entries(25, 100))
	if len(errs) != 25 {
		t.Fatalf("%d errors for 25 entries", len(errs))
	}
	allNil(t, errs)
	calls := api.markers()
	if got := fmt.Sprint(callSizes(calls)); got != "[10 10 5]" {
		t.Errorf("call sizes %s, want [10 10 5]", got)
	}
	// Greedy and in order.
	var seen []string
	for _, c := range calls {
		seen = append(seen, c...)
	}
	for i, m := range seen {
		if m != strconv.Itoa(i) {
			t.Fatalf("entry %d went out as %s: order not kept", i, m)
		}
	}
}

func TestBatchesBySize(t *testing.T) {
	const kb = 1024
	for _, tc := range []struct {
		name  string
		sizes []int
		want  string
	}{
		{"100 KB entries, two per call", []int{100 * kb, 100 * kb, 100 * kb, 100 * kb, 100 * kb}, "[2 2 1]"},
		{"exactly 256 KB fits one call", []int{128 * kb, 128 * kb, 1}, "[2 1]"},
		{"one byte over starts a new call", []int{128 * kb, 128*kb + 1}, "[1 1]"},
		{"greedy, in order", []int{200 * kb, 50 * kb, 10 * kb, 1 * kb}, "[2 2]"},
		{"a full-size entry alone", []int{10, 256 * kb, 10}, "[1 1 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := make([]types.PutEventsRequestEntry, len(tc.sizes))
			for i, s := range tc.sizes {
				in[i] = exactSize(strconv.Itoa(i), s)
			}
			api := &fakeAPI{}
			e, _ := newEmitter(t, api, bus.Options{MaxInFlight: 1})
			allNil(t, e.Emit(context.Background(), in))
			if got := fmt.Sprint(callSizes(api.markers())); got != tc.want {
				t.Errorf("call sizes %s, want %s", got, tc.want)
			}
			for c, entries := range api.calls {
				total := 0
				for _, en := range entries {
					total += bus.EntrySize(en)
				}
				if total > bus.MaxRequestBytes || len(entries) > bus.MaxEntries {
					t.Errorf("call %d: %d entries, %d bytes: over the limits", c, len(entries), total)
				}
			}
		})
	}
}

// exactSize is an entry with marker m whose EntrySize is exactly size. The marker rides in
// EventBusName, which EntrySize does not count.
func exactSize(m string, size int) types.PutEventsRequestEntry {
	e := types.PutEventsRequestEntry{EventBusName: aws.String(m), Source: aws.String(strings.Repeat("s", size))}
	if n := size - 1 - len(`{"p":""}`); n >= 0 {
		e.Source = aws.String("s")
		e.Detail = aws.String(`{"p":"` + strings.Repeat("p", n) + `"}`)
	}
	return e
}

func TestRetriesExactlyTheFailedEntry(t *testing.T) {
	api := &fakeAPI{fn: func(_ context.Context, call int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		if call == 0 {
			return fail(in, map[int]string{3: "InternalFailure"}), nil
		}
		return accept(in), nil
	}}
	var onCall []string
	e, s := newEmitter(t, api, bus.Options{MaxInFlight: 1, OnCall: func(n, failed int, err error) {
		onCall = append(onCall, fmt.Sprintf("%d/%d/%v", n, failed, err))
	}})
	allNil(t, e.Emit(context.Background(), entries(8, 100)))
	calls := api.markers()
	if len(calls) != 2 || fmt.Sprint(calls[1]) != "[3]" {
		t.Fatalf("calls %v; want the second call to carry only entry 3", calls)
	}
	if len(s.Waits()) != 1 {
		t.Errorf("slept %v; want one backoff", s.Waits())
	}
	if got := fmt.Sprint(onCall); got != "[8/1/<nil> 1/0/<nil>]" {
		t.Errorf("OnCall saw %s", got)
	}
}

// Failed entries of several calls are packed together for the retry.
func TestRetriesAcrossCallsRepacked(t *testing.T) {
	api := &fakeAPI{fn: func(_ context.Context, call int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		if call < 3 {
			return fail(in, map[int]string{0: "ThrottlingException", 4: "InternalFailure"}), nil
		}
		return accept(in), nil
	}}
	e, _ := newEmitter(t, api, bus.Options{MaxInFlight: 1})
	allNil(t, e.Emit(context.Background(), entries(25, 100)))
	calls := api.markers()
	if len(calls) != 4 || fmt.Sprint(calls[3]) != "[0 4 10 14 20 24]" {
		t.Fatalf("calls %v; want a 4th call with exactly the 6 failed entries", calls)
	}
}

func TestPermanentEntryFailureIsNotRetried(t *testing.T) {
	for _, code := range []string{"InvalidArgument", "MalformedDetail", "RedactionFailure", "ValidationException"} {
		t.Run(code, func(t *testing.T) {
			api := &fakeAPI{fn: func(_ context.Context, _ int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
				return fail(in, map[int]string{1: code}), nil
			}}
			e, s := newEmitter(t, api, bus.Options{})
			errs := e.Emit(context.Background(), entries(3, 100))
			if len(api.calls) != 1 || len(s.Waits()) != 0 {
				t.Fatalf("%d calls, %d sleeps; want 1 call and no retry", len(api.calls), len(s.Waits()))
			}
			if errs[0] != nil || errs[2] != nil {
				t.Errorf("accepted entries have errors: %v", errs)
			}
			var ee *bus.EntryError
			if !errors.As(errs[1], &ee) || ee.Code != code || ee.Attempts != 1 || !retry.IsPermanent(errs[1]) {
				t.Fatalf("entry 1: %#v; want a permanent %s after 1 attempt", errs[1], code)
			}
			if errors.Is(errs[1], bus.ErrUnavailable) {
				t.Errorf("entry 1: a malformed entry says the bus is unavailable")
			}
			if !strings.Contains(ee.Error(), "injected "+code) {
				t.Errorf("message lost: %v", ee)
			}
			if _, _, down := e.Health().Unavailable(); down {
				t.Error("a malformed entry marked the bus unavailable")
			}
		})
	}
}

// Entries denied permission are documented as non-retryable, but a policy fix makes them
// succeed: retried with backoff, never permanent, and the bus reported unavailable meanwhile.
func TestDeniedEntryIsRetriedAndUnavailable(t *testing.T) {
	for _, code := range []string{"AccessDeniedException", "NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException", "InvalidAccountIdException"} {
		t.Run(code, func(t *testing.T) {
			clock := clocktest.NewAuto(t1)
			var fixed atomic.Bool
			api := &fakeAPI{fn: func(_ context.Context, _ int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
				clock.Advance(time.Second)
				if fixed.Load() {
					return accept(in), nil
				}
				return fail(in, map[int]string{0: code, 1: code}), nil
			}}
			e, _ := newEmitter(t, api, bus.Options{MaxAttempts: 3, Clock: clock})
			errs := e.Emit(context.Background(), entries(2, 100))
			if len(api.calls) != 3 {
				t.Fatalf("%d calls, want 3 (retried up to MaxAttempts)", len(api.calls))
			}
			for i, err := range errs {
				if err == nil || retry.IsPermanent(err) || !errors.Is(err, bus.ErrUnavailable) {
					t.Errorf("entry %d: %v; want retryable and ErrUnavailable", i, err)
				}
			}
			since, got, down := e.Health().Unavailable()
			if !down || got != code || !since.Equal(t1.Add(time.Second)) {
				t.Errorf("health: %v %q %v; want unavailable with %s since the first call", since, got, down, code)
			}
			fixed.Store(true)
			allNil(t, e.Emit(context.Background(), entries(2, 100)))
			if _, _, down := e.Health().Unavailable(); down {
				t.Error("still unavailable after a call went through")
			}
		})
	}
}

func TestRetryableEntryRunsOutOfAttempts(t *testing.T) {
	api := &fakeAPI{fn: func(_ context.Context, _ int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		return fail(in, map[int]string{0: "InternalFailure"}), nil
	}}
	e, s := newEmitter(t, api, bus.Options{MaxAttempts: 6, BaseBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	errs := e.Emit(context.Background(), entries(2, 100))
	if len(api.calls) != 6 {
		t.Fatalf("%d calls, want 6 (MaxAttempts)", len(api.calls))
	}
	var ee *bus.EntryError
	if !errors.As(errs[0], &ee) || ee.Code != "InternalFailure" || ee.Attempts != 6 || retry.IsPermanent(errs[0]) {
		t.Fatalf("entry 0: %#v; want a retryable InternalFailure after 6 attempts", errs[0])
	}
	if errs[1] != nil {
		t.Errorf("entry 1: %v", errs[1])
	}
	// Exponential, capped, full jitter: uniform in [0, cap].
	want := []time.Duration{100, 200, 400, 800, 1000}
	if len(s.Waits()) != len(want) {
		t.Fatalf("slept %v, want %d waits", s.Waits(), len(want))
	}
	for i, d := range s.Waits() {
		hi := want[i] * time.Millisecond
		if d < 0 || d > hi {
			t.Errorf("wait %d = %v, want in [0, %v]", i+1, d, hi)
		}
	}
}

// Every call-level failure is retried, never permanent, and says the bus is unavailable
// until a call goes through again.
func TestCallErrors(t *testing.T) {
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: code + " message"} }
	for _, tc := range []struct {
		name string
		err  error
		kind bus.Kind
		code string // what Health reports
	}{
		{"expired token", api("ExpiredTokenException"), bus.KindCredentials, "ExpiredTokenException"},
		{"unknown access key", api("UnrecognizedClientException"), bus.KindCredentials, "UnrecognizedClientException"},
		{"bad signature", api("InvalidSignatureException"), bus.KindCredentials, "InvalidSignatureException"},
		{"no credentials", &v4.SigningError{Err: errors.New("failed to retrieve credentials: expired SSO session")}, bus.KindCredentials, "credentials"},
		{"access denied", api("AccessDeniedException"), bus.KindAccessDenied, "AccessDeniedException"},
		{"missing bus", api("ResourceNotFoundException"), bus.KindNotFound, "ResourceNotFoundException"},
		{"throttled", api("ThrottlingException"), bus.KindThrottled, "ThrottlingException"},
		{"internal", api("InternalException"), bus.KindServer, "InternalException"},
		{"network", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), bus.KindNetwork, "network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := clocktest.NewAuto(t1)
			var failing atomic.Bool
			failing.Store(true)
			api := &fakeAPI{fn: func(_ context.Context, call int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
				clock.Advance(time.Second)
				if failing.Load() {
					return nil, tc.err
				}
				return accept(in), nil
			}}
			var callErrs atomic.Int32
			e, _ := newEmitter(t, api, bus.Options{MaxInFlight: 1, MaxAttempts: 3, Clock: clock, OnCall: func(n, failed int, err error) {
				if err != nil && failed == n {
					callErrs.Add(1)
				}
			}})
			errs := e.Emit(context.Background(), entries(12, 100))
			if got := fmt.Sprint(callSizes(api.markers())); got != "[10 2 10 2 10 2]" {
				t.Errorf("calls %s; want every entry sent again, up to MaxAttempts", got)
			}
			if callErrs.Load() != 6 {
				t.Errorf("OnCall saw %d failed calls, want 6", callErrs.Load())
			}
			for i, err := range errs {
				var ce *bus.CallError
				if retry.IsPermanent(err) || !errors.Is(err, bus.ErrUnavailable) || !errors.As(err, &ce) || ce.Kind != tc.kind || !errors.Is(err, tc.err) {
					t.Fatalf("entry %d: %v; want retryable, ErrUnavailable, a %s CallError wrapping the SDK error", i, err, tc.kind)
				}
			}
			since, code, down := e.Health().Unavailable()
			if !down || code != tc.code || !since.Equal(t1.Add(time.Second)) {
				t.Errorf("health %v %q %v; want unavailable (%s) since the first failed call", since, code, down, tc.code)
			}
			failing.Store(false)
			allNil(t, e.Emit(context.Background(), entries(3, 100)))
			if _, _, down := e.Health().Unavailable(); down {
				t.Error("health still unavailable after a successful call")
			}
			if got := e.Health().LastSuccess(); !got.Equal(clock.Now()) {
				t.Errorf("LastSuccess %v, want %v", got, clock.Now())
			}
		})
	}
}

// A call that fails first and then goes through delivers every entry.
func TestCallErrorThenSuccess(t *testing.T) {
	api := &fakeAPI{fn: func(_ context.Context, call int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		if call == 0 {
			return nil, &smithy.GenericAPIError{Code: "AccessDeniedException"}
		}
		return accept(in), nil
	}}
	e, s := newEmitter(t, api, bus.Options{MaxInFlight: 1})
	allNil(t, e.Emit(context.Background(), entries(12, 100)))
	if got := fmt.Sprint(callSizes(api.markers())); got != "[10 2 10]" {
		t.Errorf("calls %s; want the failed call's 10 entries sent again", got)
	}
	if len(s.Waits()) != 1 {
		t.Errorf("slept %v, want one backoff", s.Waits())
	}
}

// A request rejected as a whole (ValidationException on the call) is split into single-entry
// calls; the entry rejected alone is permanent, the others go through.
func TestRejectedCallIsSplit(t *testing.T) {
	for _, reject := range []error{
		&smithy.GenericAPIError{Code: "ValidationException", Message: "Total size of the entries in the request is over the limit"},
		&smithy.InvalidParamsError{Context: "PutEventsInput"},
	} {
		api := &fakeAPI{fn: func(_ context.Context, _ int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
			for _, en := range in.Entries {
				if marker(en) == "2" {
					return nil, reject
				}
			}
			return accept(in), nil
		}}
		e, _ := newEmitter(t, api, bus.Options{MaxInFlight: 1})
		errs := e.Emit(context.Background(), entries(12, 100))
		if got := fmt.Sprint(api.markers()); got != "[[0 1 2 3 4 5 6 7 8 9] [10 11] [0] [1] [2] [3] [4] [5] [6] [7] [8] [9]]" {
			t.Errorf("calls %s; want the rejected call's entries sent one by one", got)
		}
		for i, err := range errs {
			if i == 2 {
				var ce *bus.CallError
				if !retry.IsPermanent(err) || errors.Is(err, bus.ErrUnavailable) || !errors.As(err, &ce) || ce.Kind != bus.KindRejected {
					t.Errorf("entry 2: %v; want permanent, rejected, not unavailable", err)
				}
				continue
			}
			if err != nil {
				t.Errorf("entry %d: %v", i, err)
			}
		}
		if _, _, down := e.Health().Unavailable(); down {
			t.Error("a rejected request marked the bus unavailable")
		}
	}
}

// One Emit with every outcome at once: accepted, permanent by index, retryable by index, a
// call failed as a whole; only the permanent one is reported failed.
func TestMixedOutcomes(t *testing.T) {
	api := &fakeAPI{fn: func(_ context.Context, call int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		first := marker(in.Entries[0])
		switch {
		case call < 2 && first == "0":
			return fail(in, map[int]string{1: "MalformedDetail", 2: "InternalFailure", 3: "ThrottlingException"}), nil
		case call < 2 && first == "10":
			return nil, &smithy.GenericAPIError{Code: "ThrottlingException"}
		}
		return accept(in), nil
	}}
	e, _ := newEmitter(t, api, bus.Options{MaxInFlight: 2})
	errs := e.Emit(context.Background(), entries(15, 100))
	for i, err := range errs {
		if i == 1 {
			if !retry.IsPermanent(err) {
				t.Errorf("entry 1: %v; want permanent", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}
	calls := api.markers()
	if len(calls) != 3 || fmt.Sprint(calls[2]) != "[2 3 10 11 12 13 14]" {
		t.Errorf("calls %v; want a third call with exactly entries 2, 3 and 10–14", calls)
	}
}

// A call that never answers is given up on after CallTimeout and retried; Emit's caller does
// not wait for it.
func TestCallTimeout(t *testing.T) {
	api := &fakeAPI{fn: func(ctx context.Context, call int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		if call == 0 {
			<-ctx.Done()
			return nil, fmt.Errorf("operation error EventBridge: PutEvents: %w", ctx.Err())
		}
		return accept(in), nil
	}}
	e, _ := newEmitter(t, api, bus.Options{CallTimeout: 50 * time.Millisecond})
	start := time.Now()
	allNil(t, e.Emit(context.Background(), entries(3, 100)))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Emit took %v", d)
	}
	if len(api.calls) != 2 {
		t.Errorf("%d calls, want 2", len(api.calls))
	}
	// The outage was seen, and ended with the second call.
	if _, _, down := e.Health().Unavailable(); down {
		t.Error("still unavailable after the retry went through")
	}

	hung := &fakeAPI{fn: func(ctx context.Context, _ int, _ *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	e, _ = newEmitter(t, hung, bus.Options{CallTimeout: 20 * time.Millisecond, MaxAttempts: 2})
	for i, err := range e.Emit(context.Background(), entries(2, 100)) {
		var ce *bus.CallError
		if !errors.As(err, &ce) || ce.Kind != bus.KindTimeout || retry.IsPermanent(err) || !errors.Is(err, bus.ErrUnavailable) {
			t.Errorf("entry %d: %v; want a retryable timeout", i, err)
		}
	}
	if _, code, down := e.Health().Unavailable(); !down || code != string(bus.KindTimeout) {
		t.Errorf("health %q %v; want unavailable (timeout)", code, down)
	}
}

func TestEntryTooLargeIsNeverSent(t *testing.T) {
	api := &fakeAPI{}
	e, _ := newEmitter(t, api, bus.Options{})
	in := entries(3, 100)
	in[1] = entry("big", bus.MaxRequestBytes+1)
	errs := e.Emit(context.Background(), in)
	var ee *bus.EntryError
	if !errors.As(errs[1], &ee) || ee.Code != bus.CodeEntryTooLarge || ee.Attempts != 0 || !retry.IsPermanent(errs[1]) {
		t.Fatalf("entry 1: %v; want a permanent %s, never sent", errs[1], bus.CodeEntryTooLarge)
	}
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("others: %v", errs)
	}
	if got := fmt.Sprint(api.markers()); got != "[[0 2]]" {
		t.Errorf("calls %s, want [[0 2]]", got)
	}
}

func TestMaxEntryBytes(t *testing.T) {
	api := &fakeAPI{}
	e, _ := newEmitter(t, api, bus.Options{MaxEntryBytes: bus.MaxEntryBytesLimit, MaxInFlight: 1})
	if got := e.Options().MaxRequestBytes; got != bus.MaxEntryBytesLimit {
		t.Errorf("MaxRequestBytes defaulted to %d, want MaxEntryBytes", got)
	}
	in := []types.PutEventsRequestEntry{exactSize("a", 600<<10), exactSize("b", 600<<10), exactSize("c", bus.MaxEntryBytesLimit+1)}
	errs := e.Emit(context.Background(), in)
	if errs[0] != nil || errs[1] != nil || !retry.IsPermanent(errs[2]) {
		t.Errorf("errors %v; want two 600 KB entries accepted, the one over 1 MB permanent", errs)
	}
	if got := fmt.Sprint(api.markers()); got != "[[a] [b]]" {
		t.Errorf("calls %s, want one 600 KB entry per call", got)
	}
}

func TestMisalignedResponseIsRetried(t *testing.T) {
	api := &fakeAPI{fn: func(_ context.Context, call int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		if call == 0 {
			return &eventbridge.PutEventsOutput{}, nil
		}
		return accept(in), nil
	}}
	e, _ := newEmitter(t, api, bus.Options{})
	allNil(t, e.Emit(context.Background(), entries(4, 100)))
	if len(api.calls) != 2 {
		t.Errorf("%d calls, want 2", len(api.calls))
	}
}

func TestContextCancelStopsACall(t *testing.T) {
	started := make(chan struct{}, 100)
	api := &fakeAPI{fn: func(ctx context.Context, _ int, _ *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	e, _ := newEmitter(t, api, bus.Options{MaxInFlight: 2})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	errs := e.Emit(ctx, entries(50, 100))
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) || retry.IsPermanent(err) {
			t.Fatalf("entry %d: %v; want context.Canceled, not permanent", i, err)
		}
	}
	if n := len(api.calls); n > 2 {
		t.Errorf("%d calls were made after the cancel; want at most the 2 in flight", n)
	}
}

func TestContextCancelStopsTheBackoff(t *testing.T) {
	api := &fakeAPI{fn: func(_ context.Context, _ int, _ *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException"}
	}}
	// The real sleep, with a backoff that may be far longer than the test.
	e, err := bus.New(api, bus.Options{BaseBackoff: time.Hour, MaxBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	errs := e.Emit(ctx, entries(3, 100))
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Emit took %v after the deadline", d)
	}
	// Either the backoff would have ended after the deadline (Emit returns at once with the
	// throttle) or it was cut by the deadline (Emit returns the context's error with it).
	for i, err := range errs {
		var ee *bus.EntryError
		if !errors.As(err, &ee) || ee.Attempts != 1 || retry.IsPermanent(err) || !errors.Is(err, bus.ErrUnavailable) {
			t.Errorf("entry %d: %v; want a retryable, unavailable failure after 1 attempt", i, err)
		}
	}
}

// A retry whose backoff would end after the deadline is not waited for: Emit hands the time
// back to its caller with the entries' last errors.
func TestBackoffPastDeadlineReturnsAtOnce(t *testing.T) {
	api := &fakeAPI{fn: func(_ context.Context, _ int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		return fail(in, map[int]string{0: "InternalFailure"}), nil
	}}
	// Full jitter over an hour: the chance of a wait under the 10 ms left is 3 in a million.
	e, s := newEmitter(t, api, bus.Options{BaseBackoff: time.Hour, MaxBackoff: time.Hour, MaxAttempts: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	errs := e.Emit(ctx, entries(2, 100))
	if len(s.Waits()) != 0 && s.Waits()[0] > 10*time.Millisecond {
		t.Errorf("slept %v past the deadline", s.Waits())
	}
	var ee *bus.EntryError
	if !errors.As(errs[0], &ee) || ee.Code != "InternalFailure" || retry.IsPermanent(errs[0]) || errs[1] != nil {
		t.Errorf("errors %v; want entry 0's retryable InternalFailure, entry 1 accepted", errs)
	}
}

func TestMaxInFlight(t *testing.T) {
	const limit = 3
	var inFlight, peak atomic.Int32
	api := &fakeAPI{fn: func(ctx context.Context, _ int, in *eventbridge.PutEventsInput) (*eventbridge.PutEventsOutput, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		// Hold the call until the bound is reached (or a while), so the test sees the peak.
		deadline := time.Now().Add(200 * time.Millisecond)
		for inFlight.Load() < limit && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(2 * time.Millisecond)
		return accept(in), nil
	}}
	e, _ := newEmitter(t, api, bus.Options{MaxInFlight: limit})
	// Two Emit calls at once share the bound.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { allNil(t, e.Emit(context.Background(), entries(100, 100))) })
	}
	wg.Wait()
	if p := peak.Load(); p != limit {
		t.Errorf("peak concurrency %d, want %d", p, limit)
	}
	if len(api.calls) != 20 {
		t.Errorf("%d calls, want 20", len(api.calls))
	}
}

func TestNoEntries(t *testing.T) {
	api := &fakeAPI{}
	e, _ := newEmitter(t, api, bus.Options{})
	if errs := e.Emit(context.Background(), nil); len(errs) != 0 || len(api.calls) != 0 {
		t.Errorf("Emit(nil) = %v with %d calls", errs, len(api.calls))
	}
}

func TestOptions(t *testing.T) {
	if _, err := bus.New(nil, bus.Options{}); err == nil {
		t.Error("New(nil api): no error")
	}
	for _, o := range []bus.Options{
		{MaxInFlight: -1}, {MaxAttempts: -1}, {BaseBackoff: -time.Second},
		{BaseBackoff: time.Second, MaxBackoff: time.Millisecond},
		{CallTimeout: -time.Second}, {MaxEntryBytes: -1}, {MaxEntryBytes: bus.MaxEntryBytesLimit + 1},
		{MaxRequestBytes: bus.MaxEntryBytesLimit + 1}, {MaxEntryBytes: 300 << 10, MaxRequestBytes: 256 << 10},
	} {
		if _, err := bus.New(&fakeAPI{}, o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}

func TestEntrySize(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		e    types.PutEventsRequestEntry
		want int
	}{
		{"empty", types.PutEventsRequestEntry{}, 0},
		{"time counts 14", types.PutEventsRequestEntry{Time: &now}, 14},
		{"strings by UTF-8 bytes", types.PutEventsRequestEntry{
			Source:     aws.String("healthlake.cdc"),     // 14
			DetailType: aws.String("FHIR Resource Créé"), // 20 (é is 2 bytes)
			Detail:     aws.String(`{"a":"ü"}`),          // 10
		}, 44},
		{"each resource", types.PutEventsRequestEntry{Resources: []string{"arn:a", "arn:bb"}}, 11},
		{"bus name and trace header are free", types.PutEventsRequestEntry{
			EventBusName: aws.String("my-bus"), TraceHeader: aws.String("Root=1-abc"), Source: aws.String("s"),
		}, 1},
	} {
		if got := bus.EntrySize(tc.e); got != tc.want {
			t.Errorf("%s: EntrySize = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestEntryErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		err  *bus.EntryError
		want string
	}{
		{&bus.EntryError{Code: "InternalFailure", Message: "oops", Attempts: 3}, "eventbridge: entry not accepted after 3 attempts (retryable): InternalFailure: oops"},
		{&bus.EntryError{Code: "InvalidArgument", Attempts: 1, Permanent: true}, "eventbridge: entry not accepted after 1 attempts (permanent): InvalidArgument"},
		{&bus.EntryError{Attempts: 2, Err: errors.New("connection reset")}, "eventbridge: entry not accepted after 2 attempts (retryable): connection reset"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if retry.IsPermanent(nil) || retry.IsPermanent(errors.New("x")) {
		t.Error("IsPermanent of a non-EntryError")
	}
	if !retry.IsPermanent(fmt.Errorf("wrapped: %w", &bus.EntryError{Permanent: true})) {
		t.Error("IsPermanent does not see through wrapping")
	}
}

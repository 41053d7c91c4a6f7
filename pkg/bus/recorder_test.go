package bus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// recorderURL is the local stack's EventBridge recorder (deploy/local/recorder, started by
// `deploy/local/stack.sh up eventbridge`). The tests that need it fail when it is not there,
// except under -short, where they are skipped.
func recorderURL(t testing.TB) string {
	t.Helper()
	return stack.URL(t, stack.EventBridge)
}

// recorderClient is the real EventBridge client a program builds, pointed at the recorder, with
// static credentials so nothing reaches a real credential provider, and without the SDK's own
// retries, so that throttled calls reach the Emitter's retry (and the test does not wait for
// the SDK's backoff of up to 20 s). Its idle connections are closed when the test ends (goleak
// would see their goroutines). opts adjust it further (the benchmarks' transports).
func recorderClient(t testing.TB, url string, opts ...func(*eventbridge.Options)) *eventbridge.Client {
	t.Helper()
	return stack.EventBridgeClient(t, append([]func(*eventbridge.Options){func(o *eventbridge.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = aws.NopRetryer{}
	}}, opts...)...)
}

type recorderStats struct {
	Calls           int64  `json:"calls"`
	EntriesAccepted int64  `json:"entriesAccepted"`
	EntriesFailed   int64  `json:"entriesFailed"`
	Throttled       int64  `json:"throttled"`
	Out             string `json:"out"`
}

// adminClient keeps no idle connections, which goleak would see.
var adminClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// admin calls the recorder's admin API and decodes the JSON answer into out (if not nil).
func admin(t testing.TB, method, url string, body []byte, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", method, url, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
}

// TestEmitThroughRecorder sends 25 entries through the real SDK client to the recorder while it
// fails 30% of entries and throttles 20% of calls: every entry ends up accepted exactly once.
func TestEmitThroughRecorder(t *testing.T) {
	url := recorderURL(t)
	client := recorderClient(t, url)

	// The recorder is shared: this run's own Source picks out its lines, and the failure
	// injection is set for that Source only, so tests running at the same time in other
	// packages see none of it.
	run := stack.RandomHex(8)
	source := "healthlake.cdc.test." + run
	// failNextIndexes makes sure the next call has failures even if the random ones miss.
	admin(t, http.MethodPost, url+"/_recorder/config", []byte(`{"source":"`+source+`","failRate":0.3,"throttleRate":0.2,"failNextIndexes":[0,3,7]}`), nil)
	var before recorderStats
	admin(t, http.MethodGet, url+"/_recorder/stats", nil, &before)
	const n = 25
	arn := "arn:aws:healthlake:us-east-1:123456789012:datastore/fhir/0123456789abcdef0123456789abcdef"
	when := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	in := make([]types.PutEventsRequestEntry, n)
	for i := range in {
		in[i] = types.PutEventsRequestEntry{
			Source:     aws.String(source),
			DetailType: aws.String("Bus Integration Test"),
			Detail:     aws.String(`{"run":"` + run + `","marker":` + strconv.Itoa(i) + `}`),
			Resources:  []string{arn},
			Time:       aws.Time(when),
		}
	}
	var calls, failed atomic.Int64
	e, err := bus.New(client, bus.Options{
		MaxAttempts: 30, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnCall: func(_, f int, _ error) { calls.Add(1); failed.Add(int64(f)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	allNil(t, e.Emit(ctx, in))

	var after recorderStats
	admin(t, http.MethodGet, url+"/_recorder/stats", nil, &after)
	t.Logf("%d calls, %d entry failures (by entry or by call), all retried; recorder: +%d accepted, +%d failed, +%d throttled",
		calls.Load(), failed.Load(), after.EntriesAccepted-before.EntriesAccepted,
		after.EntriesFailed-before.EntriesFailed, after.Throttled-before.Throttled)
	if failed.Load() == 0 {
		t.Error("no entry failed: the retry path was not exercised")
	}
	if d := after.EntriesAccepted - before.EntriesAccepted; d < n {
		t.Errorf("recorder accepted %d entries, want at least %d", d, n)
	}

	// The output file holds each of this run's entries exactly once, as sent.
	seen := map[int]int{}
	for _, rec := range stack.Recorded(t, source) {
		d := stack.Detail[struct {
			Run    string `json:"run"`
			Marker int    `json:"marker"`
		}](t, rec)
		if d.Run != run {
			t.Errorf("recorded detail %s is not one sent by this run", rec.Detail)
			continue
		}
		seen[d.Marker]++
		if rec.DetailType != "Bus Integration Test" || len(rec.Resources) != 1 || rec.Resources[0] != arn || !rec.Time.Equal(when) {
			t.Errorf("entry %d recorded as %+v", d.Marker, rec)
		}
	}
	if len(seen) != n {
		t.Errorf("recorded %d distinct markers of this run, want %d", len(seen), n)
	}
	for m, c := range seen {
		if m < 0 || m >= n || c != 1 {
			t.Errorf("marker %d recorded %d times", m, c)
		}
	}
}

// TestThrottledCallsThroughRecorder: the SDK's ThrottlingException for a whole call is
// retryable, and an entry that never gets through ends with it, not as permanent.
func TestThrottledCallsThroughRecorder(t *testing.T) {
	url := recorderURL(t)
	var prev json.RawMessage
	admin(t, http.MethodGet, url+"/_recorder/config", nil, &prev)
	t.Cleanup(func() { admin(t, http.MethodPost, url+"/_recorder/config", prev, nil) })
	admin(t, http.MethodPost, url+"/_recorder/config", []byte(`{"throttleRate":1}`), nil)

	var calls atomic.Int64
	e, err := bus.New(recorderClient(t, url), bus.Options{
		MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		OnCall: func(int, int, error) { calls.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := entries(12, 100)
	for i := range in {
		in[i].Source = aws.String("healthlake.cdc.test")
	}
	for i, err := range e.Emit(ctx, in) {
		var ee *bus.EntryError
		if !errors.As(err, &ee) || ee.Code != "ThrottlingException" || ee.Attempts != 3 || retry.IsPermanent(err) {
			t.Errorf("entry %d: %v; want a retryable ThrottlingException after 3 attempts", i, err)
		}
	}
	if calls.Load() != 6 {
		t.Errorf("%d calls, want 6 (2 per attempt)", calls.Load())
	}
}

// benchEntries are n entries of 1 to 2 KB (by EntrySize), the size of FHIR change events.
func benchEntries(n int) []types.PutEventsRequestEntry {
	in := make([]types.PutEventsRequestEntry, n)
	for i := range in {
		in[i] = entry(strconv.Itoa(i), 1024+(i*97)%1025)
		in[i].Source = aws.String("healthlake.cdc.bench")
		in[i].Resources = []string{"arn:aws:healthlake:us-east-1:123456789012:datastore/fhir/0123456789abcdef0123456789abcdef"}
		in[i].Time = aws.Time(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	}
	return in
}

// BenchmarkEmitRecorder is one worker emitting to the local recorder through the real SDK
// client over loopback HTTP, with 1 to 32 PutEvents calls in flight: each iteration is one
// Emit of 1,000 entries of 1–2 KB (100 calls). It reports events/s. The client's idle pool is
// sized to MaxInFlight (HTTPClient); "sdkpool" is the SDK's default pool of 10 for comparison.
// The recorder's output file is emptied afterwards (POST /_recorder/reset): run it on your own
// stack.
func BenchmarkEmitRecorder(b *testing.B) {
	url := recorderURL(b)
	b.Cleanup(func() { admin(b, http.MethodPost, url+"/_recorder/reset", nil, nil) })
	in := benchEntries(1000)
	for _, tc := range []struct {
		inFlight int
		sdkPool  bool
	}{{1, false}, {4, false}, {8, false}, {16, false}, {32, false}, {16, true}, {32, true}} {
		name := fmt.Sprintf("inflight=%d", tc.inFlight)
		if tc.sdkPool {
			name += "/sdkpool"
		}
		b.Run(name, func(b *testing.B) {
			opts := bus.Options{MaxInFlight: tc.inFlight}
			// The transport HTTPClient builds, held here so its connections can be closed.
			tr := bus.HTTPClient(opts).GetTransport()
			if tc.sdkPool {
				tr = awshttp.NewBuildableClient().GetTransport()
			}
			benchEmit(b, recorderEmitter(b, url, opts, tr), in)
		})
	}
}

// BenchmarkEmitLatency is BenchmarkEmitRecorder with the recorder holding each call 20 ms
// (delayMs), as a stand-in for the round trip to EventBridge: throughput is then MaxInFlight
// × 10 entries / 20 ms at most (Little's law), which is what MaxInFlight is for.
func BenchmarkEmitLatency(b *testing.B) {
	url := recorderURL(b)
	source := "healthlake.cdc.bench.latency"
	admin(b, http.MethodPost, url+"/_recorder/config", []byte(`{"source":"`+source+`","delayMs":20}`), nil)
	b.Cleanup(func() { admin(b, http.MethodPost, url+"/_recorder/reset", nil, nil) })
	in := benchEntries(1000)
	for i := range in {
		in[i].Source = aws.String(source)
	}
	for _, n := range []int{1, 4, 8, 16, 32, 64} {
		b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
			opts := bus.Options{MaxInFlight: n}
			benchEmit(b, recorderEmitter(b, url, opts, bus.HTTPClient(opts).GetTransport()), in)
		})
	}
}

// recorderEmitter is an Emitter with opts on a recorder client that sends through tr, whose
// idle connections are closed when the benchmark ends.
func recorderEmitter(b *testing.B, url string, opts bus.Options, tr *http.Transport) *bus.Emitter {
	b.Helper()
	b.Cleanup(tr.CloseIdleConnections)
	e, err := bus.New(recorderClient(b, url, func(o *eventbridge.Options) { o.HTTPClient = &http.Client{Transport: tr} }), opts)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkEmitFake is the emitter's own cost per event (packing, goroutines, result
// handling) against an in-memory PutEvents that accepts everything: no network, no SDK.
func BenchmarkEmitFake(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			e, err := bus.New(acceptAll{}, bus.Options{})
			if err != nil {
				b.Fatal(err)
			}
			benchEmit(b, e, benchEntries(n))
		})
	}
}

// acceptAll is a PutEvents that accepts every entry and remembers nothing.
type acceptAll struct{}

func (acceptAll) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	out := &eventbridge.PutEventsOutput{Entries: make([]types.PutEventsResultEntry, len(in.Entries))}
	for i := range out.Entries {
		out.Entries[i].EventId = aws.String("ev")
	}
	return out, nil
}

func benchEmit(b *testing.B, e *bus.Emitter, in []types.PutEventsRequestEntry) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for i, err := range e.Emit(ctx, in) {
			if err != nil {
				b.Fatalf("entry %d: %v", i, err)
			}
		}
	}
	events := float64(b.N * len(in))
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/events, "ns/event")
	b.ReportMetric(float64(testing.AllocsPerRun(1, func() { e.Emit(ctx, in) }))/float64(len(in)), "allocs/event")
}

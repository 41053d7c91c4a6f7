package bus_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// TestCallFailureWindowThroughRecorder: the recorder answers every call of this test's Source
// with a call-level error for a while (failCallsWith), as EventBridge does with revoked
// permissions, expired credentials or a deleted bus. The caller loops like the pipeline: an
// entry is acked only when Emit returns nil for it. Nothing is acked during the window, no
// entry is ever permanent, Health says unavailable during it and recovers after, and the
// recorder holds every entry exactly once.
func TestCallFailureWindowThroughRecorder(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
		window time.Duration
	}{
		{"AccessDeniedException", 400, 10 * time.Second},
		{"ExpiredTokenException", 400, time.Second},
		{"UnrecognizedClientException", 400, time.Second},
		{"ResourceNotFoundException", 400, time.Second},
		{"AccessDeniedException", 403, time.Second},
	} {
		t.Run(fmt.Sprintf("%s-%d-%v", tc.code, tc.status, tc.window), func(t *testing.T) {
			callFailureWindow(t, tc.code, tc.status, tc.window)
		})
	}
}

func callFailureWindow(t *testing.T, code string, status int, window time.Duration) {
	url := recorderURL(t)
	run := stack.RandomHex(8)
	source := "healthlake.cdc.test." + run
	t.Cleanup(func() {
		admin(t, http.MethodPost, url+"/_recorder/config", []byte(`{"source":"`+source+`","failCallsWith":{"code":""}}`), nil)
	})
	e, err := bus.New(recorderClient(t, url), bus.Options{MaxAttempts: 3, BaseBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 25
	in := make([]types.PutEventsRequestEntry, n)
	for i := range in {
		in[i] = entry(strconv.Itoa(i), 1500)
		in[i].Source = aws.String(source)
	}
	cfg, _ := json.Marshal(map[string]any{"source": source, "failCallsWith": map[string]any{"code": code, "status": status, "forMs": window.Milliseconds()}})
	start := time.Now()
	admin(t, http.MethodPost, url+"/_recorder/config", cfg, nil)

	ctx, cancel := context.WithTimeout(context.Background(), window+30*time.Second)
	defer cancel()
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	var firstAck time.Time
	sawDown := false
	for rounds := 0; len(pending) > 0; rounds++ {
		if ctx.Err() != nil {
			t.Fatalf("%d entries still not accepted after %d rounds", len(pending), rounds)
		}
		batch := make([]types.PutEventsRequestEntry, len(pending))
		for k, i := range pending {
			batch[k] = in[i]
		}
		errs := e.Emit(ctx, batch)
		var still []int
		for k, err := range errs {
			switch {
			case err == nil:
				if firstAck.IsZero() {
					firstAck = time.Now()
				}
			case retry.IsPermanent(err):
				t.Fatalf("entry %d: permanent %v; a call-level error must never be", pending[k], err)
			default:
				var ce *bus.CallError
				if !errors.Is(err, bus.ErrUnavailable) || !errors.As(err, &ce) || ce.Code != code || ce.Status != status {
					t.Fatalf("entry %d: %v; want ErrUnavailable from a %s %d call error", pending[k], err, code, status)
				}
				still = append(still, pending[k])
			}
		}
		if _, c, down := e.Health().Unavailable(); down {
			sawDown = true
			if c != code {
				t.Errorf("health code %q, want %s", c, code)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(100 * time.Millisecond) // the pipeline's own backoff between windows
		}
	}
	// The window started when the recorder got the config, a little after start.
	if d := firstAck.Sub(start); d < window-200*time.Millisecond {
		t.Errorf("first entry acked %v after the failure started; want none during the %v window", d, window)
	}
	if !sawDown {
		t.Error("Health never said unavailable during the window")
	}
	if _, _, down := e.Health().Unavailable(); down {
		t.Error("Health still unavailable after every entry went through")
	}
	seen := recordedMarkers(t, url, source)
	if len(seen) != n {
		t.Errorf("recorded %d distinct entries, want %d", len(seen), n)
	}
	for m, c := range seen {
		if c != 1 {
			t.Errorf("entry %s recorded %d times", m, c)
		}
	}
	t.Logf("%s (%d) for %v: first ack after %v", code, status, window, firstAck.Sub(start).Round(time.Millisecond))
}

// TestHungCallTimesOut: a server that accepts the connection and never answers (which the
// recorder cannot do) costs at most CallTimeout per attempt through the real SDK client; the
// entries come back retryable, as a timeout, with the bus unavailable.
func TestHungCallTimesOut(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	e, err := bus.New(recorderClient(t, srv.URL), bus.Options{CallTimeout: 200 * time.Millisecond, MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	errs := e.Emit(context.Background(), entries(3, 100))
	took := time.Since(start)
	for i, err := range errs {
		var ce *bus.CallError
		if !errors.As(err, &ce) || ce.Kind != bus.KindTimeout || retry.IsPermanent(err) || !errors.Is(err, bus.ErrUnavailable) {
			t.Errorf("entry %d: %v; want a retryable timeout", i, err)
		}
	}
	if took < 400*time.Millisecond || took > 3*time.Second {
		t.Errorf("Emit took %v; want about 2 × CallTimeout (400 ms)", took)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("%d requests reached the server, want 2 (one per attempt)", got)
	}
	if _, code, down := e.Health().Unavailable(); !down || code != string(bus.KindTimeout) {
		t.Errorf("health %q %v; want unavailable (timeout)", code, down)
	}
	if d := (bus.Options{CallTimeout: 200 * time.Millisecond, MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond}).MaxEmitDuration(); took > d+time.Second {
		t.Errorf("Emit took %v, over MaxEmitDuration %v", took, d)
	}
}

// TestPartialFailureThroughRecorder: in one Emit through the recorder, an entry the recorder
// rejects as malformed (InvalidArgument) fails permanently by its index; entries failed with
// InternalFailure are retried and recorded once; entries denied per entry
// (AccessDeniedException as the entry's ErrorCode) are retried, not permanent, and flag the bus
// unavailable until they go through.
func TestPartialFailureThroughRecorder(t *testing.T) {
	url := recorderURL(t)
	run := stack.RandomHex(8)
	source := "healthlake.cdc.test." + run
	t.Cleanup(func() {
		admin(t, http.MethodPost, url+"/_recorder/config", []byte(`{"source":"`+source+`","failNextIndexes":[],"failRate":0}`), nil)
	})
	e, err := bus.New(recorderClient(t, url), bus.Options{BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	in := make([]types.PutEventsRequestEntry, 10)
	for i := range in {
		in[i] = entry(strconv.Itoa(i), 500)
		in[i].Source = aws.String(source)
	}
	in[4].Detail = aws.String(`["not", "an", "object", "4"]`)

	admin(t, http.MethodPost, url+"/_recorder/config", []byte(`{"source":"`+source+`","failNextIndexes":[1,7]}`), nil)
	errs := e.Emit(context.Background(), in)
	for i, err := range errs {
		if i == 4 {
			var ee *bus.EntryError
			if !retry.IsPermanent(err) || !errors.As(err, &ee) || ee.Code != "InvalidArgument" || ee.Attempts != 1 {
				t.Errorf("entry 4: %v; want a permanent InvalidArgument after 1 attempt", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}

	// Denied per entry: every entry of the call, for the first call only.
	admin(t, http.MethodPost, url+"/_recorder/config", []byte(`{"source":"`+source+`","failCode":"AccessDeniedException","failNextIndexes":[0,1,2]}`), nil)
	second := make([]types.PutEventsRequestEntry, 3)
	for i := range second {
		second[i] = entry("d"+strconv.Itoa(i), 500)
		second[i].Source = aws.String(source)
	}
	denied := 0
	e2, err := bus.New(recorderClient(t, url), bus.Options{MaxAttempts: 2, BaseBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		OnCall: func(_, failed int, _ error) {
			denied += failed // MaxInFlight calls, but one call per attempt here
		}})
	if err != nil {
		t.Fatal(err)
	}
	allNil(t, e2.Emit(context.Background(), second))
	if denied != 3 {
		t.Errorf("%d entries denied, want the 3 of the first call", denied)
	}
	if _, _, down := e2.Health().Unavailable(); down {
		t.Error("still unavailable after the retry went through")
	}

	seen := recordedMarkers(t, url, source)
	if len(seen) != 12 || seen["4"] != 0 {
		t.Errorf("recorded %v; want the 9 good entries and the 3 denied ones, each once", seen)
	}
	for m, c := range seen {
		if c != 1 {
			t.Errorf("entry %s recorded %d times", m, c)
		}
	}
}

// recordedMarkers counts, by marker, the entries of source in the recorder's output file. (Not
// stack.RecorderLines: its http.Get leaves an idle connection of http.DefaultClient that
// goleak reports.)
func recordedMarkers(t *testing.T, url, source string) map[string]int {
	t.Helper()
	var st recorderStats
	admin(t, http.MethodGet, url+"/_recorder/stats", nil, &st)
	f, err := os.Open(st.Out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(source)) {
			continue
		}
		var rec struct {
			Source string
			Detail struct{ M string }
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Source == source {
			seen[rec.Detail.M]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return seen
}

// TestSlowRecorderTimesOut: the recorder holds this test's calls longer than CallTimeout
// (delayMs): each attempt is abandoned at CallTimeout, the entries come back retryable as
// timeouts, and nothing was recorded; once the delay is gone they go through, once each.
func TestSlowRecorderTimesOut(t *testing.T) {
	url := recorderURL(t)
	source := "healthlake.cdc.test." + stack.RandomHex(8)
	scope := func(knobs string) []byte { return []byte(`{"source":"` + source + `",` + knobs + `}`) }
	t.Cleanup(func() { admin(t, http.MethodPost, url+"/_recorder/config", scope(`"delayMs":0`), nil) })
	admin(t, http.MethodPost, url+"/_recorder/config", scope(`"delayMs":2000`), nil)
	opts := bus.Options{CallTimeout: 200 * time.Millisecond, MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	e, err := bus.New(recorderClient(t, url), opts)
	if err != nil {
		t.Fatal(err)
	}
	in := entries(5, 300)
	for i := range in {
		in[i].Source = aws.String(source)
	}
	start := time.Now()
	errs := e.Emit(context.Background(), in)
	if took := time.Since(start); took > opts.MaxEmitDuration()+time.Second {
		t.Errorf("Emit took %v, over MaxEmitDuration %v", took, opts.MaxEmitDuration())
	}
	for i, err := range errs {
		var ce *bus.CallError
		if !errors.As(err, &ce) || ce.Kind != bus.KindTimeout || retry.IsPermanent(err) {
			t.Errorf("entry %d: %v; want a retryable timeout", i, err)
		}
	}
	admin(t, http.MethodPost, url+"/_recorder/config", scope(`"delayMs":0`), nil)
	allNil(t, e.Emit(context.Background(), in))
	seen := recordedMarkers(t, url, source)
	if len(seen) != 5 {
		t.Errorf("recorded %v, want the 5 entries once each (none from the abandoned calls)", seen)
	}
	for m, c := range seen {
		if c != 1 {
			t.Errorf("entry %s recorded %d times", m, c)
		}
	}
}

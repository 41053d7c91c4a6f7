package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const maxAttempts = 3

type fixture struct {
	rec    *Recorder
	srv    *httptest.Server
	client *eventbridge.Client
}

// newFixture serves a Recorder on 127.0.0.1 and returns the real EventBridge client pointed at
// it, retrying like a program would but without waiting between attempts.
func newFixture(t *testing.T, f Failures) *fixture {
	t.Helper()
	rec, err := New(Options{
		Out:      filepath.Join(t.TempDir(), "sub", "events.jsonl"),
		Seed:     7,
		Failures: f,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rec.Handler())
	transport := &http.Transport{}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		srv.Close()
		if err := rec.Close(); err != nil {
			t.Error(err)
		}
	})
	client := eventbridge.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}, func(o *eventbridge.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.HTTPClient = &http.Client{Transport: transport}
		o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		})
	})
	return &fixture{rec: rec, srv: srv, client: client}
}

func (f *fixture) put(t *testing.T, entries []types.PutEventsRequestEntry) (*eventbridge.PutEventsOutput, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
}

func (f *fixture) admin(t *testing.T, method, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (f *fixture) stats(t *testing.T) statsResponse {
	t.Helper()
	var s statsResponse
	f.admin(t, http.MethodGet, "/_recorder/stats", "", &s)
	return s
}

func readRecords(t *testing.T, path string) []record {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var recs []record
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v", len(recs)+1, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func entries(n int) []types.PutEventsRequestEntry {
	es := make([]types.PutEventsRequestEntry, n)
	for i := range es {
		es[i] = types.PutEventsRequestEntry{
			Source:     aws.String("healthlake.cdc"),
			DetailType: aws.String("FHIR Resource Updated"),
			Detail:     aws.String(fmt.Sprintf(`{"n": %d}`, i)),
		}
	}
	return es
}

func apiErrorCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae.ErrorCode()
}

func TestEventBridgeEntrySize(t *testing.T) {
	ts := json.Number("1700000000")
	tests := []struct {
		name  string
		entry putEventsEntry
		want  int
	}{
		{"empty", putEventsEntry{}, 0},
		{"time counts 14", putEventsEntry{Time: &ts}, 14},
		{"fields", putEventsEntry{Source: "abc", DetailType: "de", Detail: `{"a":1}`}, 3 + 2 + 7},
		{"resources", putEventsEntry{Resources: []string{"arn:a", "arn:bc"}}, 5 + 6},
		{"bus and trace are free", putEventsEntry{EventBusName: "bus", TraceHeader: "Root=1"}, 0},
		{"utf-8 bytes", putEventsEntry{Detail: `{"é":"€"}`}, 12},
		{"all", putEventsEntry{Time: &ts, Source: "s", DetailType: "t", Detail: "{}", Resources: []string{"r"}}, 14 + 1 + 1 + 2 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := entrySize(tt.entry); got != tt.want {
				t.Errorf("entrySize = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestEventBridgeParseEpochSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"1700000000", time.Unix(1700000000, 0)},
		{"1700000000.123", time.Unix(1700000000, 123e6)},
		{"1700000000.5", time.Unix(1700000000, 5e8)},
		{"1.7e9", time.Unix(1700000000, 0)},
		{"-1.5", time.Unix(-1, -5e8)},
	}
	for _, tt := range tests {
		got, err := parseEpochSeconds(json.Number(tt.in))
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseEpochSeconds(%s) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := parseEpochSeconds("x.1"); err == nil {
		t.Error("parseEpochSeconds(x.1): want an error")
	}
}

func TestEventBridgeElevenEntriesRejected(t *testing.T) {
	f := newFixture(t, Failures{})
	_, err := f.put(t, entries(11))
	if code := apiErrorCode(t, err); code != "ValidationException" {
		t.Fatalf("error code %q, want ValidationException (%v)", code, err)
	}
	if !strings.Contains(err.Error(), "less than or equal to 10") {
		t.Errorf("message does not say the limit: %v", err)
	}
	s := f.stats(t)
	if s.Calls != 1 || s.ValidationErrors != 1 || s.EntriesAccepted != 0 {
		t.Errorf("stats %+v: want 1 call, 1 validation error, nothing accepted", s.Stats)
	}
	if recs := readRecords(t, f.rec.Out()); len(recs) != 0 {
		t.Errorf("%d records written for a rejected call", len(recs))
	}
}

func TestEventBridgeNoEntriesRejected(t *testing.T) {
	f := newFixture(t, Failures{})
	_, err := f.put(t, []types.PutEventsRequestEntry{})
	if code := apiErrorCode(t, err); code != "ValidationException" {
		t.Fatalf("error code %q, want ValidationException", code)
	}
}

// sizedEntries returns n entries whose sizes add up to exactly total bytes.
func sizedEntries(n, total int) []types.PutEventsRequestEntry {
	es := entries(n)
	each := total / n
	for i := range es {
		size := each
		if i == n-1 {
			size = total - each*(n-1)
		}
		fill := size - len(*es[i].Source) - len(*es[i].DetailType) - len(`{"p":""}`)
		es[i].Detail = aws.String(`{"p":"` + strings.Repeat("x", fill) + `"}`)
	}
	return es
}

func TestEventBridgeOversizeRejected(t *testing.T) {
	f := newFixture(t, Failures{})

	out, err := f.put(t, sizedEntries(4, maxRequestBytes))
	if err != nil {
		t.Fatalf("exactly %d bytes: %v", maxRequestBytes, err)
	}
	if out.FailedEntryCount != 0 {
		t.Fatalf("exactly %d bytes: %d failed entries", maxRequestBytes, out.FailedEntryCount)
	}

	_, err = f.put(t, sizedEntries(4, maxRequestBytes+1))
	if code := apiErrorCode(t, err); code != "ValidationException" {
		t.Fatalf("one byte over: error code %q, want ValidationException (%v)", code, err)
	}
	if !strings.Contains(err.Error(), "262145 bytes") {
		t.Errorf("message does not give the size: %v", err)
	}

	// Time counts 14 bytes, so a set Time tips an exactly-full call over.
	es := sizedEntries(4, maxRequestBytes)
	es[0].Time = aws.Time(time.Now())
	_, err = f.put(t, es)
	if code := apiErrorCode(t, err); code != "ValidationException" {
		t.Fatalf("full call with Time: error code %q, want ValidationException", code)
	}
	if got := len(readRecords(t, f.rec.Out())); got != 4 {
		t.Errorf("%d records, want the 4 of the accepted call", got)
	}
}

func TestEventBridgeFailNextIndexes(t *testing.T) {
	f := newFixture(t, Failures{})
	f.admin(t, http.MethodPost, "/_recorder/config", `{"failNextIndexes":[3,7]}`, nil)

	out, err := f.put(t, entries(10))
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 2 || len(out.Entries) != 10 {
		t.Fatalf("FailedEntryCount %d, %d entries; want 2 of 10", out.FailedEntryCount, len(out.Entries))
	}
	for i, e := range out.Entries {
		failed := i == 3 || i == 7
		switch {
		case failed && aws.ToString(e.ErrorCode) != defaultFailCode:
			t.Errorf("entry %d: ErrorCode %q, want %s", i, aws.ToString(e.ErrorCode), defaultFailCode)
		case failed && e.EventId != nil:
			t.Errorf("entry %d: failed entry has EventId %q", i, *e.EventId)
		case !failed && (e.EventId == nil || e.ErrorCode != nil):
			t.Errorf("entry %d: want an EventId and no error, got %+v", i, e)
		}
	}

	// The indexes apply to one call only.
	out, err = f.put(t, entries(10))
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("second call: %v, FailedEntryCount %d; want no failures", err, out.FailedEntryCount)
	}
	s := f.stats(t)
	if s.Calls != 2 || s.EntriesAccepted != 18 || s.EntriesFailed != 2 {
		t.Errorf("stats %+v, want 2 calls, 18 accepted, 2 failed", s.Stats)
	}
}

// TestEventBridgeFailuresBySource: an override for one Source fails only that Source's calls,
// so tests sharing the recorder do not disturb each other.
func TestEventBridgeFailuresBySource(t *testing.T) {
	f := newFixture(t, Failures{})
	f.admin(t, http.MethodPost, "/_recorder/config", `{"source":"test.mine","failRate":1}`, nil)

	mine := entries(5)
	for i := range mine {
		mine[i].Source = aws.String("test.mine")
	}
	out, err := f.put(t, mine)
	if err != nil || out.FailedEntryCount != 5 {
		t.Fatalf("own source: %v, FailedEntryCount %d; want all 5 failed", err, out.FailedEntryCount)
	}
	out, err = f.put(t, entries(5))
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("other source: %v, FailedEntryCount %d; want none failed", err, out.FailedEntryCount)
	}
	f.admin(t, http.MethodPost, "/_recorder/reset", "", nil)
	if out, err = f.put(t, mine); err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("after reset: %v, FailedEntryCount %d; want the override gone", err, out.FailedEntryCount)
	}
}

func TestEventBridgeInvalidEntriesFailAlone(t *testing.T) {
	f := newFixture(t, Failures{})
	es := entries(5)
	es[1].Source = nil
	es[2].DetailType = nil
	es[3].Detail = aws.String(`[1, 2]`)
	es[4].Detail = aws.String(`{"unterminated": `)
	out, err := f.put(t, es)
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedEntryCount != 4 {
		t.Fatalf("FailedEntryCount %d, want 4", out.FailedEntryCount)
	}
	if out.Entries[0].EventId == nil {
		t.Error("entry 0: no EventId")
	}
	for i := 1; i < 5; i++ {
		if got := aws.ToString(out.Entries[i].ErrorCode); got != "InvalidArgument" {
			t.Errorf("entry %d: ErrorCode %q, want InvalidArgument", i, got)
		}
		if aws.ToString(out.Entries[i].ErrorMessage) == "" {
			t.Errorf("entry %d: no ErrorMessage", i)
		}
	}
}

func TestEventBridgeFileContent(t *testing.T) {
	f := newFixture(t, Failures{})
	at := time.Date(2025, 3, 4, 5, 6, 7, 891e6, time.UTC)
	before := time.Now()
	out, err := f.put(t, []types.PutEventsRequestEntry{
		{
			Time:         aws.Time(at),
			Source:       aws.String("healthlake.cdc"),
			DetailType:   aws.String("FHIR Resource Created"),
			Detail:       aws.String(`{"resourceType": "Patient", "id": "p1"}`),
			Resources:    []string{"arn:aws:healthlake:us-east-1:123456789012:datastore/fhir/abc"},
			EventBusName: aws.String("cdc-bus"),
			TraceHeader:  aws.String("Root=1-5759e988-bd862e3fe1be46a994272793"),
		},
		{Source: aws.String("healthlake.cdc"), DetailType: aws.String("FHIR Resource Deleted"), Detail: aws.String(`{}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	recs := readRecords(t, f.rec.Out())
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	r := recs[0]
	if r.EventID != aws.ToString(out.Entries[0].EventId) || r.EventBusName != "cdc-bus" ||
		r.Source != "healthlake.cdc" || r.DetailType != "FHIR Resource Created" ||
		!r.Time.Equal(time.Date(2025, 3, 4, 5, 6, 7, 891_000_000, time.UTC)) || r.Time.Location() != time.UTC || len(r.Resources) != 1 ||
		r.TraceHeader != "Root=1-5759e988-bd862e3fe1be46a994272793" {
		t.Errorf("record %+v does not match the entry", r)
	}
	if string(r.Detail) != `{"resourceType":"Patient","id":"p1"}` {
		t.Errorf("detail %s, want the JSON object", r.Detail)
	}
	if r.Received.Before(before.Add(-time.Second)) || r.Received.After(time.Now()) || r.Received.Location() != time.UTC {
		t.Errorf("received %v, want the time of the call in UTC", r.Received)
	}
	r = recs[1]
	if r.EventBusName != "default" || !r.Time.Equal(r.Received) || r.Resources == nil || string(r.Detail) != "{}" {
		t.Errorf("record without optional fields: %+v", r)
	}
}

func TestEventBridgeThrottle(t *testing.T) {
	f := newFixture(t, Failures{ThrottleRate: 1})
	_, err := f.put(t, entries(1))
	if code := apiErrorCode(t, err); code != "ThrottlingException" {
		t.Fatalf("error code %q, want ThrottlingException", code)
	}
	if s := f.stats(t); s.Throttled != maxAttempts {
		t.Errorf("throttled %d calls, want %d (the SDK retries throttling)", s.Throttled, maxAttempts)
	}

	// Half the calls throttled: the SDK's retries get most calls through.
	f.admin(t, http.MethodPost, "/_recorder/config", `{"throttleRate":0.5}`, nil)
	okCalls := 0
	for range 20 {
		if _, err := f.put(t, entries(1)); err == nil {
			okCalls++
		}
	}
	if okCalls < 10 {
		t.Errorf("%d of 20 calls got through with throttleRate 0.5 and %d attempts", okCalls, maxAttempts)
	}
}

func TestEventBridgeFailRateIsSeeded(t *testing.T) {
	f := newFixture(t, Failures{FailRate: 0.3, FailCode: "ThrottlingException"})
	pattern := func() string {
		var b strings.Builder
		for range 10 {
			out, err := f.put(t, entries(10))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range out.Entries {
				switch aws.ToString(e.ErrorCode) {
				case "":
					b.WriteByte('.')
				case "ThrottlingException":
					b.WriteByte('x')
				default:
					t.Fatalf("unexpected ErrorCode %q", *e.ErrorCode)
				}
			}
		}
		return b.String()
	}
	first := pattern()
	if n := strings.Count(first, "x"); n < 15 || n > 45 {
		t.Errorf("%d of 100 entries failed with failRate 0.3", n)
	}
	f.admin(t, http.MethodPost, "/_recorder/reset", "", nil)
	if second := pattern(); second != first {
		t.Errorf("after reset the same seed gave another failure pattern:\n%s\n%s", first, second)
	}
}

func TestEventBridgeReset(t *testing.T) {
	f := newFixture(t, Failures{})
	if _, err := f.put(t, entries(3)); err != nil {
		t.Fatal(err)
	}
	f.admin(t, http.MethodPost, "/_recorder/config", `{"failRate":1,"failCode":"Boom"}`, nil)
	var s statsResponse
	f.admin(t, http.MethodPost, "/_recorder/reset", "", &s)
	if s.Stats != (Stats{}) || s.Config.FailRate != 0 || s.Config.FailCode != defaultFailCode {
		t.Errorf("after reset: %+v", s)
	}
	if recs := readRecords(t, f.rec.Out()); len(recs) != 0 {
		t.Errorf("%d records after reset", len(recs))
	}
	if _, err := f.put(t, entries(2)); err != nil {
		t.Fatal(err)
	}
	if recs := readRecords(t, f.rec.Out()); len(recs) != 2 {
		t.Errorf("%d records, want 2 written after reset", len(recs))
	}
	if got := f.stats(t).Out; got != f.rec.Out() || !filepath.IsAbs(got) {
		t.Errorf("stats out %q, want absolute %q", got, f.rec.Out())
	}
}

func TestEventBridgeConfigRejectsNonsense(t *testing.T) {
	f := newFixture(t, Failures{})
	for _, body := range []string{`{"failRate":2}`, `{"throttleRate":-1}`, `{"failNextIndexes":[10]}`, `{"failNext":[1]}`, `nope`} {
		resp, err := f.srv.Client().Post(f.srv.URL+"/_recorder/config", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("config %s: %s, want 400", body, resp.Status)
		}
	}
}

func TestEventBridgeUnknownOperation(t *testing.T) {
	f := newFixture(t, Failures{})
	for _, target := range []string{"AWSEvents.ListRules", ""} {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", amzJSON11)
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusBadRequest || body.Type != "UnknownOperationException" || body.Message == "" {
			t.Errorf("target %q: %s %+v %v; want 400 UnknownOperationException", target, resp.Status, body, err)
		}
	}
}

func TestEventBridgeCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "0.0.0.0:1": false, ":1": false, "example.com:1": false} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v", addr, err)
		}
	}
}

// TestEventBridgeFailCallsWith: a configured call failure answers every call with that API
// error (the SDK sees the code and status) for forMs of the recorder's clock, then stops.
func TestEventBridgeFailCallsWith(t *testing.T) {
	f := newFixture(t, Failures{})
	var mu sync.Mutex
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	f.rec.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	var cfg Failures
	f.admin(t, http.MethodPost, "/_recorder/config", `{"failCallsWith":{"code":"AccessDeniedException","forMs":10000}}`, &cfg)
	if c := cfg.FailCallsWith; c == nil || c.Status != 400 || c.Until == nil || !c.Until.Equal(now.Add(10*time.Second)) {
		t.Fatalf("config %+v; want AccessDeniedException, status 400, until now+10s", cfg.FailCallsWith)
	}
	_, err := f.put(t, entries(3))
	var re *awshttp.ResponseError
	if code := apiErrorCode(t, err); code != "AccessDeniedException" || !errors.As(err, &re) || re.HTTPStatusCode() != 400 {
		t.Fatalf("error %v; want AccessDeniedException with status 400", err)
	}
	advance(9 * time.Second)
	if _, err := f.put(t, entries(1)); err == nil {
		t.Fatal("call 9 s in went through; want the failure to last 10 s")
	}
	advance(time.Second)
	out, err := f.put(t, entries(2))
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("after the window: %v; want accepted", err)
	}
	s := f.stats(t)
	if s.CallsFailed != 2 || s.EntriesAccepted != 2 || s.Config.FailCallsWith != nil {
		t.Errorf("stats %+v, config %+v; want 2 calls failed (the SDK does not retry AccessDenied), 2 entries accepted, the failure gone", s.Stats, s.Config.FailCallsWith)
	}
	if recs := readRecords(t, f.rec.Out()); len(recs) != 2 {
		t.Errorf("%d records, want only the 2 entries after the window", len(recs))
	}

	// Without forMs it lasts until cleared; a status and a source scope are honoured.
	f.admin(t, http.MethodPost, "/_recorder/config", `{"source":"test.mine","failCallsWith":{"code":"ExpiredTokenException","status":403}}`, nil)
	mine := entries(1)
	mine[0].Source = aws.String("test.mine")
	advance(time.Hour)
	_, err = f.put(t, mine)
	if code := apiErrorCode(t, err); code != "ExpiredTokenException" || !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
		t.Fatalf("own source: %v; want ExpiredTokenException 403", err)
	}
	if _, err := f.put(t, entries(1)); err != nil {
		t.Fatalf("other source: %v; want accepted", err)
	}
	f.admin(t, http.MethodPost, "/_recorder/config", `{"source":"test.mine","failCallsWith":{"code":""}}`, nil)
	if _, err := f.put(t, mine); err != nil {
		t.Fatalf("after clearing: %v", err)
	}

	for _, body := range []string{`{"failCallsWith":{"code":"X","status":200}}`, `{"failCallsWith":{"code":"X","forMs":-1}}`, `{"failCallsWith":{"code":"a b"}}`} {
		resp, err := f.srv.Client().Post(f.srv.URL+"/_recorder/config", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("config %s: %s, want 400", body, resp.Status)
		}
	}
}

// TestEventBridgeDelay: delayMs holds calls before answering; a client that times out
// meanwhile gets nothing recorded, a patient one gets its entries recorded.
func TestEventBridgeDelay(t *testing.T) {
	f := newFixture(t, Failures{})
	f.admin(t, http.MethodPost, "/_recorder/config", `{"delayMs":300}`, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := f.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries(2)})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("impatient call: %v; want the client's deadline", err)
	}
	start := time.Now()
	out, err := f.put(t, entries(3))
	if err != nil || out.FailedEntryCount != 0 {
		t.Fatalf("patient call: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("answered after %v, want at least the 300 ms delay", d)
	}
	// The abandoned call's handler returns once it sees the client gone; wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for f.stats(t).EntriesAccepted != 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if recs := readRecords(t, f.rec.Out()); len(recs) != 3 {
		t.Errorf("%d records, want only the patient call's 3", len(recs))
	}
	for _, body := range []string{`{"delayMs":-1}`, `{"delayMs":600001}`} {
		resp, err := f.srv.Client().Post(f.srv.URL+"/_recorder/config", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("config %s: %s, want 400", body, resp.Status)
		}
	}
}

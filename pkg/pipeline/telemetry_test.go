package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kcl"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/telemetry"
)

// tracedRun runs one window of two creates on the local stack with every client
// instrumented and an in-memory span exporter; the records arrive in a batch whose span is
// made by the KCL adapter's hook. It returns the spans, the batch span and the harness.
func tracedRun(t *testing.T, logger *slog.Logger) (spans tracetest.SpanStubs, batch trace.SpanContext, h *harness) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	prov := telemetry.Providers{TracerProvider: tp, Propagator: propagation.TraceContext{}}
	h = newHarness(t, harnessOptions{tel: &prov, config: func(c *pipeline.Config) {
		c.TracerProvider = tp
		if logger != nil {
			c.Logger = logger
		}
	}})
	ds := stack.RandomHex(16)
	_, r1 := h.create(ds, "Observation")
	_, r2 := h.create(ds, "Observation")

	ctx, end := kcl.BatchSpans(tp, "test-stream")(context.Background(), kcl.Batch{ShardID: "shardId-000000000000", Records: 2})
	batch = trace.SpanContextFromContext(ctx)
	h.feedCtx(ctx, r1, r2)
	end()
	h.waitAcked(30 * time.Second)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		spans = exp.GetSpans()
		if findSpan(spans, "timeline Observation") != nil || time.Now().After(deadline) {
			return spans, batch, h
		}
	}
}

func findSpan(spans tracetest.SpanStubs, name string) *tracetest.SpanStub {
	for i := range spans {
		if spans[i].Name == name {
			return &spans[i]
		}
	}
	return nil
}

// runSpanOfEvents is the timeline run span that emitted the events (their traceparent).
func runSpanOfEvents(t *testing.T, spans tracetest.SpanStubs, h *harness) *tracetest.SpanStub {
	t.Helper()
	evs := h.waitEvents(10 * time.Second)
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	for i := range spans {
		s := &spans[i]
		if s.Name == "timeline Observation" && evs[0].d.TraceParent == "00-"+s.SpanContext.TraceID().String()+"-"+s.SpanContext.SpanID().String()+"-01" {
			return s
		}
	}
	t.Fatalf("no timeline span among %d spans is the events' traceparent %q", len(spans), evs[0].d.TraceParent)
	return nil
}

// TestTraceRunSpanTree: the batch span (CONSUMER) → the timeline run span links to it → the
// FHIR, Redis and EventBridge calls are CLIENT children of the run span, and each emitted
// event's detail.traceparent names the run span.
func TestTraceRunSpanTree(t *testing.T) {
	spans, batch, h := tracedRun(t, nil)
	win := runSpanOfEvents(t, spans, h)
	if b := findSpan(spans, "process test-stream"); b == nil || b.SpanKind != trace.SpanKindConsumer || b.SpanContext.SpanID() != batch.SpanID() {
		t.Fatalf("batch span: %+v", b)
	}
	if win.Parent.IsValid() {
		t.Errorf("window span has a parent %v; want a root linked to its batches", win.Parent)
	}
	if len(win.Links) != 1 || !win.Links[0].SpanContext.Equal(batch) {
		t.Errorf("window links %+v, want the batch span %v", win.Links, batch)
	}
	attrs := map[string]string{}
	for _, a := range win.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["hlcdc.datastore_id"] == "" || attrs["fhir.resource_type"] != "Observation" || attrs["hlcdc.run.hints"] == "" {
		t.Errorf("run span attributes %v", attrs)
	}
	searched := false
	for _, e := range win.Events {
		searched = searched || e.Name == "searched"
	}
	if !searched {
		t.Errorf("run span has no \"searched\" event with the range: %+v", win.Events)
	}

	// CLIENT children by instrumentation: otelhttp (FHIR), redisotel, otelaws (PutEvents).
	children := map[string]int{}
	for _, s := range spans {
		if s.Parent.SpanID() != win.SpanContext.SpanID() {
			continue
		}
		if s.SpanKind != trace.SpanKindClient || s.SpanContext.TraceID() != win.SpanContext.TraceID() {
			t.Errorf("child %s: kind %v", s.Name, s.SpanKind)
		}
		scope := s.InstrumentationScope.Name
		switch {
		case strings.Contains(scope, "otelhttp"):
			children["fhir"]++
		case strings.Contains(scope, "redisotel"):
			children["redis"]++
		case strings.Contains(scope, "otelaws"):
			children["aws"]++
			if s.Name != "EventBridge.PutEvents" {
				t.Errorf("AWS span %q", s.Name)
			}
		}
	}
	if children["fhir"] < 1 || children["redis"] < 2 || children["aws"] < 1 {
		t.Errorf("CLIENT children of the window span: %v (want FHIR ≥1, Redis claim + mark done ≥2, PutEvents ≥1)", children)
	}

	want := "00-" + win.SpanContext.TraceID().String() + "-" + win.SpanContext.SpanID().String() + "-01"
	evs := h.events()
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	for _, e := range evs {
		if e.d.TraceParent != want {
			t.Errorf("event %s traceparent %q, want the window span %q", e.d.ID, e.d.TraceParent, want)
		}
	}
}

// syncBuffer is a bytes.Buffer for concurrent log writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogCarriesTraceID: a line logged while a window is processed carries the window span's
// trace_id and span_id, and no line carries a resource.
func TestLogCarriesTraceID(t *testing.T) {
	var buf syncBuffer
	logger := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	spans, _, h := tracedRun(t, logger)
	win := runSpanOfEvents(t, spans, h)
	var done map[string]any
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not JSON: %s", sc.Text())
		}
		for _, k := range []string{"resource", "Resource", "entry", "body"} {
			if _, ok := line[k]; ok {
				t.Errorf("log line has %q: %s", k, sc.Text())
			}
		}
		if strings.Contains(sc.Text(), `"valueQuantity"`) || strings.Contains(sc.Text(), `"heart rate"`) {
			t.Errorf("log line holds resource content: %s", sc.Text())
		}
		if line["msg"] == "timeline run done" && line["span_id"] == win.SpanContext.SpanID().String() {
			done = line
		}
	}
	if done == nil {
		t.Fatalf("no \"timeline run done\" line with the run span's id %s in:\n%s", win.SpanContext.SpanID(), buf.String())
	}
	if done["trace_id"] != win.SpanContext.TraceID().String() {
		t.Errorf("timeline run done line %v, want trace_id %s", done, win.SpanContext.TraceID())
	}
}

// TestMetricsScrape: the Prometheus page the consumer serves (telemetry.Setup's handler over
// the real meter provider) counts what happened — records by outcome, windows, events
// emitted, duplicates — and agrees with Stats.
func TestMetricsScrape(t *testing.T) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	h := newHarness(t, harnessOptions{config: func(c *pipeline.Config) { c.MeterProvider = tel.MeterProvider }})
	srv := httptest.NewServer(tel.Metrics)
	t.Cleanup(srv.Close)

	ds := stack.RandomHex(16)
	var recs [][]byte
	for range 3 {
		_, rec := h.create(ds, "Patient")
		recs = append(recs, rec)
	}
	h.feed(recs...)
	h.feed([]byte("not json")) // rejected: undecodable
	h.waitAcked(30 * time.Second)
	// The same hints again: the timeline covers them now, so they are acked without a search.
	searches := h.pipe.Stats().Snapshot().Searches
	h.feed(recs...)
	h.waitAcked(30 * time.Second)

	m := scrapeMetrics(t, srv.URL)
	s := h.pipe.Stats().Snapshot()
	want := map[string]float64{
		`hlcdc_records_total{outcome="act"}`:                         6,
		`hlcdc_records_total{outcome="reject",reason="undecodable"}`: 1,
		`hlcdc_runs_total`:                      float64(s.Runs),
		`hlcdc_events_emitted_total`:            3,
		`hlcdc_dedup_total{result="new"}`:       3,
		`hlcdc_dedup_total{result="duplicate"}`: float64(s.DedupDuplicate),
		`hlcdc_rejects_reported_total`:          1,
		`hlcdc_lag_seconds_count`:               3,
		`hlcdc_ranges_verified_total`:           float64(s.Verified),
		`hlcdc_searches_total`:                  float64(s.Searches),
		`hlcdc_resources_read_total`:            float64(s.ResourcesRead),
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if m["hlcdc_run_hints_sum"] < 3 {
		t.Errorf("hlcdc_run_hints_sum = %v, want at least the 3 hints searched for", m["hlcdc_run_hints_sum"])
	}
	if s.Searches-s.Rereads > searches {
		t.Errorf("covered hints caused searches: %d first searches after, %d before", s.Searches-s.Rereads, searches)
	}
	if len(h.events()) != 3+1 {
		t.Errorf("recorder has %d events, want 3 changes + 1 reject report", len(h.events()))
	}
	if t.Failed() {
		t.Logf("scraped: %v", m)
	}
}

// scrapeMetrics reads a Prometheus text page into "name{labels}" → value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// TestSetupWithoutExporter: OTEL_TRACES_EXPORTER unset or "none" gives the no-op tracer
// provider (nothing built per span); metrics are still served on our handler, with the
// resource's service.name, and Shutdown is safe twice.
func TestSetupWithoutExporter(t *testing.T) {
	for _, v := range []string{"", "none"} {
		t.Setenv("OTEL_TRACES_EXPORTER", v)
		t.Setenv("OTEL_METRICS_EXPORTER", "")
		tel, err := Setup(context.Background(), Config{WorkerID: "w-1", Stream: "s"})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tel.TracerProvider.(noop.TracerProvider); !ok || tel.Tracing {
			t.Errorf("OTEL_TRACES_EXPORTER=%q: tracer provider %T, tracing %v; want the no-op one", v, tel.TracerProvider, tel.Tracing)
		}
		c, _ := tel.MeterProvider.Meter("test").Int64Counter("hlcdc.test.things", metric.WithDescription("test"))
		c.Add(context.Background(), 5)
		page := scrape(t, tel)
		if !strings.Contains(page, "hlcdc_test_things_total 5") || strings.Contains(page, "otel_scope_name") {
			t.Errorf("metrics page:\n%s", page)
		}
		if !strings.Contains(page, `service_name="healthlake-cdc-consumer"`) || !strings.Contains(page, `service_instance_id="w-1"`) {
			t.Errorf("target_info lacks the resource:\n%s", page)
		}
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := tel.Shutdown(context.Background()); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
	}
}

// TestSetupWithExporter: an exporter named in OTEL_TRACES_EXPORTER gives an SDK provider
// that records spans; OTEL_SERVICE_NAME overrides the default service name.
func TestSetupWithExporter(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	t.Setenv("OTEL_SERVICE_NAME", "cdc-test")
	tel, err := Setup(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	if _, ok := tel.TracerProvider.(*sdktrace.TracerProvider); !ok || !tel.Tracing {
		t.Fatalf("tracer provider %T", tel.TracerProvider)
	}
	_, span := tel.TracerProvider.Tracer("t").Start(context.Background(), "x")
	if !span.IsRecording() || !span.SpanContext().IsSampled() {
		t.Error("span not recorded under the default sampler")
	}
	span.End()
	if !strings.Contains(scrape(t, tel), `service_name="cdc-test"`) {
		t.Error("OTEL_SERVICE_NAME not applied")
	}
}

func scrape(t *testing.T, tel *Telemetry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	tel.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestLogHandler: trace_id and span_id appear exactly when the context holds a span.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 1}, SpanID: trace.SpanID{0xcd, 2}, TraceFlags: trace.FlagsSampled})
	log.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "with span")
	log.Info("without span")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var a, b map[string]any
	json.Unmarshal([]byte(lines[0]), &a)
	json.Unmarshal([]byte(lines[1]), &b)
	if a["trace_id"] != sc.TraceID().String() || a["span_id"] != sc.SpanID().String() || a["component"] != "test" {
		t.Errorf("with span: %v", a)
	}
	if _, ok := b["trace_id"]; ok {
		t.Errorf("without span: %v", b)
	}
}

// TestRedisSkipsChatter: connection set-up and PING make no spans; a command in a window does.
func TestRedisSkipsChatter(t *testing.T) {
	addr := stack.Addr(t, stack.Redis)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := Redis(rdb, Providers{TracerProvider: tp, Propagator: propagation.TraceContext{}}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	ctx, span := tp.Tracer("t").Start(context.Background(), "window")
	rdb.Get(ctx, "telemetry-test:absent")
	span.End()
	var names []string
	for _, s := range exp.GetSpans() {
		names = append(names, s.Name)
	}
	if len(names) != 2 || names[0] != "get" || names[1] != "window" {
		t.Errorf("spans %v, want [get window]", names)
	}
}

package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/telemetry"
)

type fakeWorker struct{ running atomic.Bool }

func (w *fakeWorker) Running() bool { return w.running.Load() }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

// TestHealthAndReady: /healthz answers while the process lives; /readyz only while the KCL
// worker runs and Redis answers; /metrics is the handler given.
func TestHealthAndReady(t *testing.T) {
	live := redis.NewClient(&redis.Options{Addr: stack.Addr(t, stack.Redis)})
	t.Cleanup(func() { live.Close() })
	// Nothing listens on a port just closed by a listener of our own.
	l := httptest.NewServer(http.NotFoundHandler())
	deadAddr := strings.TrimPrefix(l.URL, "http://")
	l.Close()
	dead := redis.NewClient(&redis.Options{Addr: deadAddr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { dead.Close() })
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hlcdc_x_total 1\n") })

	w := &fakeWorker{}
	h := newHandler(health{worker: w, redis: live, version: "1.2.3-test"}, metrics)
	// /healthz answers 200 whatever the worker does, with the build's version.
	if code, body := get(t, h, "/healthz"); code != http.StatusOK || body != `{"status":"ok","version":"1.2.3-test"}`+"\n" {
		t.Errorf("/healthz %d %q", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "kcl worker") {
		t.Errorf("/readyz with the worker stopped: %d %q", code, body)
	}
	w.running.Store(true)
	if code, body := get(t, h, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz with worker and Redis up: %d %q", code, body)
	}
	if code, body := get(t, h, "/metrics"); code != http.StatusOK || body != "hlcdc_x_total 1\n" {
		t.Errorf("/metrics %d %q", code, body)
	}

	h = newHandler(health{worker: w, redis: dead}, metrics)
	if code, _ := get(t, h, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with Redis down: %d", code)
	}
	if code, body := get(t, h, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "redis") {
		t.Errorf("/readyz with Redis down: %d %q", code, body)
	}
}

// TestFHIRTransportSignsTraceparent: with tracing on, the FHIR request carries a traceparent
// of the caller's trace and SigV4 signed it (otelhttp outside, SigV4 inside).
func TestFHIRTransportSignsTraceparent(t *testing.T) {
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","entry":[]}`)
	}))
	t.Cleanup(srv.Close)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	tel := &telemetry.Telemetry{TracerProvider: tp, Propagator: propagation.TraceContext{}, Tracing: true}
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}

	ctx, span := tp.Tracer("t").Start(context.Background(), "window")
	defer span.End()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/datastore/x/r4/Patient", nil)
	res, err := (&http.Client{Transport: fhirTransport("sigv4", awsCfg, tel)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	tpHeader := got.Get("traceparent")
	if !strings.Contains(tpHeader, span.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent %q, want trace %s", tpHeader, span.SpanContext().TraceID())
	}
	if auth := got.Get("Authorization"); !strings.Contains(auth, "SignedHeaders=") || !strings.Contains(auth, "traceparent") {
		t.Errorf("traceparent not signed: %q", auth)
	}
}

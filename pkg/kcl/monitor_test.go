package kcl

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/ack"
)

func testMonitor(t testing.TB) *monitor {
	t.Helper()
	m, err := newMonitor(metricnoop.NewMeterProvider().Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMonitorMetrics: the library's calls and the adapter's own numbers reach OTel
// instruments — counters by shard, lag and in-flight gauges that forget a shard once its
// reader ends.
func TestMonitorMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	m, err := newMonitor(mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	m.LeaseGained("shard-1")
	m.LeaseGained("shard-2")
	m.IncrRecordsProcessed("shard-1", 7)
	m.IncrRecordsProcessed("shard-1", 3)
	m.IncrBytesProcessed("shard-1", 1000)
	m.MillisBehindLatest("shard-1", 1500)
	m.MillisBehindLatest("shard-2", 20)
	m.RecordGetRecordsTime("shard-1", 12)
	tr := ack.New()
	for _, seq := range []string{"1", "2", "3"} {
		if _, err := tr.Add(seq); err != nil {
			t.Fatal(err)
		}
	}
	m.track("shard-1", tr)

	got := collect(t, reader)
	if got["hlcdc.kcl.records shard=shard-1"] != 10 || got["hlcdc.kcl.read.bytes shard=shard-1"] != 1000 ||
		got["hlcdc.kcl.leases.held"] != 2 || got["hlcdc.kcl.millis.behind.latest shard=shard-1"] != 1500 ||
		got["hlcdc.kcl.millis.behind.latest shard=shard-2"] != 20 || got["hlcdc.kcl.records.in_flight shard=shard-1"] != 3 ||
		got["hlcdc.kcl.getrecords.duration shard=shard-1"] != 1 {
		t.Fatalf("metrics: %v", got)
	}

	m.LeaseLost("shard-2")
	m.DeleteMetricMillisBehindLatest("shard-2")
	m.untrack("shard-1", tr)
	got = collect(t, reader)
	if got["hlcdc.kcl.leases.held"] != 1 {
		t.Errorf("leases held after a loss: %v", got["hlcdc.kcl.leases.held"])
	}
	if _, ok := got["hlcdc.kcl.millis.behind.latest shard=shard-2"]; ok {
		t.Errorf("lag of a lost shard still reported")
	}
	if _, ok := got["hlcdc.kcl.records.in_flight shard=shard-1"]; ok {
		t.Errorf("in-flight of a stopped processor still reported")
	}
}

// collect flattens the reader's data: "name k=v" → sum, gauge value or histogram count.
func collect(t *testing.T, r sdkmetric.Reader) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			key := func(attrs *attribute.Set) string { return mt.Name + tail(attrs.Encoded(attribute.DefaultEncoder())) }
			switch d := mt.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out[key(&p.Attributes)] = float64(p.Value)
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					out[key(&p.Attributes)] = float64(p.Value)
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key(&p.Attributes)] = float64(p.Count)
				}
			}
		}
	}
	return out
}

func tail(enc string) string {
	if enc == "" {
		return ""
	}
	return " " + enc
}

// TestBatchSpans: a batch with records gets a CONSUMER span carrying the messaging
// attributes, in the context Handle receives; an idle poll gets none.
func TestBatchSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	hook := BatchSpans(tp, "cdc-stream")

	ctx, end := hook(context.Background(), Batch{ShardID: "shardId-000000000003"})
	if end != nil || trace.SpanContextFromContext(ctx).IsValid() {
		t.Fatal("an idle poll started a span")
	}
	ctx, end = hook(context.Background(), Batch{ShardID: "shardId-000000000003", Records: 42, MillisBehindLatest: 900})
	sc := trace.SpanContextFromContext(ctx)
	end()
	spans := exp.GetSpans()
	if len(spans) != 1 || !sc.IsValid() || spans[0].SpanContext.SpanID() != sc.SpanID() {
		t.Fatalf("spans %v, context %v", spans, sc)
	}
	s := spans[0]
	attrs := map[string]string{}
	for _, a := range s.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	if s.Name != "process cdc-stream" || s.SpanKind != trace.SpanKindConsumer || attrs["messaging.system"] != "aws_kinesis" ||
		attrs["messaging.destination.name"] != "cdc-stream" || attrs["aws.kinesis.shard_id"] != "shardId-000000000003" ||
		attrs["messaging.batch.message_count"] != "42" {
		t.Fatalf("span %s kind %v attrs %v", s.Name, s.SpanKind, attrs)
	}
}

package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
)

// TestMetricsCarryTheEmitContext: the Emitter counts its calls and entries on the meter
// provider given, under the names the dashboards use, recorded with the Emit's context: the
// points carry an exemplar of the caller's trace.
func TestMetricsCarryTheEmitContext(t *testing.T) {
	client := recorderClient(t, recorderURL(t))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })

	e, err := bus.New(client, bus.Options{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	in := make([]types.PutEventsRequestEntry, n)
	for i := range in {
		in[i] = types.PutEventsRequestEntry{Source: aws.String("healthlake.cdc.test"), DetailType: aws.String("Bus Metrics Test"),
			Detail: aws.String(`{"n":1}`), Time: aws.Time(time.Now())}
	}
	ctx, span := tp.Tracer("test").Start(context.Background(), "emit")
	for i, err := range e.Emit(ctx, in) {
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	span.End()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.DataPoint[int64]{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok && len(s.DataPoints) == 1 {
				got[m.Name] = s.DataPoints[0]
			}
		}
	}
	// The recorder may inject failures (its config is shared): at least one call, and every
	// entry sent at least once.
	if p := got["hlcdc.putevents.calls"]; p.Value < 1 {
		t.Errorf("hlcdc.putevents.calls = %d", p.Value)
	}
	p, ok := got["hlcdc.putevents.entries"]
	if !ok || p.Value < n {
		t.Fatalf("hlcdc.putevents.entries = %v, want >= %d (metrics: %v)", p.Value, n, got)
	}
	if _, ok := got["hlcdc.putevents.failed_entries"]; !ok {
		t.Errorf("no hlcdc.putevents.failed_entries")
	}
	if len(p.Exemplars) == 0 || [16]byte(p.Exemplars[0].TraceID) != span.SpanContext().TraceID() {
		t.Errorf("entries exemplar %+v, want one of trace %s", p.Exemplars, span.SpanContext().TraceID())
	}
}

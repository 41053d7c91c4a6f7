package fhir

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// TestMetricsCarryTheRequestContext: a search on the local FHIR server is counted on the
// meter provider given, by operation and status under the names the dashboards use, and
// recorded with the request's context: the point carries an exemplar of the caller's trace.
func TestMetricsCarryTheRequestContext(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	c, err := New(Config{Endpoint: localFHIR(t) + "/datastore/{datastoreId}/r4/", HTTPClient: localHTTP(t), MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := tp.Tracer("test").Start(context.Background(), "window")
	now := time.Now()
	if err := c.Search(ctx, randomDatastore(t), "Patient", now.Add(-time.Minute), now, func(Page) error { return nil }); err != nil {
		t.Fatal(err)
	}
	span.End()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var requests *metricdata.DataPoint[int64]
	var duration *metricdata.HistogramDataPoint[float64]
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name == "hlcdc.fhir.requests" && len(d.DataPoints) == 1 {
					requests = &d.DataPoints[0]
				}
			case metricdata.Histogram[float64]:
				if m.Name == "hlcdc.fhir.request.duration" && m.Unit == "s" && len(d.DataPoints) == 1 {
					duration = &d.DataPoints[0]
				}
			}
		}
	}
	if requests == nil || duration == nil {
		t.Fatalf("metrics %+v: want hlcdc.fhir.requests and hlcdc.fhir.request.duration (s)", rm.ScopeMetrics)
	}
	want := attribute.NewSet(attribute.String("op", "search"), attribute.String("status", "200"))
	if requests.Value != 1 || !requests.Attributes.Equals(&want) {
		t.Errorf("hlcdc.fhir.requests = %d %v, want 1 %v", requests.Value, requests.Attributes, want)
	}
	if duration.Count != 1 {
		t.Errorf("duration count %d", duration.Count)
	}
	if len(requests.Exemplars) == 0 || [16]byte(requests.Exemplars[0].TraceID) != span.SpanContext().TraceID() {
		t.Errorf("exemplars %+v, want one of trace %s", requests.Exemplars, span.SpanContext().TraceID())
	}
}

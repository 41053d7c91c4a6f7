package main

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// clientMetrics count what the FHIR client and the emitter report through their hooks: the
// attempts the pipeline's own counters cannot see (retries, throttling).
type clientMetrics struct {
	fhirRequests                                     metric.Int64Counter
	fhirDuration                                     metric.Float64Histogram
	putEventsCalls, putEventsEntries, putEventsFails metric.Int64Counter
}

func newClientMetrics(m metric.Meter) (*clientMetrics, error) {
	var c clientMetrics
	var errs [5]error
	c.fhirRequests, errs[0] = m.Int64Counter("hlcdc.fhir.requests",
		metric.WithDescription("FHIR HTTP attempts by operation (search, history) and status (0: no response)."))
	c.fhirDuration, errs[1] = m.Float64Histogram("hlcdc.fhir.request.duration", metric.WithUnit("s"),
		metric.WithDescription("FHIR HTTP attempt time by operation."),
		metric.WithExplicitBucketBoundaries(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	c.putEventsCalls, errs[2] = m.Int64Counter("hlcdc.putevents.calls", metric.WithDescription("PutEvents calls."))
	c.putEventsEntries, errs[3] = m.Int64Counter("hlcdc.putevents.entries", metric.WithDescription("Entries sent in PutEvents calls."))
	c.putEventsFails, errs[4] = m.Int64Counter("hlcdc.putevents.failed_entries",
		metric.WithDescription("Entries PutEvents reported failed (before retries)."))
	return &c, errors.Join(errs[:]...)
}

func (c *clientMetrics) onFHIRRequest(op string, status int, d time.Duration) {
	ctx := context.Background()
	c.fhirRequests.Add(ctx, 1, metric.WithAttributes(attribute.String("op", op), attribute.String("status", strconv.Itoa(status))))
	c.fhirDuration.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("op", op)))
}

func (c *clientMetrics) onPutEvents(entries, failed int, _ error) {
	ctx := context.Background()
	c.putEventsCalls.Add(ctx, 1)
	c.putEventsEntries.Add(ctx, int64(entries))
	c.putEventsFails.Add(ctx, int64(failed))
}

package fhir

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// instrumentationName names the meter of this package's instruments.
const instrumentationName = "github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"

// metrics count every HTTP attempt, retries and throttled ones included, which the
// pipeline's own counters cannot see. They are recorded with the request's context, so an
// exemplar points at the trace of the search. Attributes carry the operation and the status
// only, never a URL (its query holds search values).
type metrics struct {
	requests metric.Int64Counter
	duration metric.Float64Histogram
}

// newMetrics makes the instruments on mp's meter; a nil mp records nothing.
func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(instrumentationName)
	var c metrics
	var errs [2]error
	c.requests, errs[0] = m.Int64Counter("hlcdc.fhir.requests",
		metric.WithDescription("FHIR HTTP attempts by operation (search, history) and status (0: no response)."))
	c.duration, errs[1] = m.Float64Histogram("hlcdc.fhir.request.duration", metric.WithUnit("s"),
		metric.WithDescription("FHIR HTTP attempt time by operation."),
		metric.WithExplicitBucketBoundaries(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("fhir: metrics: %w", err)
	}
	return &c, nil
}

func (c *metrics) request(ctx context.Context, op string, status int, d time.Duration) {
	c.requests.Add(ctx, 1, metric.WithAttributes(attribute.String("op", op), attribute.String("status", strconv.Itoa(status))))
	c.duration.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("op", op)))
}

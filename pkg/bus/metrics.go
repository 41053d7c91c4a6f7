package bus

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// instrumentationName names the meter of this package's instruments.
const instrumentationName = "github.com/healthlake-cdc/healthlake-cdc/pkg/bus"

// metrics count every PutEvents call, the retries and the entries EventBridge refused
// included, which the pipeline's own counters cannot see. They are recorded with the Emit's
// context, so an exemplar points at the trace of the emit.
type metrics struct {
	calls, entries, failed metric.Int64Counter
}

// newMetrics makes the instruments on mp's meter; a nil mp records nothing.
func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(instrumentationName)
	var c metrics
	var errs [3]error
	c.calls, errs[0] = m.Int64Counter("hlcdc.putevents.calls", metric.WithDescription("PutEvents calls."))
	c.entries, errs[1] = m.Int64Counter("hlcdc.putevents.entries", metric.WithDescription("Entries sent in PutEvents calls."))
	c.failed, errs[2] = m.Int64Counter("hlcdc.putevents.failed_entries",
		metric.WithDescription("Entries PutEvents reported failed (before retries)."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("bus: metrics: %w", err)
	}
	return &c, nil
}

func (c *metrics) call(ctx context.Context, entries, failed int) {
	c.calls.Add(ctx, 1)
	c.entries.Add(ctx, int64(entries))
	c.failed.Add(ctx, int64(failed))
}

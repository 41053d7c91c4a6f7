package pipeline

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// watermarks keeps the last watermark this worker published per datastore, for the age
// gauge.
type watermarks struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (w *watermarks) set(ds string, t time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = make(map[string]time.Time)
	}
	w.last[ds] = t
}

func (w *watermarks) each(f func(ds string, t time.Time)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ds, t := range w.last {
		f(ds, t)
	}
}

// watermarkLoop publishes, every WatermarkInterval, each known datastore's watermark: the
// time before which every change of every known type is final — searched, verified (or
// parked and reported) and emitted. One worker publishes a datastore's per interval; the
// value lives in Redis and only moves forward, across restarts and worker changes.
func (p *Pipeline) watermarkLoop(ctx context.Context) {
	for clock.Sleep(ctx, p.cfg.Clock, p.cfg.WatermarkInterval) == nil {
		if err := p.publishWatermarks(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.WarnContext(ctx, "watermark failed, will retry next interval", "error", err)
		}
	}
}

func (p *Pipeline) publishWatermarks(ctx context.Context) error {
	tls := p.parts.Timelines
	now := p.cfg.Clock.Now()
	dss, err := tls.KnownDatastores(ctx, now)
	if err != nil {
		return err
	}
	parked, err := tls.ListParked(ctx)
	if err != nil {
		return err
	}
	for _, ds := range dss {
		ok, err := tls.LeaseWatermark(ctx, ds, p.cfg.WatermarkInterval*9/10)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		known, err := tls.KnownTypes(ctx, ds, now)
		if err != nil {
			return err
		}
		d := event.Watermark{DatastoreID: ds, Types: map[string]string{}}
		var low time.Time
		for _, t := range mergeTypes(known, p.cfg.Types) {
			final, err := tls.Final(ctx, coalesce.Key{DatastoreID: ds, ResourceType: t})
			if err != nil {
				return err
			}
			if final.IsZero() {
				continue // never searched: a configured type nobody wrote
			}
			d.Types[t] = final.UTC().Format(timeMillis)
			if low.IsZero() || final.Before(low) {
				low = final
			}
		}
		// A parked range is not final: its changes are not on the bus yet.
		for _, pk := range parked {
			if pk.Key.DatastoreID == ds && (low.IsZero() || pk.Range.From.Before(low)) {
				low, d.HeldBy = pk.Range.From, "parked range "+pk.ID()
			}
		}
		if low.IsZero() {
			continue
		}
		low, err = tls.RaiseWatermark(ctx, ds, low)
		if err != nil {
			return err
		}
		d.LowWatermark = low.UTC().Format(timeMillis)
		if err := p.report(ctx, p.parts.Events.Watermark(d, now)); err != nil {
			return err
		}
		p.watermarks.set(ds, low)
	}
	return nil
}

// timeMillis is RFC 3339 with milliseconds, as the events' other times.
const timeMillis = "2006-01-02T15:04:05.000Z07:00"

// watermarkGauge observes hlcdc.watermark.age: per datastore this worker published for, how
// far its last watermark lags behind now — the alarm for a completeness that stopped moving.
func (p *Pipeline) watermarkGauge(m metric.Meter) error {
	g, err := m.Float64ObservableGauge("hlcdc.watermark.age", metric.WithUnit("s"),
		metric.WithDescription("Seconds between now and the last watermark this worker published, per datastore."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := p.cfg.Clock.Now()
		p.watermarks.each(func(ds string, t time.Time) {
			o.ObserveFloat64(g, now.Sub(t).Seconds(), metric.WithAttributes(attribute.String("datastore_id", ds)))
		})
		return nil
	}, g)
	return err
}

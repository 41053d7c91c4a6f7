package kcl

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/metrics"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/ack"
)

// instrumentationName names the adapter's meter and tracer.
const instrumentationName = "github.com/healthlake-cdc/healthlake-cdc/pkg/kcl"

// monitor is the worker's metrics.MonitoringService. The library's Prometheus service would
// register on the global registry and serve /metrics on http.DefaultServeMux; this one
// routes the library's numbers to OpenTelemetry instruments of Config.MeterProvider, and
// keeps what the consumer reports itself: the leases held, each shard's reader lag and its
// records in flight (observable gauges).
type monitor struct {
	mu       sync.Mutex
	leases   map[string]struct{}
	behind   map[string]float64
	trackers map[string]*ack.Tracker

	records, bytes, renewals metric.Int64Counter
	getTime, processTime     metric.Float64Histogram
}

var _ metrics.MonitoringService = (*monitor)(nil)

func newMonitor(m metric.Meter) (*monitor, error) {
	mon := &monitor{leases: map[string]struct{}{}, behind: map[string]float64{}, trackers: map[string]*ack.Tracker{}}
	var errs [9]error
	mon.records, errs[0] = m.Int64Counter("hlcdc.kcl.records", metric.WithDescription("Records the KCL worker read, by shard."))
	mon.bytes, errs[1] = m.Int64Counter("hlcdc.kcl.read.bytes", metric.WithDescription("Record bytes the KCL worker read, by shard."))
	mon.renewals, errs[2] = m.Int64Counter("hlcdc.kcl.lease.renewals", metric.WithDescription("Lease renewals, by shard."))
	mon.getTime, errs[3] = m.Float64Histogram("hlcdc.kcl.getrecords.duration", metric.WithUnit("ms"),
		metric.WithDescription("GetRecords call time, by shard."))
	mon.processTime, errs[4] = m.Float64Histogram("hlcdc.kcl.process.duration", metric.WithUnit("ms"),
		metric.WithDescription("Time to hand a batch to the pipeline (includes backpressure waits), by shard."))
	var leases, behind, inFlight metric.Int64ObservableGauge
	leases, errs[5] = m.Int64ObservableGauge("hlcdc.kcl.leases.held", metric.WithDescription("Shard leases this worker holds."))
	behind, errs[6] = m.Int64ObservableGauge("hlcdc.kcl.millis.behind.latest",
		metric.WithDescription("How far each shard's reader is behind the tip of the stream (last GetRecords), in milliseconds."))
	inFlight, errs[7] = m.Int64ObservableGauge("hlcdc.kcl.records.in_flight",
		metric.WithDescription("Records read but not yet acked (emitted or known to be), by shard."))
	_, errs[8] = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		mon.mu.Lock()
		defer mon.mu.Unlock()
		o.ObserveInt64(leases, int64(len(mon.leases)))
		for s, v := range mon.behind {
			o.ObserveInt64(behind, int64(v), shardAttr(s))
		}
		for s, t := range mon.trackers {
			o.ObserveInt64(inFlight, int64(t.InFlight()), shardAttr(s))
		}
		return nil
	}, leases, behind, inFlight)
	return mon, errors.Join(errs[:]...)
}

func shardAttr(s string) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String("shard", s)))
}

// LeaseGained runs when the worker took a shard's lease and starts its reader.
func (m *monitor) LeaseGained(shard string) {
	m.mu.Lock()
	m.leases[shard] = struct{}{}
	m.mu.Unlock()
}

// LeaseLost runs whenever a shard's reader ends: shutdown, shard end, or a lost lease.
func (m *monitor) LeaseLost(shard string) {
	m.mu.Lock()
	delete(m.leases, shard)
	m.mu.Unlock()
}

// track makes a shard processor's in-flight count observable; untrack ends that, unless
// another processor of the shard took over in the meantime.
func (m *monitor) track(shard string, t *ack.Tracker) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.trackers[shard] = t
	m.mu.Unlock()
}

func (m *monitor) untrack(shard string, t *ack.Tracker) {
	if m == nil {
		return
	}
	m.mu.Lock()
	if m.trackers[shard] == t {
		delete(m.trackers, shard)
	}
	m.mu.Unlock()
}

// inFlight is the records read and not yet acked, per shard.
func (m *monitor) inFlight() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.trackers))
	for s, t := range m.trackers {
		out[s] = t.InFlight()
	}
	return out
}

func (m *monitor) shards() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := make([]string, 0, len(m.leases))
	for id := range m.leases {
		s = append(s, id)
	}
	slices.Sort(s)
	return s
}

func (m *monitor) held() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.leases)
}

// MillisBehindLatest runs after every GetRecords.
func (m *monitor) MillisBehindLatest(shard string, v float64) {
	m.mu.Lock()
	m.behind[shard] = v
	m.mu.Unlock()
}

// DeleteMetricMillisBehindLatest runs when a shard's reader ends: its lag is no longer ours.
func (m *monitor) DeleteMetricMillisBehindLatest(shard string) {
	m.mu.Lock()
	delete(m.behind, shard)
	m.mu.Unlock()
}

func (m *monitor) IncrRecordsProcessed(shard string, n int) {
	m.records.Add(context.Background(), int64(n), shardAttr(shard))
}

func (m *monitor) IncrBytesProcessed(shard string, n int64) {
	m.bytes.Add(context.Background(), n, shardAttr(shard))
}

func (m *monitor) LeaseRenewed(shard string) {
	m.renewals.Add(context.Background(), 1, shardAttr(shard))
}

// RecordGetRecordsTime and RecordProcessRecordsTime get milliseconds from the library.
func (m *monitor) RecordGetRecordsTime(shard string, ms float64) {
	m.getTime.Record(context.Background(), ms, shardAttr(shard))
}

func (m *monitor) RecordProcessRecordsTime(shard string, ms float64) {
	m.processTime.Record(context.Background(), ms, shardAttr(shard))
}

func (*monitor) Init(_, _, _ string) error { return nil }
func (*monitor) Start() error              { return nil }
func (*monitor) Shutdown()                 {}

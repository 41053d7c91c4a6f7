package kcl

import (
	"slices"
	"sync"

	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/metrics"
)

// monitor is the worker's metrics.MonitoringService. The library's Prometheus service would
// register on the global registry and serve /metrics on http.DefaultServeMux; this one keeps
// only what the consumer reports itself: the leases held. Everything else reaches telemetry
// through Hooks.
type monitor struct {
	mu     sync.Mutex
	leases map[string]struct{}
}

var _ metrics.MonitoringService = (*monitor)(nil)

func newMonitor() *monitor { return &monitor{leases: map[string]struct{}{}} }

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

func (*monitor) Init(_, _, _ string) error                { return nil }
func (*monitor) Start() error                             { return nil }
func (*monitor) Shutdown()                                {}
func (*monitor) IncrRecordsProcessed(string, int)         {}
func (*monitor) IncrBytesProcessed(string, int64)         {}
func (*monitor) MillisBehindLatest(string, float64)       {}
func (*monitor) DeleteMetricMillisBehindLatest(string)    {}
func (*monitor) LeaseRenewed(string)                      {}
func (*monitor) RecordGetRecordsTime(string, float64)     {}
func (*monitor) RecordProcessRecordsTime(string, float64) {}

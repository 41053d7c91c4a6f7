package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
)

func newHTTPServer(addr string, h health, m *metrics) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !h.worker.Running() {
			http.Error(w, "kcl worker not running", http.StatusServiceUnavailable)
			return
		}
		if err := h.redis.Ping(ctx).Err(); err != nil {
			http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", m)
	return &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// metrics exposes the pipeline's counters, FHIR requests by status and PutEvents calls in
// the Prometheus text format.
type metrics struct {
	stats *pipeline.Stats

	mu           sync.Mutex
	fhirRequests map[string]int64 // "op status" → count

	putEventsCalls, putEventsEntries, putEventsFailedEntries atomic.Int64
}

func newMetrics() *metrics { return &metrics{fhirRequests: make(map[string]int64)} }

func (m *metrics) onFHIRRequest(op string, status int, _ time.Duration) {
	m.mu.Lock()
	m.fhirRequests[op+" "+strconv.Itoa(status)]++
	m.mu.Unlock()
}

func (m *metrics) onPutEvents(entries, failed int, _ error) {
	m.putEventsCalls.Add(1)
	m.putEventsEntries.Add(int64(entries))
	m.putEventsFailedEntries.Add(int64(failed))
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	counter := func(name, help string, v int64, labels string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s%s %d\n", name, help, name, name, labels, v)
	}
	if m.stats != nil {
		s := m.stats.Snapshot()
		fmt.Fprintf(w, "# HELP hlcdc_records_total Kinesis records by outcome.\n# TYPE hlcdc_records_total counter\n")
		fmt.Fprintf(w, "hlcdc_records_total{outcome=\"act\"} %d\n", s.RecordsAct)
		fmt.Fprintf(w, "hlcdc_records_total{outcome=\"skip\"} %d\n", s.RecordsSkipped)
		fmt.Fprintf(w, "hlcdc_records_total{outcome=\"reject\"} %d\n", s.RecordsRejected)
		counter("hlcdc_windows_total", "Windows searched.", s.Windows, "")
		counter("hlcdc_window_retries_total", "Window attempts repeated after a failure or a pending claim.", s.WindowRetries, "")
		counter("hlcdc_rechecks_total", "Windows searched again because they came up short.", s.Rechecks, "")
		counter("hlcdc_searches_total", "FHIR searches run by windows, re-checks included.", s.Searches, "")
		counter("hlcdc_search_pages_min_total", "The fewest pages those searches could take (100 resources a page).", s.SearchPagesMin, "")
		counter("hlcdc_resources_read_total", "Resources read from FHIR search and history pages.", s.ResourcesRead, "")
		fmt.Fprintf(w, "# HELP hlcdc_dedup_total Dedup claims by result.\n# TYPE hlcdc_dedup_total counter\n")
		fmt.Fprintf(w, "hlcdc_dedup_total{result=\"new\"} %d\n", s.DedupNew)
		fmt.Fprintf(w, "hlcdc_dedup_total{result=\"duplicate\"} %d\n", s.DedupDuplicate)
		fmt.Fprintf(w, "hlcdc_dedup_total{result=\"pending\"} %d\n", s.DedupPending)
		counter("hlcdc_events_emitted_total", "Change events EventBridge accepted.", s.Emitted, "")
		counter("hlcdc_events_failed_total", "Events EventBridge refused for good (reported, not retried).", s.EmitFailed, "")
		counter("hlcdc_rejects_reported_total", "Rejected records reported on the bus.", s.RejectsReported, "")
		counter("hlcdc_deletes_unresolved_total", "Delete hints that history could not resolve.", s.DeletesUnresolved, "")
	}
	m.mu.Lock()
	keys := make([]string, 0, len(m.fhirRequests))
	for k := range m.fhirRequests {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "# HELP hlcdc_fhir_requests_total FHIR HTTP attempts by operation and status (0: no response).\n# TYPE hlcdc_fhir_requests_total counter\n")
	for _, k := range keys {
		var op, status string
		fmt.Sscan(k, &op, &status)
		fmt.Fprintf(w, "hlcdc_fhir_requests_total{op=%q,status=%q} %d\n", op, status, m.fhirRequests[k])
	}
	m.mu.Unlock()
	counter("hlcdc_putevents_calls_total", "PutEvents calls.", m.putEventsCalls.Load(), "")
	counter("hlcdc_putevents_entries_total", "Entries sent in PutEvents calls.", m.putEventsEntries.Load(), "")
	counter("hlcdc_putevents_failed_entries_total", "Entries PutEvents reported failed (before retries).", m.putEventsFailedEntries.Load(), "")
}

package verify

import (
	"encoding/json"
	"slices"
	"time"
)

// Latency summarises how long announcements took.
type Latency struct {
	Count              int
	P50, P95, P99, Max time.Duration
}

// Summarize computes the latency summary of ds (in any order; ds is not modified).
func Summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return Latency{
		Count: len(s),
		P50:   Percentile(s, 50),
		P95:   Percentile(s, 95),
		P99:   Percentile(s, 99),
		Max:   s[len(s)-1],
	}
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the nearest-rank
// method: the smallest value such that at least p percent of the values are less than or
// equal to it, that is sorted[ceil(p/100 × n) − 1]. It is always one of the values, never an
// interpolation, so a reported p99 is a latency that really happened. Zero for no values.
func Percentile(sorted []time.Duration, p int) time.Duration {
	n := len(sorted)
	if n == 0 || p <= 0 {
		return 0
	}
	rank := (p*n + 99) / 100 // ceil(p*n/100) in integers: no float rounding at exact ranks
	return sorted[min(rank, n)-1]
}

// MarshalJSON writes durations as milliseconds, the unit dashboards and scripts expect.
func (l Latency) MarshalJSON() ([]byte, error) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return json.Marshal(struct {
		Count int     `json:"count"`
		P50   float64 `json:"p50Ms"`
		P95   float64 `json:"p95Ms"`
		P99   float64 `json:"p99Ms"`
		Max   float64 `json:"maxMs"`
	}{l.Count, ms(l.P50), ms(l.P95), ms(l.P99), ms(l.Max)})
}

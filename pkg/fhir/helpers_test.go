package fhir

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
)

const testDS = "0123456789abcdef0123456789abcdef"

// fakeFHIR is an httptest server whose handler gets the 1-based number of each request; it
// records every request URL.
type fakeFHIR struct {
	*httptest.Server
	mu   sync.Mutex
	urls []*url.URL
}

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *fakeFHIR {
	t.Helper()
	f := &fakeFHIR{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		u := *r.URL
		f.urls = append(f.urls, &u)
		n := len(f.urls)
		f.mu.Unlock()
		handle(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeFHIR) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.urls)
}

func (f *fakeFHIR) base(ds string) string { return f.URL + "/datastore/" + ds + "/r4/" }

// recorder injects a clock that jumps over every wait (clock.Waits lists them) and OnRequest.
// The clock starts at the real time, because the client compares it with ctx's deadline.
type recorder struct {
	clock    *clocktest.Fake
	mu       sync.Mutex
	statuses []int
}

func (r *recorder) onRequest(_ string, status int, _ time.Duration) {
	r.mu.Lock()
	r.statuses = append(r.statuses, status)
	r.mu.Unlock()
}

func newTestClient(t *testing.T, f *fakeFHIR, mod func(*Config)) (*Client, *recorder) {
	t.Helper()
	rec := &recorder{clock: clocktest.NewAuto(time.Now())}
	cfg := Config{
		Endpoint:    f.URL + "/datastore/{datastoreId}/r4/",
		HTTPClient:  f.Client(),
		BaseBackoff: 100 * time.Millisecond,
		MaxBackoff:  time.Second,
		Clock:       rec.clock,
		Rand:        func() float64 { return 0.5 },
		OnRequest:   rec.onRequest,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, rec
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func obs(id, vid string, lastUpdated time.Time) map[string]any {
	return map[string]any{
		"resourceType": "Observation",
		"id":           id,
		"meta":         map[string]any{"versionId": vid, "lastUpdated": lastUpdated.Format(time.RFC3339Nano)},
		"status":       "final",
		"code":         map[string]any{"text": "heart rate"},
	}
}

func match(resource any) map[string]any {
	return map[string]any{"resource": resource, "search": map[string]any{"mode": "match"}}
}

// searchset builds a searchset bundle; next may be "".
func searchset(next string, entries ...map[string]any) map[string]any {
	b := map[string]any{"resourceType": "Bundle", "type": "searchset"}
	if next != "" {
		b["link"] = []any{map[string]any{"relation": "self", "url": "ignored"}, map[string]any{"relation": "next", "url": next}}
	}
	if len(entries) > 0 {
		b["entry"] = entries
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func outcome(code, diagnostics string) map[string]any {
	return map[string]any{"resourceType": "OperationOutcome", "issue": []any{
		map[string]any{"severity": "error", "code": code, "diagnostics": diagnostics},
	}}
}

// collect runs a search over [t0, t0+1s) and returns the pages.
func collect(c *Client, ctx context.Context) ([]Page, error) {
	var pages []Page
	err := c.Search(ctx, testDS, "Observation", t0, t0.Add(time.Second), func(p Page) error {
		pages = append(pages, p)
		return nil
	})
	return pages, err
}

func ids(pages []Page) []string {
	var out []string
	for _, p := range pages {
		for _, r := range p.Resources {
			out = append(out, r.ID)
		}
	}
	return out
}

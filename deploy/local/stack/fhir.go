package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// FHIRAdminClient drives the admin API of the local FHIR server (deploy/local/fhir/README.md):
// per-datastore knobs, request counters and imports. Tests give each run its own datastore
// (NewDatastore) and set knobs for it only, so tests sharing the server do not disturb each
// other; nothing here resets the whole server.
type FHIRAdminClient struct {
	t    testing.TB
	root string // http://127.0.0.1:PORT
	hc   *http.Client
}

// FHIRAdmin is the admin client of the running local FHIR server (see Addr for what happens
// when it is not running).
func FHIRAdmin(t testing.TB) *FHIRAdminClient {
	t.Helper()
	return &FHIRAdminClient{t: t, root: URL(t, FHIR), hc: &http.Client{Timeout: 30 * time.Second}}
}

// Root is the server's base URL, http://127.0.0.1:PORT.
func (a *FHIRAdminClient) Root() string { return a.root }

// NewDatastore returns a datastore id no other test run uses.
func (a *FHIRAdminClient) NewDatastore() string { return RandomHex(16) }

// Base is the FHIR base URL of a datastore, without a trailing slash.
func (a *FHIRAdminClient) Base(datastoreID string) string {
	return a.root + "/datastore/" + datastoreID + "/r4"
}

// FHIRKnobs are the settings of POST /_admin/config. A nil field is left as it is. For value
// knobs, Clear* puts back the global value; timers run from the moment the server gets them,
// and a zero duration ends one.
type FHIRKnobs struct {
	VisibilityDelay        *time.Duration // writes reach search and type history this late
	RateLimit              *float64       // requests/second before 429; 0 = unlimited
	SearchRateLimit        *float64       // searches (counts too)/second before 429; 0 = unlimited
	ThrottleFor            *time.Duration // answer every request 429 for this long
	FailStatus             int            // with FailFor: answer every request with this status
	FailFor                *time.Duration
	MalformedFor           *time.Duration // answer searches and history with a broken body
	IgnoreCount            *bool          // ignore _summary=count, _total and _count=0
	TypeHistory            *bool          // false: GET /{type}/_history answers 400
	SystemSearch           *bool          // true: GET /?_type=… is served
	ImportKeepsLastUpdated *bool          // imports keep the source's meta.lastUpdated

	clear bool // send null for every value knob and end every timer
}

// ClearFHIRKnobs removes every override of a datastore and ends its timers.
func ClearFHIRKnobs() FHIRKnobs { return FHIRKnobs{clear: true} }

// Ptr is &v, for FHIRKnobs fields.
func Ptr[T any](v T) *T { return &v }

func (k FHIRKnobs) body(datastoreID string) map[string]any {
	m := map[string]any{}
	if datastoreID != "" {
		m["datastoreId"] = datastoreID
	}
	if k.clear {
		for _, name := range []string{"visibilityDelayMs", "rateLimit", "searchRateLimit", "ignoreCount", "typeHistory", "systemSearch", "importKeepsLastUpdated"} {
			m[name] = nil
		}
		m["throttleForMs"], m["failForMs"], m["malformedForMs"] = 0, 0, 0
		return m
	}
	ms := func(d *time.Duration) any { return d.Milliseconds() }
	if k.VisibilityDelay != nil {
		m["visibilityDelayMs"] = ms(k.VisibilityDelay)
	}
	if k.RateLimit != nil {
		m["rateLimit"] = *k.RateLimit
	}
	if k.SearchRateLimit != nil {
		m["searchRateLimit"] = *k.SearchRateLimit
	}
	if k.ThrottleFor != nil {
		m["throttleForMs"] = ms(k.ThrottleFor)
	}
	if k.FailFor != nil {
		m["failForMs"] = ms(k.FailFor)
		if *k.FailFor > 0 {
			m["failStatus"] = k.FailStatus
		}
	}
	if k.MalformedFor != nil {
		m["malformedForMs"] = ms(k.MalformedFor)
	}
	for name, v := range map[string]*bool{
		"ignoreCount": k.IgnoreCount, "typeHistory": k.TypeHistory, "systemSearch": k.SystemSearch, "importKeepsLastUpdated": k.ImportKeepsLastUpdated,
	} {
		if v != nil {
			m[name] = *v
		}
	}
	return m
}

// Configure sets knobs for one datastore and removes every override of it when the test ends.
func (a *FHIRAdminClient) Configure(datastoreID string, k FHIRKnobs) {
	a.t.Helper()
	a.Set(datastoreID, k)
	a.t.Cleanup(func() { a.Set(datastoreID, ClearFHIRKnobs()) })
}

// Set sets knobs for one datastore, with no cleanup.
func (a *FHIRAdminClient) Set(datastoreID string, k FHIRKnobs) {
	a.t.Helper()
	if datastoreID == "" {
		a.t.Fatal("FHIR admin: Set needs a datastore id (global knobs would disturb other tests)")
	}
	if err := a.post(context.Background(), "/_admin/config", k.body(datastoreID), nil); err != nil {
		a.t.Fatalf("FHIR admin config: %v", err)
	}
}

// FHIRCounters are the request counters of the server, of one datastore or one resource type.
type FHIRCounters struct {
	Requests        map[string]int `json:"requests"`        // by kind: search, read, vread, create, update, patch, delete, history, bundle, other
	SearchResources int            `json:"searchResources"` // resources returned in search pages
	CountRequests   int            `json:"countRequests"`   // count-only searches (_summary=count, _count=0)
	HistoryEntries  int            `json:"historyEntries"`  // entries returned by history
	BundleEntries   int            `json:"bundleEntries"`   // entries of batch/transaction Bundles
}

// FHIRStats is GET /_admin/stats?datastoreId=…: the counters plus the answers knobs forced.
type FHIRStats struct {
	FHIRCounters
	Throttled int                     `json:"throttled"` // 429s (also counted in Requests)
	Failed    int                     `json:"failed"`    // answers forced by FailStatus
	Malformed int                     `json:"malformed"` // bodies broken by MalformedFor
	ByType    map[string]FHIRCounters `json:"byType"`
}

// Stats returns one datastore's counters since it was first used or its stats were reset.
func (a *FHIRAdminClient) Stats(datastoreID string) FHIRStats {
	a.t.Helper()
	var s FHIRStats
	if err := a.do(context.Background(), http.MethodGet, "/_admin/stats?datastoreId="+url.QueryEscape(datastoreID), nil, &s); err != nil {
		a.t.Fatalf("FHIR admin stats: %v", err)
	}
	return s
}

// ResetStats zeroes one datastore's counters; its resources and knobs stay.
func (a *FHIRAdminClient) ResetStats(datastoreID string) {
	a.t.Helper()
	if err := a.post(context.Background(), "/_admin/stats/reset?datastoreId="+url.QueryEscape(datastoreID), map[string]any{}, nil); err != nil {
		a.t.Fatalf("FHIR admin stats reset: %v", err)
	}
}

// DropDatastore forgets one datastore: resources, import jobs, knobs and counters.
func (a *FHIRAdminClient) DropDatastore(datastoreID string) {
	a.t.Helper()
	if err := a.post(context.Background(), "/_admin/reset?datastoreId="+url.QueryEscape(datastoreID), map[string]any{}, nil); err != nil {
		a.t.Fatalf("FHIR admin reset: %v", err)
	}
}

// FHIRImport is what POST /_admin/import answers: the job that DescribeFHIRImportJob then serves.
type FHIRImport struct {
	JobID       string    `json:"jobId"`
	DatastoreID string    `json:"datastoreId"`
	JobStatus   string    `json:"jobStatus"`
	SubmitTime  time.Time `json:"submitTime"`
	EndTime     time.Time `json:"endTime"`
	Imported    int       `json:"imported"`
	Errors      int       `json:"errors"`
}

// Import writes resources into a datastore the way a HealthLake import job would (no
// per-resource API calls, ids kept) and records a completed job.
func (a *FHIRAdminClient) Import(datastoreID string, resources []any) FHIRImport {
	a.t.Helper()
	var out FHIRImport
	if err := a.post(context.Background(), "/_admin/import", map[string]any{"datastoreId": datastoreID, "resources": resources}, &out); err != nil {
		a.t.Fatalf("FHIR admin import: %v", err)
	}
	return out
}

func (a *FHIRAdminClient) post(ctx context.Context, path string, body, out any) error {
	return a.do(ctx, http.MethodPost, path, body, out)
}

func (a *FHIRAdminClient) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.root+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode != http.StatusOK {
		// The admin API's errors are OperationOutcomes with no PHI: safe to show.
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, res.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

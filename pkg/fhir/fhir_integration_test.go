package fhir

// Integration tests against the local FHIR server (deploy/local/fhir), which must be running:
// `make up`, or `node deploy/local/fhir/server.js &` from the repository root. Each test uses
// a fresh random datastore and per-datastore knobs, so tests sharing the server do not meet.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// localFHIR returns the base URL of the local FHIR server, failing the test when none runs.
func localFHIR(t *testing.T) string {
	t.Helper()
	return stack.URL(t, stack.FHIR)
}

func randomDatastore(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// localHTTP is a client with its own transport, closed with the test, so no keep-alive
// goroutine outlives it (goleak).
func localHTTP(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func postJSON(ctx context.Context, hc *http.Client, url string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	return doJSON(hc, req, out)
}

func doJSON(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: HTTP %d", req.Method, req.URL.Path, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// setKnobs changes the server's settings for one datastore only.
func setKnobs(t *testing.T, hc *http.Client, base, ds string, knobs map[string]any) {
	t.Helper()
	knobs["datastoreId"] = ds
	if err := postJSON(t.Context(), hc, base+"/_admin/config", knobs, nil); err != nil {
		t.Fatalf("admin config: %v", err)
	}
}

type created struct {
	ID   string `json:"id"`
	Meta struct {
		VersionID   string    `json:"versionId"`
		LastUpdated time.Time `json:"lastUpdated"`
	} `json:"meta"`
}

// createObservations POSTs n Observations, 8 at a time, and returns what the server assigned.
func createObservations(t *testing.T, hc *http.Client, fhirBase string, n int) []created {
	t.Helper()
	out := make([]created, n)
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(8)
	for i := range n {
		g.Go(func() error {
			obs := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": fmt.Sprintf("test %d", i)}}
			return postJSON(ctx, hc, fhirBase+"Observation", obs, &out[i])
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("create: %v", err)
	}
	return out
}

func localClient(t *testing.T, base string, hc *http.Client, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{Endpoint: base + "/datastore/{datastoreId}/r4/", HTTPClient: hc}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIntegrationSearchAllPages(t *testing.T) {
	base := localFHIR(t)
	hc := localHTTP(t)
	ds := randomDatastore(t)
	setKnobs(t, hc, base, ds, map[string]any{"visibilityDelayMs": 0, "rateLimit": 0})
	made := createObservations(t, hc, base+"/datastore/"+ds+"/r4/", 250)
	slices.SortFunc(made, func(a, b created) int { return a.Meta.LastUpdated.Compare(b.Meta.LastUpdated) })
	from, last := made[0].Meta.LastUpdated, made[len(made)-1].Meta.LastUpdated

	c := localClient(t, base, hc, nil)
	search := func(from, to time.Time) (map[string]Resource, int) {
		t.Helper()
		got := map[string]Resource{}
		pages := 0
		err := c.Search(t.Context(), ds, "Observation", from, to, func(p Page) error {
			pages++
			if p.Number != pages || p.Skipped != 0 {
				t.Errorf("page %d: Number %d, Skipped %d", pages, p.Number, p.Skipped)
			}
			for _, r := range p.Resources {
				if _, dup := got[r.ID]; dup {
					t.Errorf("resource %s returned twice", r.ID)
				}
				got[r.ID] = r
			}
			return nil
		})
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		return got, pages
	}

	// [first, last + 1ms) holds every write: the bounds are exact to the millisecond.
	got, pages := search(from, last.Add(time.Millisecond))
	if pages < 3 {
		t.Errorf("%d pages, want at least 3 for 250 resources", pages)
	}
	if len(got) != len(made) {
		t.Errorf("found %d resources, want %d", len(got), len(made))
	}
	for _, m := range made {
		r, ok := got[m.ID]
		if !ok {
			t.Errorf("resource %s missing", m.ID)
			continue
		}
		if r.VersionID != m.Meta.VersionID || !r.LastUpdated.Equal(m.Meta.LastUpdated) || len(r.Raw) == 0 {
			t.Errorf("resource %s: version %s at %v, want %s at %v", m.ID, r.VersionID, r.LastUpdated, m.Meta.VersionID, m.Meta.LastUpdated)
		}
	}

	// A range ending at a write's lastUpdated excludes it (lt) and starts inclusive (ge).
	mid := made[len(made)/2].Meta.LastUpdated
	got, _ = search(from, mid)
	want := 0
	for _, m := range made {
		if m.Meta.LastUpdated.Before(mid) {
			want++
			if _, ok := got[m.ID]; !ok {
				t.Errorf("resource %s before %v missing", m.ID, mid)
			}
		}
	}
	if len(got) != want {
		t.Errorf("[from, mid) found %d, want %d", len(got), want)
	}
}

func TestIntegrationSearchThrottled(t *testing.T) {
	base := localFHIR(t)
	hc := localHTTP(t)
	ds := randomDatastore(t)
	setKnobs(t, hc, base, ds, map[string]any{"visibilityDelayMs": 0, "rateLimit": 0})
	made := createObservations(t, hc, base+"/datastore/"+ds+"/r4/", 120)
	slices.SortFunc(made, func(a, b created) int { return a.Meta.LastUpdated.Compare(b.Meta.LastUpdated) })

	var mu sync.Mutex
	var statuses []int
	c := localClient(t, base, hc, func(c *Config) {
		c.BaseBackoff = 50 * time.Millisecond
		c.MaxBackoff = 500 * time.Millisecond
		c.OnRequest = func(_ string, status int, _ time.Duration) {
			mu.Lock()
			statuses = append(statuses, status)
			mu.Unlock()
		}
	})
	setKnobs(t, hc, base, ds, map[string]any{"throttleForMs": 1000})
	start := time.Now()
	n := 0
	err := c.Search(t.Context(), ds, "Observation", made[0].Meta.LastUpdated, made[len(made)-1].Meta.LastUpdated.Add(time.Millisecond), func(p Page) error {
		n += len(p.Resources)
		return nil
	})
	if err != nil {
		t.Fatalf("search under throttling: %v", err)
	}
	if n != len(made) {
		t.Errorf("found %d, want %d", n, len(made))
	}
	if !slices.Contains(statuses, 429) || statuses[len(statuses)-1] != 200 {
		t.Errorf("statuses %v, want 429s then 200s", statuses)
	}
	// Retry-After (whole seconds) was honoured, though MaxBackoff is 500ms.
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("search finished after %v, before the throttle ended", d)
	}
	var stats struct{ Throttled int }
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/_admin/stats?datastoreId="+ds, nil)
	if err := doJSON(hc, req, &stats); err != nil || stats.Throttled == 0 {
		t.Errorf("server stats: throttled %d, err %v", stats.Throttled, err)
	}
}

func TestIntegrationHistoryShowsDelete(t *testing.T) {
	base := localFHIR(t)
	hc := localHTTP(t)
	ds := randomDatastore(t)
	setKnobs(t, hc, base, ds, map[string]any{"visibilityDelayMs": 0, "rateLimit": 0})
	fhirBase := base + "/datastore/" + ds + "/r4/"
	made := createObservations(t, hc, fhirBase, 3)
	victim := made[1]
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, fhirBase+"Observation/"+victim.ID, nil)
	if err := doJSON(hc, req, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	since := victim.Meta.LastUpdated
	for _, m := range made {
		if m.Meta.LastUpdated.Before(since) {
			since = m.Meta.LastUpdated
		}
	}

	c := localClient(t, base, hc, func(c *Config) { c.PageSize = 2 }) // several history pages
	var entries []HistoryEntry
	pages := 0
	err := c.History(t.Context(), ds, "Observation", since, func(p HistoryPage) error {
		pages++
		if p.Skipped != 0 {
			t.Errorf("page %d skipped %d", p.Number, p.Skipped)
		}
		entries = append(entries, p.Entries...)
		return nil
	})
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	if len(entries) != 4 || pages != 2 {
		t.Fatalf("%d entries on %d pages, want 4 on 2: %+v", len(entries), pages, entries)
	}
	// Newest first: the delete leads.
	d := entries[0]
	if !d.Deleted || d.ID != victim.ID || d.Resource != nil || d.LastUpdated.Before(victim.Meta.LastUpdated) || d.VersionID == "" {
		t.Errorf("delete entry %+v", d)
	}
	for _, e := range entries[1:] {
		if e.Deleted || e.Resource == nil || e.Resource.ID != e.ID || e.VersionID == "" {
			t.Errorf("create entry %+v", e)
		}
	}
	// A delete is invisible to search: the CDC reason for History.
	var found []string
	err = c.Search(t.Context(), ds, "Observation", since, d.LastUpdated.Add(time.Millisecond), func(p Page) error {
		for _, r := range p.Resources {
			found = append(found, r.ID)
		}
		return nil
	})
	if err != nil || len(found) != 2 || slices.Contains(found, victim.ID) {
		t.Errorf("search after delete: %v, %v", found, err)
	}
}

// serverStats reads one datastore's request counters from the local server.
func serverStats(t *testing.T, hc *http.Client, base, ds string) map[string]int {
	t.Helper()
	var stats struct{ Requests map[string]int }
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/_admin/stats?datastoreId="+ds, nil)
	if err := doJSON(hc, req, &stats); err != nil {
		t.Fatalf("stats: %v", err)
	}
	return stats.Requests
}

// The local server answers _count=0 with only a total (deploy/local/fhir/README.md); it does
// not know _summary yet, and says so with 400 not-supported, which Count reports as "could
// not count" for the caller's full re-read. Once the server learns _summary=count, the second
// half should expect ok with the default mode too.
func TestIntegrationCount(t *testing.T) {
	base := localFHIR(t)
	hc := localHTTP(t)
	ds := randomDatastore(t)
	setKnobs(t, hc, base, ds, map[string]any{"visibilityDelayMs": 0, "rateLimit": 0})
	made := createObservations(t, hc, base+"/datastore/"+ds+"/r4/", 37)
	slices.SortFunc(made, func(a, b created) int { return a.Meta.LastUpdated.Compare(b.Meta.LastUpdated) })
	from, end := made[0].Meta.LastUpdated, made[len(made)-1].Meta.LastUpdated.Add(time.Millisecond)
	mid := made[20].Meta.LastUpdated
	wantBeforeMid := 0
	for _, m := range made {
		if m.Meta.LastUpdated.Before(mid) {
			wantBeforeMid++
		}
	}

	zero := localClient(t, base, hc, func(c *Config) { c.CountMode = CountZero })
	before := serverStats(t, hc, base, ds)["search"]
	for _, r := range []struct {
		from, to time.Time
		want     int
	}{{from, end, 37}, {from, mid, wantBeforeMid}, {end, end.Add(time.Hour), 0}} {
		n, ok, err := zero.Count(t.Context(), ds, "Observation", r.from, r.to)
		if err != nil || !ok || n != r.want {
			t.Errorf("count [%v, %v): %d, ok %v, err %v; want %d", r.from, r.to, n, ok, err, r.want)
		}
	}
	if got := serverStats(t, hc, base, ds)["search"] - before; got != 3 {
		t.Errorf("%d search requests for 3 counts", got)
	}

	summary := localClient(t, base, hc, nil)
	if n, ok, err := summary.Count(t.Context(), ds, "Observation", from, end); !ok || err != nil || n != 37 {
		t.Errorf("_summary=count: %d, ok %v, err %v; want 37", n, ok, err)
	}
	// A server that ignores the count request (answers entries, no total): a fallback.
	setKnobs(t, hc, base, ds, map[string]any{"ignoreCount": true})
	if n, ok, err := summary.Count(t.Context(), ds, "Observation", from, end); ok || err != nil {
		t.Errorf("_summary=count on a server that ignores it: %d, ok %v, err %v; want a fallback", n, ok, err)
	}
}

// HistoryRange asks for _since=from and reads only the pages that hold entries since then:
// the local server lists newest first and honours _since, so that is every page it serves and
// no more; the entries outside [from, to) are dropped, a delete in range is kept.
func TestIntegrationHistoryRange(t *testing.T) {
	base := localFHIR(t)
	hc := localHTTP(t)
	ds := randomDatastore(t)
	setKnobs(t, hc, base, ds, map[string]any{"visibilityDelayMs": 0, "rateLimit": 0})
	fhirBase := base + "/datastore/" + ds + "/r4/"
	var made []created
	for range 3 { // three batches, so times are spread
		made = append(made, createObservations(t, hc, fhirBase, 10)...)
	}
	slices.SortFunc(made, func(a, b created) int { return a.Meta.LastUpdated.Compare(b.Meta.LastUpdated) })
	from, to := made[10].Meta.LastUpdated, made[20].Meta.LastUpdated
	victim := made[15]
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, fhirBase+"Observation/"+victim.ID, nil)
	if err := doJSON(hc, req, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// The delete happens now, after to: out of range. Entries since from: made[10:] and it.
	since := 1
	wantIn := map[string]bool{}
	for _, m := range made {
		if !m.Meta.LastUpdated.Before(from) {
			since++
			if m.Meta.LastUpdated.Before(to) {
				wantIn[m.ID] = true
			}
		}
	}

	c := localClient(t, base, hc, func(c *Config) { c.PageSize = 4 })
	before := serverStats(t, hc, base, ds)["history"]
	got := map[string]bool{}
	pages, out := 0, 0
	err := c.HistoryRange(t.Context(), ds, "Observation", from, to, func(p HistoryPage) error {
		pages++
		out += p.OutOfRange
		for _, e := range p.Entries {
			if e.Deleted || e.LastUpdated.Before(from) || !e.LastUpdated.Before(to) {
				t.Errorf("entry %+v outside the range or a delete", e)
			}
			got[e.ID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	requests := serverStats(t, hc, base, ds)["history"] - before
	wantPages := (since + 3) / 4
	if len(got) != len(wantIn) || pages != wantPages || requests != wantPages || out != since-len(wantIn) {
		t.Errorf("%d in range (want %d) on %d pages with %d requests (want %d), %d out of range (want %d)",
			len(got), len(wantIn), pages, requests, wantPages, out, since-len(wantIn))
	}
	for id := range wantIn {
		if !got[id] {
			t.Errorf("resource %s missing", id)
		}
	}

	// The delete shows in a range that holds it.
	var deletes []HistoryEntry
	err = c.HistoryRange(t.Context(), ds, "Observation", to, time.Now().Add(time.Second), func(p HistoryPage) error {
		for _, e := range p.Entries {
			if e.Deleted {
				deletes = append(deletes, e)
			}
		}
		return nil
	})
	if err != nil || len(deletes) != 1 || deletes[0].ID != victim.ID {
		t.Errorf("deletes %+v, err %v", deletes, err)
	}
}

func TestIntegrationInstanceHistoryAndVRead(t *testing.T) {
	base := localFHIR(t)
	hc := localHTTP(t)
	ds := randomDatastore(t)
	setKnobs(t, hc, base, ds, map[string]any{"visibilityDelayMs": 0, "rateLimit": 0})
	fhirBase := base + "/datastore/" + ds + "/r4/"
	first := createObservations(t, hc, fhirBase, 1)[0]
	versions := []string{first.Meta.VersionID}
	for i := range 2 {
		var upd created
		obs := map[string]any{"resourceType": "Observation", "id": first.ID, "status": "amended", "code": map[string]any{"text": fmt.Sprint("v", i)}}
		b, _ := json.Marshal(obs)
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, fhirBase+"Observation/"+first.ID, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/fhir+json")
		if err := doJSON(hc, req, &upd); err != nil {
			t.Fatalf("update: %v", err)
		}
		versions = append(versions, upd.Meta.VersionID)
	}

	c := localClient(t, base, hc, func(c *Config) { c.PageSize = 2 })
	var got []string
	err := c.InstanceHistory(t.Context(), ds, "Observation", first.ID, time.Time{}, func(p HistoryPage) error {
		for _, e := range p.Entries {
			got = append(got, e.VersionID)
		}
		return nil
	})
	// Newest first, like type history.
	if err != nil || !slices.Equal(got, []string{versions[2], versions[1], versions[0]}) {
		t.Errorf("instance history %v, err %v; want %v reversed", got, err, versions)
	}
	r, err := c.VRead(t.Context(), ds, "Observation", first.ID, versions[0])
	if err != nil || r.ID != first.ID || r.VersionID != versions[0] || !r.LastUpdated.Equal(first.Meta.LastUpdated) {
		t.Errorf("vread: %+v, %v", r, err)
	}
	if _, err := c.VRead(t.Context(), ds, "Observation", "no-such-id", "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("vread of nothing: %v", err)
	}
	if err := c.InstanceHistory(t.Context(), ds, "Observation", "no-such-id", time.Time{}, func(HistoryPage) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("instance history of nothing: %v", err)
	}
}

package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// fakeFHIR is a FHIR server's data in memory, answering the pipeline's Searcher and Counter
// as a search index that may show writes late: each version becomes visible to searches and
// counts delay after it was written (history sees it at once). Tests choose errors per call
// (fail), make counts ignored, and repeat entries within a page.
type fakeFHIR struct {
	clock *clocktest.Fake

	mu        sync.Mutex
	resources map[coalesce.Key]map[string][]version // id → versions, oldest first
	delay     time.Duration                         // search visibility delay of new writes
	// historyLags makes type-level history honour delay too, as the local FHIR server's
	// does (it goes through the search index there); otherwise history sees writes at once.
	historyLags bool
	pageSize    int
	// countIgnored makes Count answer as a server that ignores _summary=count does.
	countIgnored bool
	// repeat puts every resource twice on its page (an offset-paging server mid-write).
	repeat bool
	// fail, if set, is asked before every call (op "search", "count" or "history"); an
	// error it returns is the call's.
	fail func(op string, k coalesce.Key) error

	calls    map[string]int       // op → calls
	keyCalls map[string]int       // op + " " + key → calls
	returned map[coalesce.Key]int // resources handed to search visitors
	log      []fhirCall
	seq      int
}

// fhirCall is one call made, when the fake clock said.
type fhirCall struct {
	op string
	k  coalesce.Key
	at time.Time
}

type version struct {
	n         int
	at        time.Time // lastUpdated
	visibleAt time.Time
	deleted   bool
}

func newFakeFHIR(c *clocktest.Fake) *fakeFHIR {
	return &fakeFHIR{
		clock: c, pageSize: 100,
		resources: make(map[coalesce.Key]map[string][]version),
		calls:     make(map[string]int), keyCalls: make(map[string]int), returned: make(map[coalesce.Key]int),
	}
}

// write makes a new version of id (a new resource when id is "") at the clock's now, and
// returns the id and version number.
func (f *fakeFHIR) write(k coalesce.Key, id string) (string, int) {
	return f.writeAt(k, id, f.clock.Now(), false)
}

// remove deletes id now.
func (f *fakeFHIR) remove(k coalesce.Key, id string) int {
	_, n := f.writeAt(k, id, f.clock.Now(), true)
	return n
}

func (f *fakeFHIR) writeAt(k coalesce.Key, id string, at time.Time, deleted bool) (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id == "" {
		f.seq++
		id = fmt.Sprintf("r%04d", f.seq)
	}
	m := f.resources[k]
	if m == nil {
		m = make(map[string][]version)
		f.resources[k] = m
	}
	v := version{n: len(m[id]) + 1, at: at.UTC().Truncate(time.Millisecond), deleted: deleted}
	v.visibleAt = v.at.Add(f.delay)
	m[id] = append(m[id], v)
	return id, v.n
}

func (f *fakeFHIR) enter(op string, k coalesce.Key) error {
	f.calls[op]++
	f.keyCalls[op+" "+k.String()]++
	f.log = append(f.log, fhirCall{op: op, k: k, at: f.clock.Now()})
	if f.fail != nil {
		return f.fail(op, k)
	}
	return nil
}

// count is the calls of op made, for every key or (given one) for k.
func (f *fakeFHIR) count(op string, k ...coalesce.Key) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(k) == 1 {
		return f.keyCalls[op+" "+k[0].String()]
	}
	return f.calls[op]
}

// callTimes are when op was called for k.
func (f *fakeFHIR) callTimes(op string, k coalesce.Key) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Time
	for _, c := range f.log {
		if c.op == op && c.k == k {
			out = append(out, c.at)
		}
	}
	return out
}

func (f *fakeFHIR) returnedFor(k coalesce.Key) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.returned[k]
}

// indexed is what a search of k sees now: each resource at its newest visible version,
// when that is not a delete and lies in [from, to).
func (f *fakeFHIR) indexed(k coalesce.Key, from, to time.Time) []fhir.Resource {
	now := f.clock.Now()
	var out []fhir.Resource
	for id, vs := range f.resources[k] {
		var seen *version
		for i := range vs {
			if !vs[i].visibleAt.After(now) {
				seen = &vs[i]
			}
		}
		if seen == nil || seen.deleted || seen.at.Before(from) || !seen.at.Before(to) {
			continue
		}
		out = append(out, resourceOf(k, id, *seen))
	}
	// Servers sort by _lastUpdated (HealthLake's default); id breaks ties for determinism.
	slices.SortFunc(out, func(a, b fhir.Resource) int {
		if c := a.LastUpdated.Compare(b.LastUpdated); c != 0 {
			return c
		}
		return compareStrings(a.ID, b.ID)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func resourceOf(k coalesce.Key, id string, v version) fhir.Resource {
	raw, _ := json.Marshal(map[string]any{
		"resourceType": k.ResourceType, "id": id,
		"meta": map[string]any{"versionId": strconv.Itoa(v.n), "lastUpdated": v.at.Format(time.RFC3339Nano)},
	})
	return fhir.Resource{ResourceType: k.ResourceType, ID: id, VersionID: strconv.Itoa(v.n), LastUpdated: v.at, Raw: raw}
}

// historyEntryOf is version v of id as a history entry: its content, or a delete.
func historyEntryOf(k coalesce.Key, id string, v version) fhir.HistoryEntry {
	e := fhir.HistoryEntry{ID: id, VersionID: strconv.Itoa(v.n), LastUpdated: v.at, Deleted: v.deleted}
	if !v.deleted {
		r := resourceOf(k, id, v)
		e.Resource = &r
	}
	return e
}

func (f *fakeFHIR) Search(ctx context.Context, ds, rt string, from, to time.Time, visit func(fhir.Page) error) error {
	k := coalesce.Key{DatastoreID: ds, ResourceType: rt}
	f.mu.Lock()
	if err := f.enter("search", k); err != nil {
		f.mu.Unlock()
		return err
	}
	found := f.indexed(k, from, to)
	repeat := f.repeat
	f.returned[k] += len(found)
	size := f.pageSize
	f.mu.Unlock()
	n := 0
	for len(found) > 0 || n == 0 {
		n++
		page := found[:min(size, len(found))]
		found = found[len(page):]
		pg := fhir.Page{Number: n, Resources: slices.Clone(page)}
		if repeat {
			pg.Resources = append(pg.Resources, page...)
		}
		if err := visit(pg); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (f *fakeFHIR) Count(_ context.Context, ds, rt string, from, to time.Time) (int, bool, error) {
	k := coalesce.Key{DatastoreID: ds, ResourceType: rt}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("count", k); err != nil {
		return 0, false, err
	}
	if f.countIgnored {
		return 0, false, nil
	}
	return len(f.indexed(k, from, to)), true, nil
}

func (f *fakeFHIR) HistoryRange(_ context.Context, ds, rt string, from, to time.Time, visit func(fhir.HistoryPage) error) error {
	k := coalesce.Key{DatastoreID: ds, ResourceType: rt}
	f.mu.Lock()
	if err := f.enter("history", k); err != nil {
		f.mu.Unlock()
		return err
	}
	var es []fhir.HistoryEntry
	for id, vs := range f.resources[k] {
		for _, v := range vs {
			if v.at.Before(from) || !v.at.Before(to) || (f.historyLags && v.visibleAt.After(f.clock.Now())) {
				continue
			}
			es = append(es, historyEntryOf(k, id, v))
		}
	}
	f.mu.Unlock()
	// Newest first, as FHIR R4 says history is.
	slices.SortFunc(es, func(a, b fhir.HistoryEntry) int { return b.LastUpdated.Compare(a.LastUpdated) })
	return visit(fhir.HistoryPage{Number: 1, Entries: es})
}

// fhirErrors are the errors the real pkg/fhir client returns for each failure class, made by
// running it once against a local server that fails so (outside any synctest bubble: it does
// network I/O). The pipeline tests then get exactly what production gets.
type fhirErrors map[string]error

// realFHIRErrors returns, by name: forbidden (403), not-found (404), malformed-bundle (a
// body that is not a Bundle), paging-loop (a next link back to the same page), foreign-next-link,
// throttled (429), server-error (503), network (connection closed without an answer).
func realFHIRErrors(t *testing.T) fhirErrors {
	t.Helper()
	mux := http.NewServeMux()
	status := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(code)
			fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing"}]}`)
		}
	}
	var srv *httptest.Server
	routes := map[string]http.HandlerFunc{
		"forbidden":    status(http.StatusForbidden),
		"not-found":    status(http.StatusNotFound),
		"throttled":    status(http.StatusTooManyRequests),
		"server-error": status(http.StatusServiceUnavailable),
		"malformed-bundle": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/fhir+json")
			fmt.Fprint(w, `{"resourceType":"Patient","id":"x"}`)
		},
		"paging-loop": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/fhir+json")
			self := srv.URL + r.URL.RequestURI()
			fmt.Fprintf(w, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":%q}],"entry":[]}`, self)
		},
		"foreign-next-link": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/fhir+json")
			fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"https://elsewhere.example/r4/Patient?page=2"}],"entry":[]}`)
		},
		"network": func(w http.ResponseWriter, _ *http.Request) {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
		},
	}
	for name, h := range routes {
		mux.Handle("/"+name+"/{ds}/r4/", h)
	}
	srv = httptest.NewServer(mux)
	defer srv.Close()
	tr := &http.Transport{DialContext: (&net.Dialer{}).DialContext}
	defer tr.CloseIdleConnections()
	out := make(fhirErrors)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for name := range routes {
		c, err := fhir.New(fhir.Config{
			Endpoint:   srv.URL + "/" + name + "/{datastoreId}/r4/",
			HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}, MaxAttempts: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Search(context.Background(), testDS, "Observation", from, from.Add(time.Second), func(fhir.Page) error { return nil })
		if err == nil {
			t.Fatalf("%s: the local server's failure gave no error", name)
		}
		out[name] = err
	}
	// Each class is what its name says, as the pipeline will classify it.
	for name, err := range out {
		permanent := name != "throttled" && name != "server-error" && name != "network"
		if retry.IsPermanent(err) != permanent || fhir.Reason(err) != name {
			t.Fatalf("%s: got %v (permanent %v, reason %q)", name, err, retry.IsPermanent(err), fhir.Reason(err))
		}
	}
	return out
}

// writesBefore lists "type/id" of every resource whose latest version was written before t.
func (f *fakeFHIR) writesBefore(t time.Time) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k, m := range f.resources {
		for id, vs := range m {
			if v := vs[len(vs)-1]; !v.deleted && v.at.Before(t) {
				out = append(out, k.ResourceType+"/"+id)
			}
		}
	}
	return out
}

// InstanceHistory serves one resource's versions since since, newest first (history sees
// every version at once, as HealthLake's instance history is read from the store).
func (f *fakeFHIR) InstanceHistory(_ context.Context, ds, rt, id string, since time.Time, visit func(fhir.HistoryPage) error) error {
	k := coalesce.Key{DatastoreID: ds, ResourceType: rt}
	f.mu.Lock()
	if err := f.enter("instance-history", k); err != nil {
		f.mu.Unlock()
		return err
	}
	vs, ok := f.resources[k][id]
	var es []fhir.HistoryEntry
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		if v.at.Before(since) {
			break
		}
		es = append(es, historyEntryOf(k, id, v))
	}
	f.mu.Unlock()
	if !ok {
		return fhir.ErrNotFound
	}
	return visit(fhir.HistoryPage{Number: 1, Entries: es})
}

// VRead reads one version.
func (f *fakeFHIR) VRead(_ context.Context, ds, rt, id, version string) (fhir.Resource, error) {
	k := coalesce.Key{DatastoreID: ds, ResourceType: rt}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("vread", k); err != nil {
		return fhir.Resource{}, err
	}
	for _, v := range f.resources[k][id] {
		if strconv.Itoa(v.n) == version {
			if v.deleted {
				return fhir.Resource{}, fhir.ErrGone
			}
			return resourceOf(k, id, v), nil
		}
	}
	return fhir.Resource{}, fhir.ErrNotFound
}

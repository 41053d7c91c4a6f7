package stacktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// These tests drive the local FHIR server (deploy/local/fhir) the way the CDC reader drives
// HealthLake. Each test uses its own random datastore and sets knobs for that datastore only, so
// they never see one another's resources or settings; none calls /_admin/reset, which would
// disturb other packages testing against the same server.

type fhirResource struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
}

type fhirBundle struct {
	Type  string `json:"type"`
	Total *int   `json:"total"`
	Link  []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		FullURL  string        `json:"fullUrl"`
		Resource *fhirResource `json:"resource"`
		Request  *struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"request"`
		Response *struct {
			Status       string `json:"status"`
			LastModified string `json:"lastModified"`
		} `json:"response"`
	} `json:"entry"`
}

func (b fhirBundle) next() string {
	for _, l := range b.Link {
		if l.Relation == "next" {
			return l.URL
		}
	}
	return ""
}

type fhirOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Code string `json:"code"`
	} `json:"issue"`
}

// fhirStack is one test's view of the local FHIR server: a fresh datastore of its own.
type fhirStack struct {
	t    *testing.T
	ctx  context.Context
	root *url.URL // http://127.0.0.1:PORT
	ds   string
	base string // root/datastore/{ds}/r4
}

// in is f for a subtest: failures must go to the test running the current goroutine.
func (f *fhirStack) in(t *testing.T) *fhirStack {
	g := *f
	g.t = t
	return &g
}

func newFHIRStack(t *testing.T) *fhirStack {
	t.Helper()
	root, err := url.Parse(stack.URL(t, "FHIR"))
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	ds := hex.EncodeToString(id)
	return &fhirStack{t: t, ctx: testContext(t, 2*time.Minute), root: root, ds: ds, base: root.String() + "/datastore/" + ds + "/r4"}
}

// do sends body as JSON, decodes a JSON answer into out when out is non-nil, and returns the
// status and headers. Transport failures end the test.
func (f *fhirStack) do(ctx context.Context, method, target string, body, out any) (int, http.Header) {
	f.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, r)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			f.t.Fatalf("%s %s: decode %d answer: %v", method, target, resp.StatusCode, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// configure sets knobs for this test's datastore only and removes them when the test ends.
func (f *fhirStack) configure(settings map[string]any) {
	f.t.Helper()
	f.postConfig(f.ctx, settings)
	f.t.Cleanup(func() {
		// The test's context may already be over; restoring must still happen.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		f.postConfig(ctx, map[string]any{"visibilityDelayMs": nil, "rateLimit": nil, "throttleForMs": 0})
	})
}

func (f *fhirStack) postConfig(ctx context.Context, settings map[string]any) {
	f.t.Helper()
	body := map[string]any{"datastoreId": f.ds}
	for k, v := range settings {
		body[k] = v
	}
	if status, _ := f.do(ctx, http.MethodPost, f.root.String()+"/_admin/config", body, nil); status != http.StatusOK {
		f.t.Fatalf("POST /_admin/config: status %d", status)
	}
}

func observation(value int) map[string]any {
	return map[string]any{
		"resourceType": "Observation",
		"status":       "final",
		"code":         map[string]any{"text": "stacktest"},
		"valueInteger": value,
	}
}

func (f *fhirStack) create(value int) fhirResource {
	f.t.Helper()
	var r fhirResource
	if status, _ := f.do(f.ctx, http.MethodPost, f.base+"/Observation", observation(value), &r); status != http.StatusCreated {
		f.t.Fatalf("create: status %d", status)
	}
	return r
}

func (f *fhirStack) update(id string, value int) fhirResource {
	f.t.Helper()
	body := observation(value)
	body["id"] = id
	var r fhirResource
	if status, _ := f.do(f.ctx, http.MethodPut, f.base+"/Observation/"+id, body, &r); status != http.StatusOK {
		f.t.Fatalf("update: status %d", status)
	}
	return r
}

// walk follows next links from first and returns the ids in order and the bundles seen. It
// checks every page against maxPage and every next link's scheme, host and path.
func (f *fhirStack) walk(first string, maxPage int, between func()) ([]string, []fhirBundle) {
	f.t.Helper()
	var ids []string
	var pages []fhirBundle
	wantPath := mustParse(f.t, first).Path
	for next := first; next != ""; {
		var b fhirBundle
		if status, _ := f.do(f.ctx, http.MethodGet, next, nil, &b); status != http.StatusOK {
			f.t.Fatalf("page %d: status %d", len(pages)+1, status)
		}
		pages = append(pages, b)
		if len(b.Entry) > maxPage {
			f.t.Fatalf("page %d has %d entries, want at most %d", len(pages), len(b.Entry), maxPage)
		}
		for _, e := range b.Entry {
			ids = append(ids, e.Resource.ID)
		}
		next = b.next()
		if next != "" {
			u := mustParse(f.t, next)
			if u.Scheme != f.root.Scheme || u.Host != f.root.Host || u.Path != wantPath {
				f.t.Fatalf("next link leaves the search: scheme %q host %q path %q", u.Scheme, u.Host, u.Path)
			}
		}
		if len(pages) > 1000 {
			f.t.Fatal("next links do not end")
		}
		if between != nil && next != "" {
			between()
		}
	}
	return ids, pages
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return u
}

// assertIDs fails unless got holds each id of want exactly once and nothing else.
func assertIDs(t *testing.T, got []string, want map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	var dup, extra, missing int
	for id, n := range seen {
		if n > 1 {
			dup++
		}
		if !want[id] {
			extra++
		}
	}
	for id := range want {
		if seen[id] == 0 {
			missing++
		}
	}
	if dup+extra+missing > 0 {
		t.Fatalf("got %d ids: %d duplicated, %d unexpected, %d missing of %d", len(got), dup, extra, missing, len(want))
	}
}

func parseInstant(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("lastUpdated %q: %v", s, err)
	}
	return ts
}

// fhirInstant formats t the way HealthLake stamps meta.lastUpdated: UTC, milliseconds.
func fhirInstant(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func TestFHIRLastUpdatedSearchPaging(t *testing.T) {
	f := newFHIRStack(t)
	f.configure(map[string]any{"visibilityDelayMs": 0, "rateLimit": 0})

	// 250 creates, then updates of every fifth resource: those move to the end of the
	// _lastUpdated order, so a window in the middle must not return them.
	var ids []string
	firstWrite, lastWrite := map[string]string{}, map[string]string{}
	for i := range 250 {
		r := f.create(i)
		if len(r.Meta.LastUpdated) != len("2006-01-02T15:04:05.000Z") {
			t.Fatalf("meta.lastUpdated %q lacks millisecond precision", r.Meta.LastUpdated)
		}
		ids = append(ids, r.ID)
		firstWrite[r.ID], lastWrite[r.ID] = r.Meta.LastUpdated, r.Meta.LastUpdated
	}
	updated := map[string]bool{}
	for i := 0; i < len(ids); i += 5 {
		before := lastWrite[ids[i]]
		r := f.update(ids[i], 1000+i)
		if r.Meta.LastUpdated < before {
			t.Fatalf("update moved lastUpdated back: %s < %s", r.Meta.LastUpdated, before)
		}
		lastWrite[r.ID] = r.Meta.LastUpdated
		updated[r.ID] = true
	}

	var times []time.Time
	for _, lu := range lastWrite {
		times = append(times, parseInstant(t, lu))
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	from, to := times[60], times[215]
	inWindow := func(lu string) bool {
		ts := parseInstant(t, lu)
		return !ts.Before(from) && ts.Before(to)
	}
	want := map[string]bool{}
	wantUpdated, movedOut := 0, 0
	for _, id := range ids {
		switch {
		case inWindow(lastWrite[id]):
			want[id] = true
			if updated[id] {
				wantUpdated++
			}
		case inWindow(firstWrite[id]):
			movedOut++ // created inside the window, updated after it
		}
	}
	if len(want) < 120 || wantUpdated == 0 || movedOut == 0 {
		t.Fatalf("window does not exercise the search: %d resources, %d updated, %d moved out", len(want), wantUpdated, movedOut)
	}

	search := func(count int) string {
		q := url.Values{
			"_lastUpdated": {"ge" + fhirInstant(from), "lt" + fhirInstant(to)},
			"_count":       {strconv.Itoa(count)},
			"_sort":        {"_lastUpdated"},
		}
		return f.base + "/Observation?" + q.Encode()
	}

	t.Run("count 100", func(t *testing.T) {
		got, pages := f.in(t).walk(search(100), 100, nil)
		assertIDs(t, got, want)
		if wantPages := (len(want) + 99) / 100; len(pages) != wantPages {
			t.Errorf("%d pages, want %d", len(pages), wantPages)
		}
		if pages[0].Total == nil || *pages[0].Total != len(want) {
			t.Errorf("total %v, want %d", pages[0].Total, len(want))
		}
		var prev time.Time
		for _, p := range pages {
			for _, e := range p.Entry {
				ts := parseInstant(t, e.Resource.Meta.LastUpdated)
				if ts.Before(prev) {
					t.Fatalf("entries not sorted by _lastUpdated")
				}
				prev = ts
			}
		}
	})

	t.Run("count above 100 is capped", func(t *testing.T) {
		got, pages := f.in(t).walk(search(500), 100, nil)
		assertIDs(t, got, want)
		if len(pages[0].Entry) != 100 {
			t.Errorf("first page has %d entries, want 100", len(pages[0].Entry))
		}
	})

	t.Run("small pages while writes arrive", func(t *testing.T) {
		// New resources fall after the window; updating a resource from before the window's
		// start moves it after the window too. Neither may disturb the walk.
		f := f.in(t)
		var early []string
		for _, id := range ids {
			if parseInstant(t, lastWrite[id]).Before(from) {
				early = append(early, id)
			}
		}
		n := 0
		got, _ := f.walk(search(7), 7, func() {
			f.create(5000 + n)
			f.update(early[n%len(early)], 6000+n)
			n++
		})
		if n < 10 {
			t.Fatalf("only %d pages", n+1)
		}
		assertIDs(t, got, want)
	})

	t.Run("open-ended walk sees writes made during it", func(t *testing.T) {
		f := f.in(t)
		open := url.Values{"_lastUpdated": {"ge" + fhirInstant(from)}}
		// Resources that exist now and match must each appear once; so must the ones created
		// between pages, which sort after every page served so far.
		wantOpen := map[string]bool{}
		all, _ := f.walk(f.base+"/Observation?_count=100&"+open.Encode(), 100, nil)
		for _, id := range all {
			wantOpen[id] = true
		}
		got, _ := f.walk(f.base+"/Observation?_count=25&"+open.Encode(), 25, func() {
			wantOpen[f.create(7000).ID] = true
		})
		assertIDs(t, got, wantOpen)
	})
}

func TestFHIRSearchVisibilityDelay(t *testing.T) {
	const delay = 1500 * time.Millisecond
	f := newFHIRStack(t)
	f.configure(map[string]any{"visibilityDelayMs": delay.Milliseconds(), "rateLimit": 0})

	type write struct {
		id         string
		sent, done time.Time
	}
	var writes []write
	for i := range 20 {
		sent := time.Now()
		r := f.create(i)
		writes = append(writes, write{r.ID, sent, time.Now()})
	}
	all := map[string]bool{}
	for _, w := range writes {
		all[w.id] = true
	}
	searchURL := f.base + "/Observation?_count=100&_lastUpdated=ge2000-01-01T00:00:00Z"
	historyURL := f.base + "/Observation/_history?_since=2000-01-01T00:00:00Z"

	// A write the server received less than the delay before a search started cannot be in it.
	hidden := func(asked time.Time) map[string]bool {
		h := map[string]bool{}
		for _, w := range writes {
			if w.sent.Add(delay).After(asked) {
				h[w.id] = true
			}
		}
		return h
	}
	asked := time.Now()
	got, _ := f.walk(searchURL, 100, nil)
	mustHide := hidden(asked)
	if len(mustHide) == 0 {
		t.Fatal("writes took longer than the delay; nothing to check")
	}
	for _, id := range got {
		if mustHide[id] {
			t.Fatalf("search saw a write before the visibility delay passed")
		}
	}
	asked = time.Now()
	var hist fhirBundle
	if status, _ := f.do(f.ctx, http.MethodGet, historyURL, nil, &hist); status != http.StatusOK {
		t.Fatalf("history: status %d", status)
	}
	mustHide = hidden(asked)
	for _, e := range hist.Entry {
		if mustHide[e.Resource.ID] {
			t.Fatalf("type history saw a write before the visibility delay passed")
		}
	}
	// Read sees a write at once, as on HealthLake.
	if status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation/"+writes[len(writes)-1].id, nil, nil); status != http.StatusOK {
		t.Fatalf("read right after create: status %d", status)
	}

	// The server stamped each write before answering it, so after the last answer plus the
	// delay every write is visible.
	time.Sleep(time.Until(writes[len(writes)-1].done.Add(delay + 100*time.Millisecond)))
	got, _ = f.walk(searchURL, 100, nil)
	assertIDs(t, got, all)
	if status, _ := f.do(f.ctx, http.MethodGet, historyURL, nil, &hist); status != http.StatusOK || len(hist.Entry) != len(all) {
		t.Fatalf("history after the delay: status %d, %d entries, want %d", status, len(hist.Entry), len(all))
	}
}

// expect429 fails the test unless the request is throttled the way HealthLake throttles.
func (f *fhirStack) expect429(method, target string, body any) {
	f.t.Helper()
	var oo fhirOutcome
	status, h := f.do(f.ctx, method, target, body, &oo)
	if status != http.StatusTooManyRequests {
		f.t.Fatalf("%s: status %d, want 429", method, status)
	}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err != nil || s < 1 {
		f.t.Fatalf("%s: Retry-After %q, want whole seconds >= 1", method, h.Get("Retry-After"))
	}
	if oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 || oo.Issue[0].Code != "throttled" {
		f.t.Fatalf("%s: 429 body is not a throttled OperationOutcome", method)
	}
}

func TestFHIRThrottleAnswers429(t *testing.T) {
	f := newFHIRStack(t)
	t.Run("forced throttle", func(t *testing.T) {
		f := f.in(t)
		f.configure(map[string]any{"throttleForMs": 30000, "rateLimit": 0})
		f.expect429(http.MethodGet, f.base+"/Observation?_count=1", nil)
		f.expect429(http.MethodPost, f.base+"/Observation", observation(1))

		var stats struct {
			Throttled int            `json:"throttled"`
			Requests  map[string]int `json:"requests"`
		}
		f.do(f.ctx, http.MethodGet, f.root.String()+"/_admin/stats?datastoreId="+f.ds, nil, &stats)
		if stats.Throttled != 2 || stats.Requests["search"] != 1 || stats.Requests["create"] != 1 {
			t.Fatalf("stats: %d throttled, requests %v; want 2 throttled, one search, one create", stats.Throttled, stats.Requests)
		}

		f.postConfig(f.ctx, map[string]any{"throttleForMs": 0})
		if status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation?_count=1", nil, nil); status != http.StatusOK {
			t.Fatalf("after the throttle ended: status %d", status)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		f := f.in(t)
		f.configure(map[string]any{"rateLimit": 2})
		var ok, throttled int
		for range 10 {
			status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation?_count=1", nil, nil)
			switch status {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				throttled++
			default:
				t.Fatalf("status %d", status)
			}
		}
		if ok == 0 || throttled == 0 {
			t.Fatalf("%d answered, %d throttled; want some of each", ok, throttled)
		}
		f.expect429(http.MethodGet, f.base+"/Observation?_count=1", nil)
	})
}

func TestFHIRTypeHistoryShowsDeletes(t *testing.T) {
	f := newFHIRStack(t)
	f.configure(map[string]any{"visibilityDelayMs": 0, "rateLimit": 0})

	keep := f.create(1)
	gone := f.create(2)
	kept := f.update(keep.ID, 3)
	if kept.Meta.VersionID == keep.Meta.VersionID {
		t.Fatal("update kept the versionId")
	}
	if status, _ := f.do(f.ctx, http.MethodDelete, f.base+"/Observation/"+gone.ID, nil, nil); status != http.StatusNoContent && status != http.StatusOK {
		t.Fatalf("delete: status %d", status)
	}
	if status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation/"+gone.ID, nil, nil); status != http.StatusNotFound && status != http.StatusGone {
		t.Fatalf("read after delete: status %d", status)
	}
	var found fhirBundle
	f.do(f.ctx, http.MethodGet, f.base+"/Observation?_lastUpdated=ge"+keep.Meta.LastUpdated, nil, &found)
	if len(found.Entry) != 1 || found.Entry[0].Resource.ID != keep.ID {
		t.Fatalf("search after delete: %d entries, want only the kept resource", len(found.Entry))
	}

	history := func(since string) fhirBundle {
		t.Helper()
		var b fhirBundle
		q := url.Values{"_since": {since}}
		if status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation/_history?"+q.Encode(), nil, &b); status != http.StatusOK {
			t.Fatalf("history: status %d", status)
		}
		if b.Type != "history" {
			t.Fatalf("bundle type %q, want history", b.Type)
		}
		return b
	}

	var deletedAt string
	methods := map[string]int{}
	for _, e := range history(keep.Meta.LastUpdated).Entry {
		if e.Request == nil {
			t.Fatal("history entry without request")
		}
		methods[e.Request.Method]++
		if e.Request.Method == "DELETE" {
			if e.Request.URL != "Observation/"+gone.ID || e.Resource != nil || e.Response == nil {
				t.Fatalf("delete entry: url %q, has resource %v", e.Request.URL, e.Resource != nil)
			}
			deletedAt = e.Response.LastModified
		}
	}
	if methods["POST"] != 2 || methods["PUT"] != 1 || methods["DELETE"] != 1 {
		t.Fatalf("history methods %v, want 2 POST, 1 PUT, 1 DELETE", methods)
	}

	// _since at the delete still shows it; one millisecond later shows nothing.
	at := parseInstant(t, deletedAt)
	var sawDelete bool
	for _, e := range history(deletedAt).Entry {
		sawDelete = sawDelete || e.Request.Method == "DELETE"
	}
	if !sawDelete {
		t.Fatal("history _since the delete's time lacks the delete")
	}
	if b := history(fhirInstant(at.Add(time.Millisecond))); len(b.Entry) != 0 {
		t.Fatalf("history after the last write has %d entries", len(b.Entry))
	}
}

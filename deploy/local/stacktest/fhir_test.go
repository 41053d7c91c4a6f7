package stacktest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/healthlake"
	"github.com/aws/aws-sdk-go-v2/service/healthlake/types"

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

	t.Run("search rate limit leaves writes alone", func(t *testing.T) {
		f := f.in(t)
		f.configure(map[string]any{"searchRateLimit": 2, "rateLimit": 0})
		throttled := 0
		for range 10 {
			if status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation?_count=1", nil, nil); status == http.StatusTooManyRequests {
				throttled++
			}
		}
		if throttled == 0 {
			t.Fatal("10 searches at once under a limit of 2/s: none throttled")
		}
		for i := range 10 {
			f.create(i) // fails the test on any status but 201
		}
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

// --- HealthLake behaviour added for the timeline and completeness work (issues 8 and 9) --------

// raw sends body bytes with a content type and returns the status, headers and body.
func (f *fhirStack) raw(method, target, contentType string, body []byte, header map[string]string) (int, http.Header, []byte) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.ctx, method, target, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

func (f *fhirStack) admin() *stack.FHIRAdminClient { return stack.FHIRAdmin(f.t) }

func (f *fhirStack) history(path string) fhirBundle {
	f.t.Helper()
	var b fhirBundle
	if status, _ := f.do(f.ctx, http.MethodGet, f.base+path, nil, &b); status != http.StatusOK {
		f.t.Fatalf("GET %s: status %d", path, status)
	}
	return b
}

func TestFHIRNumericVersionIDs(t *testing.T) {
	f := newFHIRStack(t)
	created := f.create(1)
	if created.Meta.VersionID != "1" {
		t.Fatalf("create: versionId %q, want 1", created.Meta.VersionID)
	}
	id := created.ID
	if v := f.update(id, 2).Meta.VersionID; v != "2" {
		t.Fatalf("update: versionId %q, want 2", v)
	}
	status, h := f.do(f.ctx, http.MethodDelete, f.base+"/Observation/"+id, nil, nil)
	if status != http.StatusNoContent || h.Get("ETag") != `W/"3"` {
		t.Fatalf("delete: status %d ETag %q, want 204 W/\"3\"", status, h.Get("ETag"))
	}
	// vread keeps every version; the delete's version answers 410 Gone.
	for vid, want := range map[string]int{"1": 200, "2": 200, "3": 410, "4": 404} {
		var r fhirResource
		status, h := f.do(f.ctx, http.MethodGet, f.base+"/Observation/"+id+"/_history/"+vid, nil, &r)
		if status != want {
			t.Fatalf("vread %s: status %d, want %d", vid, status, want)
		}
		if want == 200 && (r.Meta.VersionID != vid || h.Get("ETag") != `W/"`+vid+`"`) {
			t.Fatalf("vread %s: versionId %q ETag %q", vid, r.Meta.VersionID, h.Get("ETag"))
		}
	}
	if status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation/"+id, nil, nil); status != http.StatusNotFound {
		t.Fatalf("read after delete: status %d, want 404", status)
	}
	// A second delete changes nothing (HealthLake answers 204); an unknown id is 404.
	if status, _ := f.do(f.ctx, http.MethodDelete, f.base+"/Observation/"+id, nil, nil); status != http.StatusNoContent {
		t.Fatalf("delete of a deleted resource: status %d", status)
	}
	if status, _ := f.do(f.ctx, http.MethodDelete, f.base+"/Observation/nope", nil, nil); status != http.StatusNotFound {
		t.Fatalf("delete of an unknown resource: status %d", status)
	}
	// A PUT brings it back as version 4, answered 201 with its Location.
	body := observation(4)
	body["id"] = id
	var back fhirResource
	status, h = f.do(f.ctx, http.MethodPut, f.base+"/Observation/"+id, body, &back)
	if status != http.StatusCreated || back.Meta.VersionID != "4" || !strings.HasSuffix(h.Get("Location"), "/Observation/"+id+"/_history/4") {
		t.Fatalf("re-create: status %d version %q Location %q", status, back.Meta.VersionID, h.Get("Location"))
	}

	hist := f.history("/Observation/" + id + "/_history")
	var got []string
	for _, e := range hist.Entry {
		v := ""
		if e.Resource != nil {
			v = e.Resource.Meta.VersionID
		}
		got = append(got, e.Request.Method+":"+v)
	}
	if want := "PUT:4 DELETE: PUT:2 POST:1"; strings.Join(got, " ") != want {
		t.Fatalf("instance history %q, want %q", strings.Join(got, " "), want)
	}
	if hist.Total == nil || *hist.Total != 4 {
		t.Fatalf("instance history total %v, want 4", hist.Total)
	}
	// _count pages newest first through next links.
	var versions []string
	for next := f.base + "/Observation/" + id + "/_history?_count=1"; next != ""; {
		var b fhirBundle
		f.do(f.ctx, http.MethodGet, next, nil, &b)
		if len(b.Entry) != 1 {
			t.Fatalf("history page has %d entries, want 1", len(b.Entry))
		}
		versions = append(versions, b.Entry[0].Request.Method)
		next = b.next()
	}
	if strings.Join(versions, " ") != "PUT DELETE PUT POST" {
		t.Fatalf("paged history %v", versions)
	}
}

// countBundle is a search answer read for its total and entries.
func (f *fhirStack) countBundle(query string) (fhirBundle, int) {
	f.t.Helper()
	var b fhirBundle
	status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation?"+query, nil, &b)
	return b, status
}

func TestFHIRCountSearchesAndStats(t *testing.T) {
	f := newFHIRStack(t)
	admin := f.admin()
	var first string
	for i := range 30 {
		r := f.create(i)
		if i == 0 {
			first = r.Meta.LastUpdated
		}
	}
	f.update(f.create(99).ID, 100) // 31 current resources, one with two versions
	window := "_lastUpdated=ge" + url.QueryEscape(first)
	admin.ResetStats(f.ds)

	for _, q := range []string{"_summary=count&" + window, "_total=accurate&_count=0&" + window, "_count=0&" + window} {
		b, status := f.countBundle(q)
		if status != http.StatusOK || b.Type != "searchset" || b.Total == nil || *b.Total != 31 || len(b.Entry) != 0 {
			t.Fatalf("%s: status %d total %v entries %d; want total 31, no entries", q, status, b.Total, len(b.Entry))
		}
	}
	got, pages := f.walk(f.base+"/Observation?_count=10&"+window, 10, nil)
	if len(got) != 31 || len(pages) != 4 {
		t.Fatalf("walk: %d resources in %d pages", len(got), len(pages))
	}
	if pages[0].Total == nil || *pages[0].Total != 31 || pages[1].Total != nil {
		t.Fatalf("totals: first page %v, second %v; want 31 then none", pages[0].Total, pages[1].Total)
	}
	if b, _ := f.countBundle("_count=10&_total=accurate&_cursor=" + mustParse(t, pages[0].next()).Query().Get("_cursor") + "&" + window); b.Total == nil || *b.Total != 31 {
		t.Fatalf("_total=accurate on a later page: total %v", b.Total)
	}
	f.history("/Observation/_history?_since=" + url.QueryEscape(first))

	st := admin.Stats(f.ds)
	if st.CountRequests != 3 || st.SearchResources != 31+10 || st.Requests["search"] != 8 || st.HistoryEntries != 32 {
		t.Fatalf("stats: count %d, resources %d, searches %d, history entries %d; want 3, 41, 8, 32",
			st.CountRequests, st.SearchResources, st.Requests["search"], st.HistoryEntries)
	}
	if obs := st.ByType["Observation"]; obs.CountRequests != 3 || obs.SearchResources != 41 || obs.HistoryEntries != 32 {
		t.Fatalf("Observation stats %+v", obs)
	}

	// A lenient server ignores counting: entries come back, no total.
	admin.Configure(f.ds, stack.FHIRKnobs{IgnoreCount: stack.Ptr(true)})
	admin.ResetStats(f.ds)
	for _, q := range []string{"_summary=count&" + window, "_count=0&" + window, "_total=accurate&" + window} {
		b, status := f.countBundle(q)
		if status != http.StatusOK || b.Total != nil || len(b.Entry) != 31 {
			t.Fatalf("ignoreCount %s: status %d total %v entries %d; want entries and no total", q, status, b.Total, len(b.Entry))
		}
	}
	if st := admin.Stats(f.ds); st.CountRequests != 0 || st.SearchResources != 93 {
		t.Fatalf("ignoreCount stats: count %d resources %d; want 0, 93", st.CountRequests, st.SearchResources)
	}
}

func TestFHIRTypeHistoryKnobAndRange(t *testing.T) {
	f := newFHIRStack(t)
	var stamps []string
	var ids []string
	for i := range 12 {
		r := f.create(i)
		stamps, ids = append(stamps, r.Meta.LastUpdated), append(ids, r.ID)
		time.Sleep(2 * time.Millisecond) // distinct lastUpdated values
	}
	// Newest first, 5 a page: a client after the range [stamps[4], ∞) reads two pages and
	// sees, on the second, the first entry older than its range.
	since := url.QueryEscape(stamps[4])
	b := f.history("/Observation/_history?_count=5&_since=" + since)
	if b.Total == nil || *b.Total != 8 || len(b.Entry) != 5 || b.Entry[0].Resource.ID != ids[11] {
		t.Fatalf("first page: total %v, %d entries", b.Total, len(b.Entry))
	}
	var next fhirBundle
	f.do(f.ctx, http.MethodGet, b.next(), nil, &next)
	if len(next.Entry) != 3 || next.Entry[2].Resource.ID != ids[4] || next.next() != "" {
		t.Fatalf("second page: %d entries, next %q", len(next.Entry), next.next())
	}

	f.admin().Configure(f.ds, stack.FHIRKnobs{TypeHistory: stack.Ptr(false)})
	var oo fhirOutcome
	status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation/_history", nil, &oo)
	if status != http.StatusBadRequest || oo.ResourceType != "OperationOutcome" || oo.Issue[0].Code != "not-supported" {
		t.Fatalf("type history off: status %d outcome %+v", status, oo)
	}
	if h := f.history("/Observation/" + ids[0] + "/_history"); len(h.Entry) != 1 {
		t.Fatalf("instance history with type history off: %d entries", len(h.Entry))
	}
}

func TestFHIRForcedFailurePerDatastore(t *testing.T) {
	failing, healthy := newFHIRStack(t), newFHIRStack(t)
	admin := failing.admin()
	admin.Configure(failing.ds, stack.FHIRKnobs{FailStatus: 403, FailFor: stack.Ptr(30 * time.Second)})
	for _, req := range []struct{ method, path string }{{http.MethodGet, "/Observation?_count=1"}, {http.MethodPost, "/Observation"}, {http.MethodGet, "/Observation/_history"}} {
		var oo fhirOutcome
		var body any
		if req.method == http.MethodPost {
			body = observation(1)
		}
		status, _ := failing.do(failing.ctx, req.method, failing.base+req.path, body, &oo)
		if status != http.StatusForbidden || oo.ResourceType != "OperationOutcome" || oo.Issue[0].Code != "forbidden" {
			t.Fatalf("%s %s: status %d outcome %+v, want 403 forbidden", req.method, req.path, status, oo)
		}
	}
	healthy.create(1) // the other datastore is not affected
	if st := admin.Stats(failing.ds); st.Failed != 3 || st.Requests["search"] != 1 {
		t.Fatalf("stats: failed %d searches %d", st.Failed, st.Requests["search"])
	}
	admin.Set(failing.ds, stack.FHIRKnobs{FailStatus: 500, FailFor: stack.Ptr(30 * time.Second)})
	if status, _ := failing.do(failing.ctx, http.MethodGet, failing.base+"/Observation", nil, nil); status != http.StatusInternalServerError {
		t.Fatalf("failStatus 500: status %d", status)
	}
	admin.Set(failing.ds, stack.FHIRKnobs{FailFor: stack.Ptr(time.Duration(0))})
	if status, _ := failing.do(failing.ctx, http.MethodGet, failing.base+"/Observation", nil, nil); status != http.StatusOK {
		t.Fatalf("after failFor 0: status %d", status)
	}
}

func TestFHIRMalformedSearchBody(t *testing.T) {
	f := newFHIRStack(t)
	r := f.create(1)
	f.admin().Configure(f.ds, stack.FHIRKnobs{MalformedFor: stack.Ptr(30 * time.Second)})
	for _, path := range []string{"/Observation?_count=10", "/Observation/_history"} {
		status, h, body := f.raw(http.MethodGet, f.base+path, "", nil, nil)
		if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/fhir+json") || json.Valid(body) {
			t.Fatalf("%s: status %d, valid JSON %v; want 200 with a broken body", path, status, json.Valid(body))
		}
	}
	if status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation/"+r.ID, nil, nil); status != http.StatusOK {
		t.Fatalf("read while malformed: status %d", status)
	}
	if st := f.admin().Stats(f.ds); st.Malformed != 2 {
		t.Fatalf("malformed counter %d, want 2", st.Malformed)
	}
}

type bundleResponse struct {
	Type  string `json:"type"`
	Entry []struct {
		Response struct {
			Status   string       `json:"status"`
			Location string       `json:"location"`
			Etag     string       `json:"etag"`
			Outcome  *fhirOutcome `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
}

func jsonPatchBinary(t *testing.T, ops []map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"resourceType": "Binary", "contentType": "application/json-patch+json", "data": base64.StdEncoding.EncodeToString(b)}
}

func TestFHIRBatchBundle(t *testing.T) {
	f := newFHIRStack(t)
	f.admin().Configure(f.ds, stack.FHIRKnobs{VisibilityDelay: stack.Ptr(time.Hour)})
	existing, doomed, patched := f.create(1), f.create(2), f.create(3)
	upd := observation(10)
	upd["id"] = existing.ID
	batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		map[string]any{"resource": observation(20), "request": map[string]any{"method": "POST", "url": "Observation"}},
		map[string]any{"resource": map[string]any{"resourceType": "Patient"}, "request": map[string]any{"method": "POST", "url": "Patient"}},
		map[string]any{"resource": upd, "request": map[string]any{"method": "PUT", "url": "Observation/" + existing.ID}},
		map[string]any{"request": map[string]any{"method": "DELETE", "url": "Observation/" + doomed.ID}},
		map[string]any{"resource": jsonPatchBinary(t, []map[string]any{{"op": "replace", "path": "/valueInteger", "value": 30}}), "request": map[string]any{"method": "PATCH", "url": "Observation/" + patched.ID}},
		map[string]any{"resource": observation(40), "request": map[string]any{"method": "PUT", "url": "Observation/missing", "ifMatch": `W/"7"`}},
	}}
	var resp bundleResponse
	if status, _ := f.do(f.ctx, http.MethodPost, f.base+"/", batch, &resp); status != http.StatusOK || resp.Type != "batch-response" || len(resp.Entry) != 6 {
		t.Fatalf("batch: status %d type %q entries %d", status, resp.Type, len(resp.Entry))
	}
	want := []string{"201 Created", "201 Created", "200 OK", "204 No Content", "200 OK", "412"}
	for i, e := range resp.Entry {
		if e.Response.Status != want[i] {
			t.Fatalf("entry %d: status %q, want %q", i, e.Response.Status, want[i])
		}
	}
	if resp.Entry[5].Response.Outcome == nil || resp.Entry[2].Response.Etag != `W/"2"` || !strings.HasSuffix(resp.Entry[0].Response.Location, "/_history/1") {
		t.Fatalf("entry details: %+v", resp.Entry)
	}
	var p map[string]any
	f.do(f.ctx, http.MethodGet, f.base+"/Observation/"+patched.ID, nil, &p)
	if p["valueInteger"] != float64(30) || p["meta"].(map[string]any)["versionId"] != "2" {
		t.Fatalf("patched entry: value %v meta %v", p["valueInteger"], p["meta"])
	}
	// Bundle writes honour the visibility delay like single writes: search cannot see them yet.
	if b, _ := f.countBundle("_summary=count"); b.Total == nil || *b.Total != 0 {
		t.Fatalf("search during the visibility delay: total %v, want 0", b.Total)
	}
	if st := f.admin().Stats(f.ds); st.Requests["bundle"] != 1 || st.BundleEntries != 6 {
		t.Fatalf("stats: bundles %d entries %d", st.Requests["bundle"], st.BundleEntries)
	}
}

func TestFHIRTransactionBundle(t *testing.T) {
	f := newFHIRStack(t)
	patient := "urn:uuid:" + stack.RandomHex(8)
	obs := observation(1)
	obs["subject"] = map[string]any{"reference": patient}
	tx := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"fullUrl": patient, "resource": map[string]any{"resourceType": "Patient"}, "request": map[string]any{"method": "POST", "url": "Patient"}},
		map[string]any{"resource": obs, "request": map[string]any{"method": "POST", "url": "Observation"}},
	}}
	var resp bundleResponse
	if status, _ := f.do(f.ctx, http.MethodPost, f.base, tx, &resp); status != http.StatusOK || resp.Type != "transaction-response" || len(resp.Entry) != 2 {
		t.Fatalf("transaction: status %d type %q entries %d", status, resp.Type, len(resp.Entry))
	}
	patientRef := strings.TrimSuffix(resp.Entry[0].Response.Location, "/_history/1")
	var o map[string]any
	f.do(f.ctx, http.MethodGet, f.base+"/"+strings.TrimSuffix(resp.Entry[1].Response.Location, "/_history/1"), nil, &o)
	if o["subject"].(map[string]any)["reference"] != patientRef {
		t.Fatalf("the urn:uuid reference was not resolved to %s", patientRef)
	}
	// All or nothing: one entry that cannot succeed, and the other is not written.
	bad := map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{
		map[string]any{"resource": observation(2), "request": map[string]any{"method": "POST", "url": "Observation"}},
		map[string]any{"request": map[string]any{"method": "DELETE", "url": "Observation/never-existed"}},
	}}
	var oo fhirOutcome
	if status, _ := f.do(f.ctx, http.MethodPost, f.base, bad, &oo); status != http.StatusNotFound || oo.ResourceType != "OperationOutcome" {
		t.Fatalf("failing transaction: status %d", status)
	}
	if b, _ := f.countBundle("_summary=count"); b.Total == nil || *b.Total != 1 {
		t.Fatalf("after the failed transaction: %v Observations, want 1", b.Total)
	}
}

func TestFHIRPatchAndConditionalWrites(t *testing.T) {
	f := newFHIRStack(t)
	r := f.create(1)
	patch := func(ops string, header map[string]string) (int, fhirResource) {
		status, _, body := f.raw(http.MethodPatch, f.base+"/Observation/"+r.ID, "application/json-patch+json", []byte(ops), header)
		var out fhirResource
		json.Unmarshal(body, &out)
		return status, out
	}
	if status, out := patch(`[{"op":"replace","path":"/valueInteger","value":5},{"op":"add","path":"/status","value":"amended"}]`, nil); status != http.StatusOK || out.Meta.VersionID != "2" {
		t.Fatalf("patch: status %d version %q", status, out.Meta.VersionID)
	}
	if status, _ := patch(`[{"op":"test","path":"/valueInteger","value":1}]`, nil); status != http.StatusUnprocessableEntity {
		t.Fatalf("failing test op: status %d, want 422", status)
	}
	if status, _ := patch(`[{"op":"replace","path":"/status","value":"final"}]`, map[string]string{"If-Match": `W/"1"`}); status != http.StatusPreconditionFailed {
		t.Fatalf("stale If-Match: status %d, want 412", status)
	}
	if status, _, _ := f.raw(http.MethodPatch, f.base+"/Observation/"+r.ID, "application/fhir+json", []byte(`{}`), nil); status != http.StatusUnsupportedMediaType {
		t.Fatalf("FHIRPath patch: status %d, want 415", status)
	}
	hist := f.history("/Observation/" + r.ID + "/_history")
	if hist.Entry[0].Request.Method != "PATCH" {
		t.Fatalf("history method %q, want PATCH", hist.Entry[0].Request.Method)
	}

	// Conditional create and update on an identifier.
	withID := observation(7)
	withID["identifier"] = []any{map[string]any{"system": "urn:stacktest", "value": "abc"}}
	b, _ := json.Marshal(withID)
	hdr := map[string]string{"If-None-Exist": "identifier=urn:stacktest|abc"}
	if status, _, _ := f.raw(http.MethodPost, f.base+"/Observation", "application/fhir+json", b, hdr); status != http.StatusCreated {
		t.Fatalf("conditional create: status %d", status)
	}
	if status, _, _ := f.raw(http.MethodPost, f.base+"/Observation", "application/fhir+json", b, hdr); status != http.StatusOK {
		t.Fatalf("conditional create of an existing match: status %d, want 200", status)
	}
	status, _, body := f.raw(http.MethodPut, f.base+"/Observation?identifier="+url.QueryEscape("urn:stacktest|abc"), "application/fhir+json", b, nil)
	var up fhirResource
	json.Unmarshal(body, &up)
	if status != http.StatusOK || up.Meta.VersionID != "2" {
		t.Fatalf("conditional update: status %d version %q", status, up.Meta.VersionID)
	}
}

func TestFHIRSystemSearch(t *testing.T) {
	f := newFHIRStack(t)
	start := time.Now().UTC()
	for i := range 5 {
		f.create(i)
		var p fhirResource
		f.do(f.ctx, http.MethodPost, f.base+"/Patient", map[string]any{"resourceType": "Patient"}, &p)
	}
	q := "?_type=Observation,Patient&_lastUpdated=ge" + url.QueryEscape(fhirInstant(start.Add(-time.Second)))
	var oo fhirOutcome
	if status, _ := f.do(f.ctx, http.MethodGet, f.base+"/"+q, nil, &oo); status != http.StatusBadRequest {
		t.Fatalf("system search with the knob off: status %d, want 400", status)
	}
	f.admin().Configure(f.ds, stack.FHIRKnobs{SystemSearch: stack.Ptr(true)})
	var c fhirBundle
	f.do(f.ctx, http.MethodGet, f.base+"/"+q+"&_summary=count", nil, &c)
	if c.Total == nil || *c.Total != 10 || len(c.Entry) != 0 {
		t.Fatalf("system count: total %v entries %d", c.Total, len(c.Entry))
	}
	types := map[string]int{}
	seen := map[string]bool{}
	for next := f.base + "/" + q + "&_count=3"; next != ""; {
		var b fhirBundle
		f.do(f.ctx, http.MethodGet, next, nil, &b)
		for _, e := range b.Entry {
			types[e.Resource.ResourceType]++
			seen[e.Resource.ResourceType+"/"+e.Resource.ID] = true
		}
		next = b.next()
	}
	if types["Observation"] != 5 || types["Patient"] != 5 || len(seen) != 10 {
		t.Fatalf("system search pages: %v, %d distinct", types, len(seen))
	}
}

func TestFHIRImportAndDescribeFHIRImportJob(t *testing.T) {
	f := newFHIRStack(t)
	admin := f.admin()
	var resources []any
	for i := range 50 {
		o := observation(i)
		o["id"] = fmt.Sprintf("imp-%d", i)
		o["meta"] = map[string]any{"lastUpdated": "2020-01-01T00:00:00.000Z", "versionId": "9"}
		resources = append(resources, o)
	}
	job := admin.Import(f.ds, resources)
	if job.Imported != 50 || job.Errors != 0 || job.JobStatus != "COMPLETED" || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(job.JobID) {
		t.Fatalf("import: %+v", job)
	}
	// By default an import stamps the import time, between the job's SubmitTime and EndTime.
	var r fhirResource
	if status, _ := f.do(f.ctx, http.MethodGet, f.base+"/Observation/imp-7", nil, &r); status != http.StatusOK || r.Meta.VersionID != "1" {
		t.Fatalf("read imported: status %d version %q", status, r.Meta.VersionID)
	}
	if lu := parseInstant(t, r.Meta.LastUpdated); lu.Before(job.SubmitTime) || lu.After(job.EndTime) {
		t.Fatalf("imported lastUpdated %v outside the job's [%v, %v]", lu, job.SubmitTime, job.EndTime)
	}
	if b, _ := f.countBundle("_summary=count&_lastUpdated=ge" + url.QueryEscape(fhirInstant(job.SubmitTime))); b.Total == nil || *b.Total != 50 {
		t.Fatalf("imported resources found by a _lastUpdated search over the job: %v, want 50", b.Total)
	}

	// The real SDK client, pointed at the FHIR server as AWS_ENDPOINT_URL_HEALTHLAKE would point it.
	client := healthlake.NewFromConfig(stack.AWSConfig(t), func(o *healthlake.Options) { o.BaseEndpoint = aws.String(admin.Root()) })
	out, err := client.DescribeFHIRImportJob(f.ctx, &healthlake.DescribeFHIRImportJobInput{DatastoreId: aws.String(f.ds), JobId: aws.String(job.JobID)})
	if err != nil {
		t.Fatalf("DescribeFHIRImportJob: %v", err)
	}
	p := out.ImportJobProperties
	if aws.ToString(p.JobId) != job.JobID || aws.ToString(p.DatastoreId) != f.ds || p.JobStatus != types.JobStatusCompleted || p.InputDataConfig == nil {
		t.Fatalf("job properties: id %q datastore %q status %q", aws.ToString(p.JobId), aws.ToString(p.DatastoreId), p.JobStatus)
	}
	if !p.SubmitTime.Equal(job.SubmitTime) || p.EndTime == nil || !p.EndTime.Equal(job.EndTime) {
		t.Fatalf("SDK times %v–%v, import answered %v–%v", p.SubmitTime, p.EndTime, job.SubmitTime, job.EndTime)
	}
	_, err = client.DescribeFHIRImportJob(f.ctx, &healthlake.DescribeFHIRImportJobInput{DatastoreId: aws.String(f.ds), JobId: aws.String(stack.RandomHex(16))})
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("unknown job: %v, want ResourceNotFoundException", err)
	}

	// With importKeepsLastUpdated the source's lastUpdated stays (a _lastUpdated search over the
	// job's time range cannot find such resources); a re-import is a new version.
	admin.Configure(f.ds, stack.FHIRKnobs{ImportKeepsLastUpdated: stack.Ptr(true)})
	again := admin.Import(f.ds, resources[:3])
	f.do(f.ctx, http.MethodGet, f.base+"/Observation/imp-1", nil, &r)
	if r.Meta.LastUpdated != "2020-01-01T00:00:00.000Z" || r.Meta.VersionID != "2" {
		t.Fatalf("kept lastUpdated: %q version %q", r.Meta.LastUpdated, r.Meta.VersionID)
	}
	if again.Imported != 3 {
		t.Fatalf("re-import: %+v", again)
	}
	// The three re-imported resources left the first job's time range for 2020.
	if b, _ := f.countBundle("_summary=count&_lastUpdated=ge" + url.QueryEscape(fhirInstant(job.SubmitTime))); b.Total == nil || *b.Total != 47 {
		t.Fatalf("after a re-import keeping lastUpdated: %d in the first job's range, want 47", *b.Total)
	}
	hist := f.history("/Observation/_history?_since=2019-12-31T00:00:00Z&_count=100")
	if hist.Total == nil || *hist.Total != 53 {
		t.Fatalf("type history after both imports: %v entries, want 53", hist.Total)
	}
}

// TestFHIRBigStoreSearchIsIndexed loads 20,000 resources (by import: one request) and checks
// that window searches, counts and history reads cost about the window, not the store: on the
// previous server each of these requests matched every resource of the type.
func TestFHIRBigStoreSearchIsIndexed(t *testing.T) {
	f := newFHIRStack(t)
	const n = 20000
	resources := make([]any, n)
	for i := range resources {
		resources[i] = observation(i)
	}
	f.admin().Import(f.ds, resources)
	last := f.create(-1)
	window := "_lastUpdated=ge" + url.QueryEscape(last.Meta.LastUpdated)
	start := time.Now()
	const requests = 200
	for range requests / 2 {
		if b, _ := f.countBundle("_summary=count&" + window); b.Total == nil || *b.Total != 1 {
			t.Fatalf("count: %v", b.Total)
		}
		if b, _ := f.countBundle("_count=100&" + window); len(b.Entry) != 1 {
			t.Fatalf("search: %d entries", len(b.Entry))
		}
	}
	if h := f.history("/Observation/_history?_count=10&_since=" + url.QueryEscape(last.Meta.LastUpdated)); len(h.Entry) != 1 {
		t.Fatalf("history: %d entries", len(h.Entry))
	}
	// Generous for a shared 2-core machine: a scan of 20,000 resources per request took far longer.
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("%d window requests on a %d-resource store took %v", requests, n, d)
	} else {
		t.Logf("%d window requests on a %d-resource store: %v", requests, n, d)
	}
}

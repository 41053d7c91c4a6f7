package fhir

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// historyServer serves 30 entries, one per second from t0 (ids h0..h29, the delete of h5
// without content), three per page, in the given order of times, and ignores _since: the
// client has to stop by itself.
func historyServer(t *testing.T, order []int) *fakeFHIR {
	var f *fakeFHIR
	f = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path != "/datastore/"+testDS+"/r4/Observation/_history" {
			t.Errorf("path %s", r.URL.Path)
		}
		page := 0
		fmt.Sscan(r.URL.Query().Get("_cursor"), &page)
		var entries []map[string]any
		for _, i := range order[page*3 : min(page*3+3, len(order))] {
			at := t0.Add(time.Duration(i) * time.Second)
			id := fmt.Sprintf("h%d", i)
			if i == 5 {
				entries = append(entries, map[string]any{
					"request":  map[string]any{"method": "DELETE", "url": "Observation/" + id},
					"response": map[string]any{"status": "204", "lastModified": at.Format(time.RFC3339Nano)},
				})
				continue
			}
			entries = append(entries, map[string]any{"resource": obs(id, "1", at), "request": map[string]any{"method": "PUT", "url": "Observation/" + id}})
		}
		b := map[string]any{"resourceType": "Bundle", "type": "history", "entry": entries}
		if (page+1)*3 < len(order) {
			b["link"] = []any{map[string]any{"relation": "next", "url": fmt.Sprintf("%sObservation/_history?_cursor=%d", f.base(testDS), page+1)}}
		}
		writeJSON(w, 200, b)
	})
	return f
}

func seq(from, to, step int) []int {
	var out []int
	for i := from; i != to+step; i += step {
		out = append(out, i)
	}
	return out
}

func historyIDs(pages []HistoryPage) (ids []string, out int) {
	for _, p := range pages {
		for _, e := range p.Entries {
			ids = append(ids, e.ID)
		}
		out += p.OutOfRange
	}
	return ids, out
}

func TestHistoryRangeStopsEarly(t *testing.T) {
	from, to := t0.Add(4*time.Second), t0.Add(10*time.Second) // entries h4..h9
	for _, tc := range []struct {
		name         string
		order        []int
		assume       HistoryOrder
		wantRequests int
		wantIDs      []string
		wantOut      int
	}{
		// Newest first: pages (29,28,27) … (5,4,3): the page holding h3 is the last needed.
		{"newest first", seq(29, 0, -1), HistoryOrderDetect, 9, []string{"h9", "h8", "h7", "h6", "h5", "h4"}, 21},
		// Oldest first: (0,1,2) (3,4,5) (6,7,8) (9,10,11): h10 ends it.
		{"oldest first", seq(0, 29, 1), HistoryOrderDetect, 4, []string{"h4", "h5", "h6", "h7", "h8", "h9"}, 6},
		{"oldest first, assumed", seq(0, 29, 1), HistoryOrderOldestFirst, 4, []string{"h4", "h5", "h6", "h7", "h8", "h9"}, 6},
		// Assumed newest first but the entries rise: no early stop on a wrong guess.
		{"assumption contradicted", seq(0, 29, 1), HistoryOrderNewestFirst, 10, []string{"h4", "h5", "h6", "h7", "h8", "h9"}, 24},
		// No order at all: every page.
		{"unordered", append(seq(29, 15, -1), seq(0, 14, 1)...), HistoryOrderDetect, 10, []string{"h4", "h5", "h6", "h7", "h8", "h9"}, 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := historyServer(t, tc.order)
			c, _ := newTestClient(t, f, func(c *Config) { c.HistoryOrder = tc.assume })
			var pages []HistoryPage
			err := c.HistoryRange(t.Context(), testDS, "Observation", from, to, func(p HistoryPage) error {
				pages = append(pages, p)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			ids, out := historyIDs(pages)
			if f.count() != tc.wantRequests || len(pages) != tc.wantRequests || !slices.Equal(ids, tc.wantIDs) || out != tc.wantOut {
				t.Errorf("requests %d (want %d), pages %d, ids %v (want %v), out of range %d (want %d)",
					f.count(), tc.wantRequests, len(pages), ids, tc.wantIDs, out, tc.wantOut)
			}
			if q := f.urls[0].Query(); q.Get("_since") != "2024-05-01T12:00:04.000Z" || q.Get("_count") != "100" || len(q) != 2 {
				t.Errorf("first request %v", f.urls[0])
			}
			for _, p := range pages {
				for _, e := range p.Entries {
					if e.ID == "h5" && (!e.Deleted || e.Resource != nil) || e.ID != "h5" && (e.Resource == nil || e.Resource.ID != e.ID) {
						t.Errorf("entry %+v", e)
					}
				}
			}
		})
	}
}

func TestHistoryRangeVisitErrorAndArguments(t *testing.T) {
	f := historyServer(t, seq(0, 29, 1))
	c, _ := newTestClient(t, f, nil)
	stop := errors.New("stop")
	if err := c.HistoryRange(t.Context(), testDS, "Observation", t0, t0.Add(time.Minute), func(HistoryPage) error { return stop }); err != stop || f.count() != 1 {
		t.Errorf("visit error: %v, requests %d", err, f.count())
	}
	for _, r := range [][2]time.Time{{t0, t0}, {t0.Add(time.Second), t0}, {{}, t0}} {
		if err := c.HistoryRange(t.Context(), testDS, "Observation", r[0], r[1], nil); !errors.Is(err, ErrInvalidRange) {
			t.Errorf("range %v: %v", r, err)
		}
	}
	if err := c.HistoryRange(t.Context(), testDS, "observation", t0, t0.Add(time.Second), nil); !errors.Is(err, ErrInvalidResourceType) || f.count() != 1 {
		t.Errorf("bad type: %v, requests %d", err, f.count())
	}
}

func TestInstanceHistory(t *testing.T) {
	var f *fakeFHIR
	f = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path != "/datastore/"+testDS+"/r4/Observation/o-1/_history" {
			t.Errorf("path %s", r.URL.Path)
		}
		entries := []map[string]any{
			{"resource": obs("o-1", fmt.Sprint(4-n), t0.Add(time.Duration(4-n)*time.Second))},
			{"resource": obs("other", "1", t0)}, // not this resource: skipped
		}
		b := map[string]any{"resourceType": "Bundle", "type": "history", "entry": entries}
		if n < 3 {
			b["link"] = []any{map[string]any{"relation": "next", "url": fmt.Sprintf("%sObservation/o-1/_history?_cursor=%d", f.base(testDS), n)}}
		}
		writeJSON(w, 200, b)
	})
	c, rec := newTestClient(t, f, nil)
	var versions []string
	skipped := 0
	err := c.InstanceHistory(t.Context(), testDS, "Observation", "o-1", time.Time{}, func(p HistoryPage) error {
		for _, e := range p.Entries {
			versions = append(versions, e.VersionID)
		}
		skipped += p.Skipped
		return nil
	})
	if err != nil || !slices.Equal(versions, []string{"3", "2", "1"}) || skipped != 3 || f.count() != 3 {
		t.Fatalf("err %v, versions %v, skipped %d, requests %d", err, versions, skipped, f.count())
	}
	if len(rec.statuses) != 3 {
		t.Errorf("OnRequest calls %d", len(rec.statuses))
	}
	for _, id := range []string{"", "a/b", "../Patient/x", "a b", strings.Repeat("x", 65)} {
		err := c.InstanceHistory(t.Context(), testDS, "Observation", id, time.Time{}, nil)
		if !errors.Is(err, ErrInvalidResourceID) || (id != "" && strings.Contains(err.Error(), id)) {
			t.Errorf("id %q: %v", id, err)
		}
	}
	if f.count() != 3 {
		t.Errorf("invalid ids made requests")
	}
}

func TestVRead(t *testing.T) {
	raw := `{"resourceType":"Observation","id":"o-1","meta":{"versionId":"2","lastUpdated":"2024-05-01T12:00:02.5Z"},"status":"final"}`
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/datastore/" + testDS + "/r4/Observation/o-1/_history/2":
			w.Header().Set("Content-Type", "application/fhir+json")
			w.Write([]byte(raw))
		case "/datastore/" + testDS + "/r4/Observation/o-1/_history/3":
			writeJSON(w, 200, obs("o-1", "2", t0)) // the wrong version
		case "/datastore/" + testDS + "/r4/Observation/o-1/_history/4":
			writeJSON(w, 410, outcome("deleted", "x"))
		case "/datastore/" + testDS + "/r4/Observation/o-1/_history/5":
			writeJSON(w, 200, searchset(""))
		default:
			writeJSON(w, 404, outcome("not-found", "x"))
		}
	})
	c, _ := newTestClient(t, f, nil)
	r, err := c.VRead(t.Context(), testDS, "Observation", "o-1", "2")
	if err != nil || r.ID != "o-1" || r.VersionID != "2" || string(r.Raw) != raw || !r.LastUpdated.Equal(t0.Add(2500*time.Millisecond)) {
		t.Fatalf("vread: %+v, %v", r, err)
	}
	for version, want := range map[string]string{"3": "malformed-resource", "4": "gone", "5": "malformed-resource", "9": "not-found"} {
		_, err := c.VRead(t.Context(), testDS, "Observation", "o-1", version)
		if Reason(err) != want || !retry.IsPermanent(err) || strings.Contains(err.Error(), "o-1") {
			t.Errorf("version %s: %v (reason %q, want %q)", version, err, Reason(err), want)
		}
	}
	if _, err := c.VRead(t.Context(), testDS, "Observation", "o-1", "1/../../x"); !errors.Is(err, ErrInvalidResourceID) {
		t.Errorf("bad version: %v", err)
	}
}

// The same (id, version) twice on one page is handed over twice: dedup is the caller's.
func TestDuplicateOnOnePageKept(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, searchset("", match(obs("d", "1", t0)), match(obs("e", "1", t0)), match(obs("d", "1", t0))))
	})
	c, _ := newTestClient(t, f, nil)
	pages, err := collect(c, t.Context())
	if got := ids(pages); err != nil || !slices.Equal(got, []string{"d", "e", "d"}) {
		t.Errorf("ids %v, err %v", got, err)
	}
}

package fhir

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

func TestCountAnswered(t *testing.T) {
	for mode, want := range map[CountMode]map[string]string{
		"":                 {"_summary": "count"},
		CountSummary:       {"_summary": "count"},
		CountZero:          {"_count": "0"},
		CountTotalAccurate: {"_total": "accurate", "_count": "0"},
	} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
			q := r.URL.Query()
			if got := q["_lastUpdated"]; !slices.Equal(got, []string{"ge2024-05-01T12:00:00.000Z", "lt2024-05-01T12:00:01.000Z"}) {
				t.Errorf("%s: _lastUpdated %v", mode, got)
			}
			for k, v := range want {
				if q.Get(k) != v {
					t.Errorf("%s: %s = %q, want %q", mode, k, q.Get(k), v)
				}
			}
			if len(q) != len(want)+1 || r.URL.Path != "/datastore/"+testDS+"/r4/Observation" {
				t.Errorf("%s: request %s", mode, r.URL)
			}
			b := searchset("")
			b["total"] = 42
			writeJSON(w, 200, b)
		})
		c, _ := newTestClient(t, f, func(c *Config) { c.CountMode = mode })
		var ops []string
		c.cfg.OnRequest = func(op string, _ int, _ time.Duration) { ops = append(ops, op) }
		n, ok, err := c.Count(t.Context(), testDS, "Observation", t0, t0.Add(time.Second))
		if n != 42 || !ok || err != nil || f.count() != 1 || !slices.Equal(ops, []string{"count"}) {
			t.Errorf("%s: n %d, ok %v, err %v, requests %d, ops %v", mode, n, ok, err, f.count(), ops)
		}
	}
	// Zero is a count too.
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, map[string]any{"resourceType": "Bundle", "type": "searchset", "total": 0})
	})
	c, _ := newTestClient(t, f, nil)
	if n, ok, err := c.Count(t.Context(), testDS, "Observation", t0, t0.Add(time.Second)); n != 0 || !ok || err != nil {
		t.Errorf("zero: n %d, ok %v, err %v", n, ok, err)
	}
}

func TestCountIgnored(t *testing.T) {
	withTotal := func(b map[string]any, total any) map[string]any { b["total"] = total; return b }
	for name, answer := range map[string]func(w http.ResponseWriter){
		// A server that ignores _summary answers with a normal page, total or not.
		"entries with total": func(w http.ResponseWriter) {
			writeJSON(w, 200, withTotal(searchset("", match(obs("a", "1", t0))), 1))
		},
		"entries, no total": func(w http.ResponseWriter) { writeJSON(w, 200, searchset("", match(obs("a", "1", t0)))) },
		"no total":          func(w http.ResponseWriter) { writeJSON(w, 200, searchset("")) },
		"total not a count": func(w http.ResponseWriter) { writeJSON(w, 200, withTotal(searchset(""), "many")) },
		"negative total":    func(w http.ResponseWriter) { writeJSON(w, 200, withTotal(searchset(""), -1)) },
		"400 not-supported": func(w http.ResponseWriter) { writeJSON(w, 400, outcome("not-supported", "_summary")) },
		"501":               func(w http.ResponseWriter) { w.WriteHeader(501) },
	} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { answer(w) })
		c, _ := newTestClient(t, f, nil)
		n, ok, err := c.Count(t.Context(), testDS, "Observation", t0, t0.Add(time.Second))
		if ok || err != nil || n != 0 || f.count() != 1 {
			t.Errorf("%s: n %d, ok %v, err %v, requests %d; want a fallback (ok false, no error)", name, n, ok, err, f.count())
		}
	}
	// An OperationOutcome entry (search.mode outcome) next to the total is not a match.
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		b := searchset("", map[string]any{"resource": outcome("informational", "x"), "search": map[string]any{"mode": "outcome"}})
		b["total"] = 7
		writeJSON(w, 200, b)
	})
	c, _ := newTestClient(t, f, nil)
	if n, ok, err := c.Count(t.Context(), testDS, "Observation", t0, t0.Add(time.Second)); n != 7 || !ok || err != nil {
		t.Errorf("outcome entry: n %d, ok %v, err %v", n, ok, err)
	}
}

func TestCountErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		answer    func(w http.ResponseWriter, n int)
		want      error
		requests  int
		permanent bool
	}{
		"malformed": {func(w http.ResponseWriter, n int) {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","total":3`))
		}, ErrMalformedBundle, 1, true},
		"not a bundle": {func(w http.ResponseWriter, n int) { writeJSON(w, 200, outcome("informational", "x")) }, ErrMalformedBundle, 1, true},
		"forbidden":    {func(w http.ResponseWriter, n int) { writeJSON(w, 403, outcome("forbidden", "x")) }, ErrForbidden, 1, true},
		"throttled":    {func(w http.ResponseWriter, n int) { writeJSON(w, 429, outcome("throttled", "x")) }, ErrThrottled, 2, false},
	} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { tc.answer(w, n) })
		c, _ := newTestClient(t, f, func(c *Config) { c.MaxAttempts = 2 })
		_, ok, err := c.Count(t.Context(), testDS, "Observation", t0, t0.Add(time.Second))
		if ok || !errors.Is(err, tc.want) || retry.IsPermanent(err) != tc.permanent || f.count() != tc.requests {
			t.Errorf("%s: ok %v, err %v, requests %d", name, ok, err, f.count())
		}
	}
	// Retried like a search page, honouring Retry-After, then answered.
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(429)
			return
		}
		writeJSON(w, 200, map[string]any{"resourceType": "Bundle", "type": "searchset", "total": 5})
	})
	c, rec := newTestClient(t, f, nil)
	if n, ok, err := c.Count(t.Context(), testDS, "Observation", t0, t0.Add(time.Second)); n != 5 || !ok || err != nil || !slices.Equal(rec.clock.Waits(), []time.Duration{2 * time.Second}) {
		t.Errorf("after 429: n %d, ok %v, err %v, sleeps %v", n, ok, err, rec.clock.Waits())
	}
	// Invalid arguments make no request.
	if _, _, err := c.Count(t.Context(), "../x", "Observation", t0, t0.Add(time.Second)); !errors.Is(err, ErrInvalidDatastoreID) {
		t.Errorf("bad datastore: %v", err)
	}
	if _, _, err := c.Count(t.Context(), testDS, "Observation", t0, t0); !errors.Is(err, ErrInvalidRange) || f.count() != 2 {
		t.Errorf("empty range: %v, requests %d", err, f.count())
	}
}

func TestConfigCountModeAndOrderValidated(t *testing.T) {
	const ep = "http://h/datastore/{datastoreId}/r4/"
	if err := (Config{Endpoint: ep, CountMode: "estimate"}).Validate(); err == nil {
		t.Error("unknown count mode accepted")
	}
	if err := (Config{Endpoint: ep, HistoryOrder: "sideways"}).Validate(); err == nil {
		t.Error("unknown history order accepted")
	}
}

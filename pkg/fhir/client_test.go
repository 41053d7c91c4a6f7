package fhir

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

func TestSearchQueryParameters(t *testing.T) {
	// The raw bytes of a resource must reach the caller unchanged, odd spacing included.
	raw := `{ "resourceType":"Observation", "id":"a1",  "meta":{"versionId":"3","lastUpdated":"2024-05-01T12:00:00.250Z"}, "status":"final" }`
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if want := "/datastore/" + testDS + "/r4/Observation"; r.URL.Path != want {
			t.Errorf("path = %q, want %q", r.URL.Path, want)
		}
		q := r.URL.Query()
		// from rounds down and to rounds up to the millisecond, so nothing in [from, to) is lost.
		if got, want := q["_lastUpdated"], []string{"ge2024-05-01T12:00:00.000Z", "lt2024-05-01T12:00:01.501Z"}; !slices.Equal(got, want) {
			t.Errorf("_lastUpdated = %q, want %q", got, want)
		}
		if q.Get("_count") != "100" || q.Get("_sort") != "_lastUpdated" || len(q) != 3 {
			t.Errorf("query = %v", q)
		}
		// Properly encoded: the colons of the instants are escaped.
		if !strings.Contains(r.URL.RawQuery, "ge2024-05-01T12%3A00%3A00.000Z") {
			t.Errorf("raw query %q is not form-encoded", r.URL.RawQuery)
		}
		if r.Method != http.MethodGet || r.Header.Get("Accept") != "application/fhir+json" {
			t.Errorf("method %s, Accept %q", r.Method, r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + raw + `,"search":{"mode":"match"}}]}`))
	})
	c, _ := newTestClient(t, f, nil)
	// from and to in another zone: the query must be in UTC.
	zone := time.FixedZone("X", 2*3600)
	var pages []Page
	from, to := t0.Add(999*time.Microsecond).In(zone), t0.Add(1500*time.Millisecond+time.Microsecond).In(zone)
	err := c.Search(t.Context(), testDS, "Observation", from, to, func(p Page) error {
		pages = append(pages, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 || pages[0].Number != 1 || len(pages[0].Resources) != 1 || pages[0].Skipped != 0 {
		t.Fatalf("pages = %+v", pages)
	}
	r := pages[0].Resources[0]
	wantTime := time.Date(2024, 5, 1, 12, 0, 0, 250e6, time.UTC)
	if r.ResourceType != "Observation" || r.ID != "a1" || r.VersionID != "3" || !r.LastUpdated.Equal(wantTime) {
		t.Errorf("resource = %+v", r)
	}
	if string(r.Raw) != raw {
		t.Errorf("Raw = %s, want the bytes as sent", r.Raw)
	}
}

func TestSearchFollowsNextLinks(t *testing.T) {
	var f *fakeFHIR
	f = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		next := ""
		if n < 3 {
			// Keeps the query and adds a cursor, like HealthLake's and the local server's links.
			u := *r.URL
			q := u.Query()
			q.Set("_cursor", string(rune('a'+n)))
			u.RawQuery = q.Encode()
			next = f.URL + u.String()
		}
		writeJSON(w, 200, searchset(next, match(obs("p"+string(rune('0'+n)), "1", t0))))
	})
	c, _ := newTestClient(t, f, nil)
	pages, err := collect(c, t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(pages); !slices.Equal(got, []string{"p1", "p2", "p3"}) {
		t.Errorf("ids = %v", got)
	}
	for i, p := range pages {
		if p.Number != i+1 {
			t.Errorf("page %d has Number %d", i, p.Number)
		}
	}
	if f.urls[2].Query().Get("_cursor") != "c" || f.urls[2].Query().Get("_count") != "100" {
		t.Errorf("third request %v", f.urls[2])
	}
}

func TestSearchRelativeNextLink(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		next := ""
		if n == 1 {
			next = "Observation?_cursor=x" // relative to the base path
		}
		writeJSON(w, 200, searchset(next, match(obs("r"+string(rune('0'+n)), "1", t0))))
	})
	c, _ := newTestClient(t, f, nil)
	pages, err := collect(c, t.Context())
	if err != nil || len(pages) != 2 {
		t.Fatalf("pages %d, err %v", len(pages), err)
	}
	if got := f.urls[1].Path + "?" + f.urls[1].RawQuery; got != "/datastore/"+testDS+"/r4/Observation?_cursor=x" {
		t.Errorf("second request %s", got)
	}
}

func TestRetry429HonoursRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 1:
			w.Header().Set("Retry-After", "3") // longer than MaxBackoff (1s): still honoured
			writeJSON(w, 429, outcome("throttled", "Rate exceeded"))
		case 2:
			w.Header().Set("Retry-After", now.Add(7*time.Second).Format(http.TimeFormat))
			w.WriteHeader(429)
		case 3:
			w.Header().Set("Retry-After", "0") // shorter than the backoff: the backoff wins
			w.WriteHeader(429)
		default:
			writeJSON(w, 200, searchset("", match(obs("x", "1", t0))))
		}
	})
	c, rec := newTestClient(t, f, nil)
	c.now = func() time.Time { return now }
	pages, err := collect(c, t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(pages); !slices.Equal(got, []string{"x"}) {
		t.Errorf("ids = %v", got)
	}
	// Backoff with Rand 0.5: attempt 3 → 0.5 * 100ms * 4 = 200ms.
	if want := []time.Duration{3 * time.Second, 7 * time.Second, 200 * time.Millisecond}; !slices.Equal(rec.clock.Waits(), want) {
		t.Errorf("sleeps = %v, want %v", rec.clock.Waits(), want)
	}
	if want := []int{429, 429, 429, 200}; !slices.Equal(rec.statuses, want) {
		t.Errorf("OnRequest statuses = %v, want %v", rec.statuses, want)
	}
}

func TestRetry503ThenSuccess(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.WriteHeader(503)
			return
		}
		writeJSON(w, 200, searchset("", match(obs("x", "1", t0))))
	})
	c, rec := newTestClient(t, f, nil)
	if _, err := collect(c, t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{50 * time.Millisecond}; !slices.Equal(rec.clock.Waits(), want) || f.count() != 2 {
		t.Errorf("sleeps = %v (want %v), requests %d", rec.clock.Waits(), want, f.count())
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	statuses := []int{500, 502, 503, 504, 503, 503}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.WriteHeader(statuses[n-1])
	})
	c, rec := newTestClient(t, f, func(c *Config) { c.MaxAttempts = 6; c.MaxBackoff = 1200 * time.Millisecond })
	_, err := collect(c, t.Context())
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != 503 || !se.Retryable || se.Attempts != 6 || se.Op != "search" {
		t.Fatalf("err = %#v", err)
	}
	if retry.IsPermanent(err) {
		t.Error("exhausted retries of a 503 must not be permanent: the window can be retried later")
	}
	// Exponential with full jitter at 0.5, capped at MaxBackoff 1.2s before the jitter.
	want := []time.Duration{50, 100, 200, 400, 600}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(rec.clock.Waits(), want) {
		t.Errorf("sleeps = %v, want %v", rec.clock.Waits(), want)
	}
}

func TestBadRequestIsPermanent(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 410, 422} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
			writeJSON(w, code, outcome("invalid", "Patient John Smith born 1970-01-01"))
		})
		c, rec := newTestClient(t, f, nil)
		_, err := collect(c, t.Context())
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != code || se.Retryable || !slices.Equal(se.IssueCodes, []string{"invalid"}) {
			t.Fatalf("%d: err = %#v", code, err)
		}
		if !retry.IsPermanent(err) || f.count() != 1 || len(rec.clock.Waits()) != 0 {
			t.Errorf("%d: permanent %v, requests %d, sleeps %v", code, retry.IsPermanent(err), f.count(), rec.clock.Waits())
		}
		if strings.Contains(err.Error(), "John") || strings.Contains(err.Error(), "1970") {
			t.Errorf("%d: error leaks the body: %v", code, err)
		}
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	t.Run("injected sleep", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(503) })
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		c, _ := newTestClient(t, f, func(c *Config) {
			c.Clock.(*clocktest.Fake).OnWait(func(time.Duration) { cancel() })
		})
		_, err := collect(c, ctx)
		if !errors.Is(err, context.Canceled) || retry.IsPermanent(err) || f.count() != 1 {
			t.Fatalf("err %v, permanent %v, requests %d", err, retry.IsPermanent(err), f.count())
		}
	})
	t.Run("real sleep", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(429)
		})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		c, _ := newTestClient(t, f, func(c *Config) {
			c.Clock = nil // the default, which waits for real
			c.OnRequest = func(string, int, time.Duration) { time.AfterFunc(20*time.Millisecond, cancel) }
		})
		start := time.Now()
		_, err := collect(c, ctx)
		if !errors.Is(err, context.Canceled) || f.count() != 1 || time.Since(start) > 5*time.Second {
			t.Fatalf("err %v, requests %d, took %v", err, f.count(), time.Since(start))
		}
	})
	t.Run("retry-after past the deadline", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(429)
		})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		c, rec := newTestClient(t, f, nil)
		_, err := collect(c, ctx)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != 429 || len(rec.clock.Waits()) != 0 || f.count() != 1 {
			t.Fatalf("err %v, sleeps %v, requests %d", err, rec.clock.Waits(), f.count())
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(503) })
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		c, _ := newTestClient(t, f, nil)
		if _, err := collect(c, ctx); !errors.Is(err, context.Canceled) || f.count() != 0 {
			t.Fatalf("err %v, requests %d", err, f.count())
		}
	})
}

func TestNetworkErrorRetried(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close() // no response at all
			return
		}
		writeJSON(w, 200, searchset("", match(obs("x", "1", t0))))
	})
	c, rec := newTestClient(t, f, nil)
	pages, err := collect(c, t.Context())
	if err != nil || len(ids(pages)) != 1 {
		t.Fatalf("pages %v, err %v", pages, err)
	}
	if want := []int{0, 200}; !slices.Equal(rec.statuses, want) {
		t.Errorf("statuses = %v, want %v", rec.statuses, want)
	}
}

func TestNetworkErrorHidesURL(t *testing.T) {
	// A closed port: every attempt fails to connect.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := New(Config{
		Endpoint:    "http://" + addr + "/datastore/{datastoreId}/r4/",
		MaxAttempts: 2,
		Clock:       clocktest.NewAuto(time.Now()),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Search(t.Context(), testDS, "Observation", t0, t0.Add(time.Second), func(Page) error { return nil })
	if err == nil || retry.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "_lastUpdated") || strings.Contains(err.Error(), testDS) {
		t.Errorf("error quotes the URL: %v", err)
	}
	if !strings.Contains(err.Error(), "after 2 attempts") {
		t.Errorf("error %q does not say how often it tried", err)
	}
}

func TestNextLinkToOtherHostNeverRequested(t *testing.T) {
	other := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, searchset(""))
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(other.URL, "http://"))
	for name, next := range map[string]string{
		"other server":            other.base(testDS) + "Observation?_cursor=2",
		"localhost, same port":    "http://localhost:" + port + "/datastore/" + testDS + "/r4/Observation",
		"protocol-relative other": "//" + strings.TrimPrefix(other.URL, "http://") + "/datastore/" + testDS + "/r4/Observation",
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 200, searchset(next, match(obs("a", "1", t0))))
			})
			c, _ := newTestClient(t, f, nil)
			pages, err := collect(c, t.Context())
			if !errors.Is(err, ErrForeignNextLink) || !retry.IsPermanent(err) {
				t.Fatalf("err = %v, want ErrForeignNextLink", err)
			}
			if strings.Contains(err.Error(), "_cursor") || strings.Contains(err.Error(), "localhost") {
				t.Errorf("error quotes the link: %v", err)
			}
			if len(pages) != 1 || f.count() != 1 {
				t.Errorf("pages %d, requests %d; want the first page only", len(pages), f.count())
			}
		})
	}
	if other.count() != 0 {
		t.Fatalf("the other server got %d requests", other.count())
	}
}

func TestNextLinkOutsideBasePathRejected(t *testing.T) {
	const otherDS = "fedcba9876543210fedcba9876543210"
	var f *fakeFHIR
	var next string
	f = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, searchset(next, match(obs("a", "1", t0))))
	})
	host := strings.TrimPrefix(f.URL, "http://")
	for name, link := range map[string]string{
		"other datastore": f.base(otherDS) + "Observation?_cursor=2",
		"other version":   f.URL + "/datastore/" + testDS + "/r5/Observation",
		"above base":      f.URL + "/datastore/" + testDS + "/Observation",
		"dot segments":    f.base(testDS) + "../../" + otherDS + "/r4/Observation",
		"escaped slash":   f.base(testDS) + "..%2F..%2F" + otherDS + "%2Fr4%2FObservation",
		"double slash":    f.base(testDS) + "/Observation",
		"https":           "https://" + host + "/datastore/" + testDS + "/r4/Observation",
		"user info":       "http://u:p@" + host + "/datastore/" + testDS + "/r4/Observation",
		"relative above":  "../Observation",
		"not a URL":       "http://[::1",
	} {
		t.Run(name, func(t *testing.T) {
			next = link
			before := f.count()
			c, _ := newTestClient(t, f, nil)
			_, err := collect(c, t.Context())
			if !errors.Is(err, ErrForeignNextLink) || !retry.IsPermanent(err) {
				t.Fatalf("err = %v, want ErrForeignNextLink", err)
			}
			if got := f.count() - before; got != 1 {
				t.Errorf("%d requests, want 1", got)
			}
		})
	}
}

func TestNextLinkLoop(t *testing.T) {
	var f *fakeFHIR
	f = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		// Page 2 points at itself.
		writeJSON(w, 200, searchset(f.base(testDS)+"Observation?_cursor=same", match(obs("a", "1", t0))))
	})
	c, _ := newTestClient(t, f, nil)
	pages, err := collect(c, t.Context())
	if !errors.Is(err, ErrNextLinkLoop) || !retry.IsPermanent(err) || f.count() != 2 || len(pages) != 2 {
		t.Fatalf("err %v, requests %d, pages %d", err, f.count(), len(pages))
	}
}

func TestTooManyPages(t *testing.T) {
	var f *fakeFHIR
	f = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, searchset(f.base(testDS)+"Observation?_cursor="+string(rune('a'+n))))
	})
	c, _ := newTestClient(t, f, func(c *Config) { c.MaxPages = 3 })
	if _, err := collect(c, t.Context()); !errors.Is(err, ErrTooManyPages) || f.count() != 3 {
		t.Fatalf("err %v, requests %d", err, f.count())
	}
}

func TestSkippedEntriesCounted(t *testing.T) {
	good := obs("good", "1", t0)
	noID := obs("", "1", t0)
	delete(noID, "id")
	noVersion := obs("nv", "1", t0)
	noVersion["meta"] = map[string]any{"lastUpdated": t0.Format(time.RFC3339Nano)}
	noTime := obs("nt", "1", t0)
	noTime["meta"] = map[string]any{"versionId": "1"}
	badTime := obs("bt", "1", t0)
	badTime["meta"] = map[string]any{"versionId": "1", "lastUpdated": "yesterday"}
	badID := obs("bad/../id", "1", t0)
	patient := obs("pat", "1", t0)
	patient["resourceType"] = "Patient"
	entries := []map[string]any{
		match(good), match(noID), match(noVersion), match(noTime), match(badTime), match(badID), match(patient),
		{"resource": outcome("informational", "some warning"), "search": map[string]any{"mode": "outcome"}},
		{"resource": obs("inc", "1", t0), "search": map[string]any{"mode": "include"}},
		{"fullUrl": "urn:uuid:nothing"},
		{"resource": obs("nomode", "2", t0)}, // search.mode is optional: a match
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, searchset("", entries...))
	})
	c, _ := newTestClient(t, f, nil)
	pages, err := collect(c, t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(pages); !slices.Equal(got, []string{"good", "nomode"}) || pages[0].Skipped != 9 {
		t.Errorf("ids %v, skipped %d; want [good nomode], 9", got, pages[0].Skipped)
	}
}

func TestInvalidTargetMakesNoRequest(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, searchset("")) })
	c, _ := newTestClient(t, f, nil)
	visit := func(Page) error { t.Error("visit called"); return nil }
	hvisit := func(HistoryPage) error { t.Error("visit called"); return nil }
	for _, ds := range []string{"", "0123456789ABCDEF0123456789ABCDEF", testDS[:31], testDS + "0", "../../" + testDS[6:], testDS[:30] + "/x", testDS[:31] + "g"} {
		if err := c.Search(t.Context(), ds, "Observation", t0, t0.Add(time.Second), visit); !errors.Is(err, ErrInvalidDatastoreID) || !retry.IsPermanent(err) {
			t.Errorf("Search datastore %q: %v", ds, err)
		}
		if err := c.History(t.Context(), ds, "Observation", t0, hvisit); !errors.Is(err, ErrInvalidDatastoreID) {
			t.Errorf("History datastore %q: %v", ds, err)
		}
	}
	for _, rt := range []string{"", "observation", "O", "Observation/../Patient", "Observation?x=1", "Obs%2F", "Observation_history", strings.Repeat("A", 65), "Ob servation"} {
		if err := c.Search(t.Context(), testDS, rt, t0, t0.Add(time.Second), visit); !errors.Is(err, ErrInvalidResourceType) || !retry.IsPermanent(err) {
			t.Errorf("Search type %q: %v", rt, err)
		}
		if err := c.History(t.Context(), testDS, rt, t0, hvisit); !errors.Is(err, ErrInvalidResourceType) {
			t.Errorf("History type %q: %v", rt, err)
		}
	}
	for _, r := range [][2]time.Time{{t0, t0}, {t0.Add(time.Second), t0}, {{}, t0}, {t0, {}}} {
		if err := c.Search(t.Context(), testDS, "Observation", r[0], r[1], visit); !errors.Is(err, ErrInvalidRange) {
			t.Errorf("range %v: %v", r, err)
		}
	}
	if err := c.History(t.Context(), testDS, "Observation", time.Time{}, hvisit); !errors.Is(err, ErrInvalidRange) {
		t.Errorf("History zero since: %v", err)
	}
	if f.count() != 0 {
		t.Fatalf("%d requests made", f.count())
	}
}

func TestResponseChecks(t *testing.T) {
	big := strings.Repeat("x", 4000)
	cases := map[string]struct {
		handle func(w http.ResponseWriter)
		want   error
	}{
		"too large with length": {func(w http.ResponseWriter) {
			writeJSON(w, 200, searchset("", match(map[string]any{"resourceType": "Observation", "note": big})))
		}, ErrPageTooLarge},
		"too large chunked": {func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[`))
			w.(http.Flusher).Flush()
			w.Write([]byte(big))
		}, ErrPageTooLarge},
		"html": {func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html>login</html>"))
		}, ErrNotJSON},
		"no content type": {func(w http.ResponseWriter) {
			w.Header()["Content-Type"] = nil
			w.Write([]byte(`{}`))
		}, ErrNotJSON},
		"not a bundle": {func(w http.ResponseWriter) { writeJSON(w, 200, outcome("informational", "x")) }, ErrMalformedBundle},
		"history bundle": {func(w http.ResponseWriter) {
			writeJSON(w, 200, map[string]any{"resourceType": "Bundle", "type": "history"})
		}, ErrMalformedBundle},
		"broken JSON": {func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"name":"Jane Doe"`))
		}, ErrMalformedBundle},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { tc.handle(w) })
			c, _ := newTestClient(t, f, func(c *Config) { c.MaxPageBytes = 2000 })
			_, err := collect(c, t.Context())
			if !errors.Is(err, tc.want) || !retry.IsPermanent(err) || f.count() != 1 {
				t.Fatalf("err %v (want %v), requests %d", err, tc.want, f.count())
			}
			if strings.Contains(err.Error(), "Jane") {
				t.Errorf("error leaks the body: %v", err)
			}
		})
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	other := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, searchset("")) })
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Redirect(w, r, other.base(testDS)+"Observation", http.StatusFound)
	})
	c, _ := newTestClient(t, f, nil)
	_, err := collect(c, t.Context())
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusFound || !retry.IsPermanent(err) || other.count() != 0 {
		t.Fatalf("err %v, other server requests %d", err, other.count())
	}
	if f.Client().CheckRedirect != nil {
		t.Error("New changed the caller's http.Client")
	}
}

func TestVisitErrorReturnedUnchanged(t *testing.T) {
	var f *fakeFHIR
	f = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, searchset(f.base(testDS)+"Observation?_cursor=next", match(obs("a", "1", t0))))
	})
	c, _ := newTestClient(t, f, nil)
	stop := errors.New("stop")
	err := c.Search(t.Context(), testDS, "Observation", t0, t0.Add(time.Second), func(Page) error { return stop })
	if err != stop || f.count() != 1 {
		t.Fatalf("err %v, requests %d", err, f.count())
	}
}

func TestHistory(t *testing.T) {
	// The local server's shapes: a delete has request.method DELETE, no resource, and
	// etag/lastModified in response; HealthLake-style 410 entries without a method also count.
	updated := obs("o1", "2", t0.Add(2*time.Second))
	entries := []map[string]any{
		{
			"fullUrl":  "http://x/Observation/o2",
			"request":  map[string]any{"method": "DELETE", "url": "Observation/o2"},
			"response": map[string]any{"status": "204 No Content", "etag": `W/"5"`, "lastModified": "2024-05-01T12:00:03.123Z"},
		},
		{"resource": updated, "request": map[string]any{"method": "PUT", "url": "Observation/o1"}, "response": map[string]any{"status": "200 OK"}},
		{
			"request":  map[string]any{"method": "GET", "url": "Observation/o3"},
			"response": map[string]any{"status": "410 Gone", "lastModified": "2024-05-01T12:00:01Z"},
		},
		{"request": map[string]any{"method": "DELETE", "url": "Patient/p1"}, "response": map[string]any{"lastModified": "2024-05-01T12:00:01Z"}},
		{"request": map[string]any{"method": "DELETE", "url": "Observation/o4"}, "response": map[string]any{}},             // no time
		{"request": map[string]any{"method": "PUT", "url": "Observation/o5"}, "response": map[string]any{"status": "200"}}, // no content
	}
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if want := "/datastore/" + testDS + "/r4/Observation/_history"; r.URL.Path != want {
			t.Errorf("path %q, want %q", r.URL.Path, want)
		}
		if q := r.URL.Query(); q.Get("_since") != "2024-05-01T12:00:00.000Z" || q.Get("_count") != "100" || len(q) != 2 {
			t.Errorf("query %v", q)
		}
		writeJSON(w, 200, map[string]any{"resourceType": "Bundle", "type": "history", "entry": entries})
	})
	c, _ := newTestClient(t, f, nil)
	var pages []HistoryPage
	if err := c.History(t.Context(), testDS, "Observation", t0, func(p HistoryPage) error {
		pages = append(pages, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 || len(pages[0].Entries) != 3 || pages[0].Skipped != 3 {
		t.Fatalf("pages %+v", pages)
	}
	e := pages[0].Entries
	if e[0].ID != "o2" || e[0].VersionID != "5" || !e[0].Deleted || e[0].Resource != nil ||
		!e[0].LastUpdated.Equal(time.Date(2024, 5, 1, 12, 0, 3, 123e6, time.UTC)) {
		t.Errorf("delete entry %+v", e[0])
	}
	if e[1].ID != "o1" || e[1].VersionID != "2" || e[1].Deleted || e[1].Resource == nil || e[1].Resource.ID != "o1" {
		t.Errorf("update entry %+v", e[1])
	}
	if e[2].ID != "o3" || !e[2].Deleted || e[2].VersionID != "" {
		t.Errorf("410 entry %+v", e[2])
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                  0,
		"5":                 5 * time.Second,
		" 2 ":               2 * time.Second,
		"-1":                0,
		"1.5":               0,
		"99999999999999999": time.Hour,
		now.Add(30 * time.Second).Format(http.TimeFormat): 30 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
		now.Add(48 * time.Hour).Format(http.TimeFormat):   time.Hour,
		"soon": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestIsPermanent(t *testing.T) {
	for err, want := range map[error]bool{
		nil:              false,
		context.Canceled: false,
		errors.New("x"):  false,
		&StatusError{StatusCode: 429, Retryable: true}: false,
		&StatusError{StatusCode: 400}:                  true,
		permanent(ErrForeignNextLink):                  true,
	} {
		if got := retry.IsPermanent(err); got != want {
			t.Errorf("retry.IsPermanent(%v) = %v", err, got)
		}
	}
	wrapped := errors.Join(errors.New("window 3"), permanent(ErrNextLinkLoop))
	if !retry.IsPermanent(wrapped) || !errors.Is(wrapped, ErrNextLinkLoop) {
		t.Error("wrapped permanent error not recognised")
	}
}

package fhir

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// Every HTTP answer a search can get maps to one class, a stable reason, and the right retry
// behaviour.
func TestStatusClasses(t *testing.T) {
	for _, tc := range []struct {
		status    int
		issue     string
		class     error
		reason    string
		permanent bool
	}{
		{400, "invalid", ErrBadRequest, "bad-request", true},
		{400, "not-supported", ErrUnsupported, "unsupported", true},
		{401, "login", ErrUnauthorized, "unauthorized", true},
		{403, "forbidden", ErrForbidden, "forbidden", true},
		{404, "not-found", ErrNotFound, "not-found", true},
		{404, "not-supported", ErrUnsupported, "unsupported", true},
		{405, "", ErrUnsupported, "unsupported", true},
		{410, "deleted", ErrGone, "gone", true},
		{413, "too-costly", ErrBadRequest, "bad-request", true},
		{422, "processing", ErrBadRequest, "bad-request", true},
		{501, "", ErrUnsupported, "unsupported", true},
		{505, "", ErrUnexpected, "unexpected-status", true},
		{302, "", ErrUnexpected, "unexpected-status", true},
		{429, "throttled", ErrThrottled, "throttled", false},
		{500, "exception", ErrServerError, "server-error", false},
		{502, "", ErrServerError, "server-error", false},
		{503, "transient", ErrServerError, "server-error", false},
		{504, "timeout", ErrServerError, "server-error", false},
	} {
		t.Run(fmt.Sprint(tc.status, tc.issue), func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if tc.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				if tc.issue == "" {
					w.WriteHeader(tc.status)
					return
				}
				writeJSON(w, tc.status, outcome(tc.issue, "Patient Jane Roe, MRN 12345"))
			})
			c, _ := newTestClient(t, f, func(c *Config) { c.MaxAttempts = 3 })
			_, err := collect(c, t.Context())
			if !errors.Is(err, tc.class) || Reason(err) != tc.reason || retry.IsPermanent(err) != tc.permanent {
				t.Fatalf("err %v: class %v, reason %q (want %q), permanent %v", err, errors.Is(err, tc.class), Reason(err), tc.reason, retry.IsPermanent(err))
			}
			wantRequests := 1
			if !tc.permanent {
				wantRequests = 3
			}
			if f.count() != wantRequests {
				t.Errorf("%d requests, want %d", f.count(), wantRequests)
			}
			if strings.Contains(err.Error(), "Jane") || strings.Contains(err.Error(), "12345") {
				t.Errorf("error leaks the body: %v", err)
			}
		})
	}
}

func TestHistoryUnsupportedIsItsOwnClass(t *testing.T) {
	for _, tc := range []struct {
		status int
		issue  string
		want   string
	}{
		{404, "not-supported", "history-unsupported"},
		{400, "not-supported", "history-unsupported"},
		{405, "", "history-unsupported"},
		{501, "", "history-unsupported"},
		{404, "not-found", "not-found"}, // a datastore that does not exist is not "unsupported"
		{403, "forbidden", "forbidden"},
	} {
		f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if tc.issue == "" {
				w.WriteHeader(tc.status)
				return
			}
			writeJSON(w, tc.status, outcome(tc.issue, "x"))
		})
		c, _ := newTestClient(t, f, nil)
		err := c.HistoryRange(t.Context(), testDS, "Observation", t0, t0.Add(time.Second), func(HistoryPage) error { return nil })
		if Reason(err) != tc.want || errors.Is(err, ErrHistoryUnsupported) != (tc.want == "history-unsupported") || !retry.IsPermanent(err) {
			t.Errorf("%d %s: err %v, reason %q, want %q", tc.status, tc.issue, err, Reason(err), tc.want)
		}
		if tc.want == "history-unsupported" && !errors.Is(err, ErrUnsupported) {
			t.Errorf("%d %s: ErrHistoryUnsupported is not also ErrUnsupported", tc.status, tc.issue)
		}
		// The same answer to a search is "unsupported", not history's own class.
		if _, err := collect(c, t.Context()); errors.Is(err, ErrHistoryUnsupported) {
			t.Errorf("%d %s: a search error classed as history-unsupported", tc.status, tc.issue)
		}
	}
}

func TestReasonOfClientSideErrors(t *testing.T) {
	var f *fakeFHIR
	f = newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, searchset(f.base(testDS)+"Observation?_cursor="+fmt.Sprint(n%2)))
	})
	loop, _ := newTestClient(t, f, nil)
	many, _ := newTestClient(t, f, func(c *Config) { c.MaxPages = 1 })
	foreign := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, searchset("https://elsewhere.example/datastore/"+testDS+"/r4/Observation"))
	})
	cForeign, _ := newTestClient(t, foreign, nil)
	html := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html/>"))
	})
	cHTML, _ := newTestClient(t, html, nil)
	broken := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[`))
	})
	cBroken, _ := newTestClient(t, broken, nil)
	big := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, searchset("", match(obs(strings.Repeat("a", 60), "1", t0))))
	})
	cBig, _ := newTestClient(t, big, func(c *Config) { c.MaxPageBytes = 100 })
	closed := func() *Client {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		c, _ := New(Config{Endpoint: "http://" + addr + "/datastore/{datastoreId}/r4/", MaxAttempts: 1})
		return c
	}()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	for want, err := range map[string]error{
		"paging-loop":       func() error { _, err := collect(loop, t.Context()); return err }(),
		"paging-loop ":      func() error { _, err := collect(many, t.Context()); return err }(),
		"foreign-next-link": func() error { _, err := collect(cForeign, t.Context()); return err }(),
		"not-json":          func() error { _, err := collect(cHTML, t.Context()); return err }(),
		"malformed-bundle":  func() error { _, err := collect(cBroken, t.Context()); return err }(),
		"page-too-large":    func() error { _, err := collect(cBig, t.Context()); return err }(),
		"network":           func() error { _, err := collect(closed, t.Context()); return err }(),
		"canceled":          func() error { _, err := collect(loop, cancelled); return err }(),
		"invalid-argument":  loop.Search(t.Context(), "nope", "Observation", t0, t0.Add(time.Second), nil),
		"other":             errors.New("from a visitor"),
	} {
		if got := Reason(err); got != strings.TrimSpace(want) {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
		if want != "other" && want != "network" && want != "canceled" && !retry.IsPermanent(err) {
			t.Errorf("%s: %v is not permanent", want, err)
		}
	}
	if Reason(nil) != "" {
		t.Error("Reason(nil) is not empty")
	}
	if !errors.Is(ErrTooManyPages, ErrPagingLoop) || !errors.Is(ErrNextLinkLoop, ErrPagingLoop) || errors.Is(ErrTooManyPages, ErrNextLinkLoop) {
		t.Error("the paging-loop sentinels are not distinct members of ErrPagingLoop")
	}
}

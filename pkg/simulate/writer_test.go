package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// The local FHIR server does not fail on demand the ways tested here; httptest does.
// The writer's clock jumps over every wait (Waits lists them); the writer checks it against
// ctx's deadline, so tests with one use a clock at the real time.
func newTestWriter(t *testing.T, h http.HandlerFunc) (*HTTPWriter, *clocktest.Fake) {
	return newTestWriterAt(t, time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC), h)
}

func newTestWriterAt(t *testing.T, start time.Time, h http.HandlerFunc) (*HTTPWriter, *clocktest.Fake) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := clocktest.NewAuto(start)
	w, err := NewHTTPWriter(HTTPWriterOptions{
		Endpoint: srv.URL + "/datastore/{datastoreId}/r4",
		Client:   srv.Client(),
		Clock:    c,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w, c
}

func TestHTTPWriterCreateUpdateDelete(t *testing.T) {
	var got []string
	w, _ := newTestWriter(t, func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		switch r.Method {
		case http.MethodDelete:
			rw.Header().Set("ETag", `W/"3"`)
			rw.WriteHeader(http.StatusNoContent)
			return
		case http.MethodPost:
			if !json.Valid(body) {
				t.Error("body is not JSON")
			}
			rw.WriteHeader(http.StatusCreated)
		}
		io.WriteString(rw, `{"resourceType":"Patient","id":"p1","meta":{"versionId":"2","lastUpdated":"2026-01-02T03:04:05.123Z"}}`)
	})
	ctx := context.Background()
	v, err := w.Create(ctx, ds1, "Patient", []byte(`{"resourceType":"Patient"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Version{ID: "p1", VersionID: "2", LastUpdated: time.Date(2026, 1, 2, 3, 4, 5, 123e6, time.UTC)}
	if v != want {
		t.Errorf("create: %+v, want %+v", v, want)
	}
	if _, err := w.Update(ctx, ds1, "Patient", "p1", []byte(`{"resourceType":"Patient","id":"p1"}`)); err != nil {
		t.Fatal(err)
	}
	v, err = w.Delete(ctx, ds1, "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Version{ID: "p1", VersionID: "3", LastUpdated: time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)}); v != want {
		t.Errorf("delete: %+v, want %+v", v, want)
	}
	wantReqs := []string{
		"POST /datastore/" + ds1 + "/r4/Patient application/fhir+json",
		"PUT /datastore/" + ds1 + "/r4/Patient/p1 application/fhir+json",
		"DELETE /datastore/" + ds1 + "/r4/Patient/p1 ",
	}
	if strings.Join(got, "\n") != strings.Join(wantReqs, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantReqs, "\n"))
	}
}

func TestHTTPWriterRetriesThrottling(t *testing.T) {
	calls := 0
	w, clock := newTestWriter(t, func(rw http.ResponseWriter, r *http.Request) {
		calls++
		switch calls {
		case 1:
			rw.Header().Set("Retry-After", "2")
			rw.WriteHeader(http.StatusTooManyRequests)
		case 2:
			rw.WriteHeader(http.StatusServiceUnavailable)
		default:
			rw.WriteHeader(http.StatusCreated)
			io.WriteString(rw, `{"id":"p1","meta":{"versionId":"1","lastUpdated":"2026-01-02T03:04:05Z"}}`)
		}
	})
	if _, err := w.Create(context.Background(), ds1, "Patient", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if slept := clock.Waits(); calls != 3 || len(slept) != 2 || slept[0] != 2*time.Second || slept[1] != 400*time.Millisecond {
		t.Errorf("calls %d, waits %v; want 3 calls, waits [2s 400ms]", calls, slept)
	}
}

// A throttled write whose next attempt is due after ctx's deadline is not waited for: the
// writer returns the throttle at once.
func TestHTTPWriterRetryPastDeadline(t *testing.T) {
	calls := 0
	w, clock := newTestWriterAt(t, time.Now(), func(rw http.ResponseWriter, r *http.Request) {
		calls++
		rw.Header().Set("Retry-After", "60")
		rw.WriteHeader(http.StatusTooManyRequests)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := w.Create(ctx, ds1, "Patient", []byte(`{}`))
	if !IsStatus(err, http.StatusTooManyRequests) || !errors.Is(err, retry.ErrDeadline) || calls != 1 || len(clock.Waits()) != 0 {
		t.Errorf("err %v, calls %d, waits %v; want the 429 at once, no wait", err, calls, clock.Waits())
	}
}

func TestHTTPWriterErrors(t *testing.T) {
	w, _ := newTestWriter(t, func(rw http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/Patient"):
			rw.WriteHeader(http.StatusBadRequest)
			io.WriteString(rw, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"birthDate is wrong"}]}`)
		case strings.HasSuffix(r.URL.Path, "/Observation"):
			io.WriteString(rw, `{"resourceType":"Observation"}`) // no id, no meta
		default:
			rw.WriteHeader(http.StatusTooManyRequests) // always
		}
	})
	ctx := context.Background()
	_, err := w.Create(ctx, ds1, "Patient", []byte(`{}`))
	if !IsStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "invalid birthDate is wrong") {
		t.Errorf("400: %v", err)
	}
	if _, err := w.Create(ctx, ds1, "Observation", []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "lacks id") {
		t.Errorf("no id: %v", err)
	}
	if _, err := w.Delete(ctx, ds1, "Encounter", "e1"); !IsStatus(err, http.StatusTooManyRequests) {
		t.Errorf("throttled for good: %v", err)
	}

	for _, bad := range []string{"http://x/datastore/r4/", "ftp://x/{datastoreId}/", "{datastoreId}"} {
		if _, err := NewHTTPWriter(HTTPWriterOptions{Endpoint: bad}); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
}

// A Retry-After replaces the writer's own backoff, also when it is the shorter wait: the
// server says when it takes writes again.
func TestHTTPWriterRetryAfterReplacesBackoff(t *testing.T) {
	calls := 0
	w, clock := newTestWriter(t, func(rw http.ResponseWriter, r *http.Request) {
		calls++
		switch {
		case calls <= 4:
			rw.WriteHeader(http.StatusServiceUnavailable)
		case calls == 5:
			rw.Header().Set("Retry-After", "1")
			rw.WriteHeader(http.StatusTooManyRequests)
		default:
			rw.WriteHeader(http.StatusCreated)
			io.WriteString(rw, `{"id":"p1","meta":{"versionId":"1","lastUpdated":"2026-01-02T03:04:05Z"}}`)
		}
	})
	if _, err := w.Create(context.Background(), ds1, "Patient", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, time.Second}
	if slept := clock.Waits(); calls != 6 || !slices.Equal(slept, want) {
		t.Errorf("calls %d, waits %v; want 6 calls, waits %v (the 1 s Retry-After, not the 3.2 s backoff, last)", calls, slept, want)
	}
}

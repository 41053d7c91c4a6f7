package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// FHIRWriter makes the FHIR writes of a run. Implementations must be safe for concurrent use.
type FHIRWriter interface {
	// Create POSTs body as a new resourceType resource; the server assigns the id.
	Create(ctx context.Context, datastoreID, resourceType string, body []byte) (Version, error)
	// Update PUTs body as the new version of the resource.
	Update(ctx context.Context, datastoreID, resourceType, id string, body []byte) (Version, error)
	// Delete deletes the resource.
	Delete(ctx context.Context, datastoreID, resourceType, id string) (Version, error)
}

// Version is what a write produced.
type Version struct {
	ID, VersionID string
	// LastUpdated is the version's meta.lastUpdated; for a delete, which returns no
	// resource, the time the response arrived.
	LastUpdated time.Time
}

// HTTPWriterOptions configures an HTTPWriter.
type HTTPWriterOptions struct {
	// Endpoint is the FHIR base URL with a {datastoreId} placeholder, such as
	// https://healthlake.us-east-1.amazonaws.com/datastore/{datastoreId}/r4/. Required.
	Endpoint string
	// Client sends the requests; default a client with a 30 s timeout. For HealthLake, give it
	// a transport from fhir.SigV4Transport.
	Client *http.Client
	// MaxAttempts bounds the attempts of a throttled request (429, 503); default 6.
	MaxAttempts int
	// BaseBackoff is the first wait after a throttled attempt when the server sends no
	// Retry-After; it doubles up to 10 s. Default 200 ms.
	BaseBackoff time.Duration
	// Now and Sleep, for tests; default the real clock.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// HTTPWriter writes to a FHIR R4 server over HTTP: HealthLake or the local stand-in.
type HTTPWriter struct {
	o HTTPWriterOptions
}

const datastorePlaceholder = "{datastoreId}"

// NewHTTPWriter checks the options and returns a writer.
func NewHTTPWriter(o HTTPWriterOptions) (*HTTPWriter, error) {
	if !strings.Contains(o.Endpoint, datastorePlaceholder) {
		return nil, fmt.Errorf("simulate: FHIR endpoint %q has no %s placeholder", o.Endpoint, datastorePlaceholder)
	}
	u, err := url.Parse(strings.ReplaceAll(o.Endpoint, datastorePlaceholder, strings.Repeat("0", 32)))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("simulate: FHIR endpoint %q is not an http(s) URL", o.Endpoint)
	}
	if !strings.HasSuffix(o.Endpoint, "/") {
		o.Endpoint += "/"
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 200 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return &HTTPWriter{o: o}, nil
}

func (w *HTTPWriter) url(datastoreID, resourceType, id string) string {
	// Datastore ids were validated (hex); the type is one we support; ids come from the server.
	u := strings.ReplaceAll(w.o.Endpoint, datastorePlaceholder, datastoreID) + url.PathEscape(resourceType)
	if id != "" {
		u += "/" + url.PathEscape(id)
	}
	return u
}

// Create implements FHIRWriter.
func (w *HTTPWriter) Create(ctx context.Context, datastoreID, resourceType string, body []byte) (Version, error) {
	return w.write(ctx, http.MethodPost, w.url(datastoreID, resourceType, ""), body)
}

// Update implements FHIRWriter.
func (w *HTTPWriter) Update(ctx context.Context, datastoreID, resourceType, id string, body []byte) (Version, error) {
	return w.write(ctx, http.MethodPut, w.url(datastoreID, resourceType, id), body)
}

// Delete implements FHIRWriter.
func (w *HTTPWriter) Delete(ctx context.Context, datastoreID, resourceType, id string) (Version, error) {
	resp, err := w.do(ctx, http.MethodDelete, w.url(datastoreID, resourceType, id), nil)
	if err != nil {
		return Version{}, err
	}
	at := w.o.Now()
	resp.Body.Close()
	return Version{ID: id, VersionID: etagVersion(resp.Header.Get("ETag")), LastUpdated: at}, nil
}

func (w *HTTPWriter) write(ctx context.Context, method, u string, body []byte) (Version, error) {
	resp, err := w.do(ctx, method, u, body)
	if err != nil {
		return Version{}, err
	}
	defer resp.Body.Close()
	var r struct {
		ID   string `json:"id"`
		Meta struct {
			VersionID   string    `json:"versionId"`
			LastUpdated time.Time `json:"lastUpdated"`
		} `json:"meta"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&r); err != nil {
		return Version{}, fmt.Errorf("simulate: %s %s: response is no FHIR resource: %w", method, u, err)
	}
	if r.ID == "" || r.Meta.VersionID == "" || r.Meta.LastUpdated.IsZero() {
		return Version{}, fmt.Errorf("simulate: %s %s: response lacks id, meta.versionId or meta.lastUpdated", method, u)
	}
	return Version{ID: r.ID, VersionID: r.Meta.VersionID, LastUpdated: r.Meta.LastUpdated}, nil
}

// do sends the request, retrying throttled attempts (429, 503: the server did not process the
// request, so even a POST is safe to repeat). It returns the response of a 2xx status only.
func (w *HTTPWriter) do(ctx context.Context, method, u string, body []byte) (*http.Response, error) {
	backoff := w.o.BaseBackoff
	for attempt := 1; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body) // sets GetBody, which SigV4 signing needs
		}
		req, err := http.NewRequestWithContext(ctx, method, u, rd)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/fhir+json")
		if body != nil {
			req.Header.Set("Content-Type", "application/fhir+json")
		}
		resp, err := w.o.Client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("simulate: %s %s: %w", method, u, err)
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		detail := outcome(resp.Body)
		resp.Body.Close()
		throttled := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		if !throttled || attempt >= w.o.MaxAttempts {
			return nil, &StatusError{Method: method, URL: u, Status: resp.StatusCode, Detail: detail}
		}
		wait := backoff
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		if err := w.o.Sleep(ctx, wait); err != nil {
			return nil, err
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// StatusError is a write the server refused.
type StatusError struct {
	Method, URL string
	Status      int
	Detail      string // the OperationOutcome's first issue (the data is synthetic)
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("simulate: %s %s: status %d", e.Method, e.URL, e.Status)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// IsStatus reports whether err is a StatusError with that status.
func IsStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

// outcome summarises an OperationOutcome body: the first issue's code and diagnostics,
// bounded. Only our synthetic resources are sent, so the text carries no PHI.
func outcome(body io.Reader) string {
	var oo struct {
		Issue []struct {
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
			Details     struct {
				Text string `json:"text"`
			} `json:"details"`
		} `json:"issue"`
	}
	if json.NewDecoder(io.LimitReader(body, 64<<10)).Decode(&oo) != nil || len(oo.Issue) == 0 {
		return ""
	}
	i := oo.Issue[0]
	text := i.Diagnostics
	if text == "" {
		text = i.Details.Text
	}
	s := strings.TrimSpace(i.Code + " " + text)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// etagVersion takes the version out of an ETag such as W/"3".
func etagVersion(etag string) string {
	etag = strings.TrimPrefix(etag, "W/")
	return strings.Trim(etag, `"`)
}

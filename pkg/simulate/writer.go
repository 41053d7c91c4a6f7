package simulate

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
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

// Patcher is what a run with Config.PatchRatio needs besides FHIRWriter; HTTPWriter has it.
type Patcher interface {
	// Patch applies a JSON Patch (RFC 6902) to the resource.
	Patch(ctx context.Context, datastoreID, resourceType, id string, patch []byte) (Version, error)
}

// BundleWriter is what a run with Config.Bundles needs; HTTPWriter has it.
type BundleWriter interface {
	// Bundle POSTs a batch or transaction Bundle to the datastore's base and returns one
	// result per entry, in order. An error means the Bundle as a whole was refused (for a
	// transaction: nothing was written); a batch entry that failed has a non-2xx Status.
	Bundle(ctx context.Context, datastoreID string, bundle []byte) ([]EntryResult, error)
}

// EntryResult is the outcome of one Bundle entry. Version is set for a 2xx Status.
type EntryResult struct {
	Status int
	Version
	// Detail is the entry's OperationOutcome summarised, for a failed entry.
	Detail string
}

// Importer is what a run with Config.Import needs; HTTPWriter has it when given an ImportURL.
type Importer interface {
	// Import writes resources (each with its id) into the datastore without per-resource API
	// calls, as an import job does, and returns the finished job.
	Import(ctx context.Context, datastoreID string, resources []json.RawMessage) (ImportJob, error)
	// Read returns the current version of a resource (an import says nothing per resource).
	Read(ctx context.Context, datastoreID, resourceType, id string) (Version, error)
}

// ImportJob is a finished import.
type ImportJob struct {
	JobID                string
	Status               string // cloudtrail.JobStatusCompleted or JobStatusCompletedWithErrors
	SubmitTime, EndTime  time.Time
	Imported, ErrorCount int
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
	// ImportURL is the local FHIR server's admin import (see LocalImportURL); without it
	// Import fails. HealthLake has no such call: its imports are StartFHIRImportJob jobs
	// reading S3, which simulate does not drive.
	ImportURL string
	// Clock is the time of the waits and of a delete's LastUpdated; default clock.Real.
	// Tests inject a clocktest.Fake.
	Clock clock.Clock
}

// LocalImportURL returns the admin import URL of the local FHIR server behind endpoint (a
// FHIR base URL with the {datastoreId} placeholder), or an error when endpoint is not on a
// loopback address: only the local stand-in has an admin import.
func LocalImportURL(endpoint string) (string, error) {
	u, err := url.Parse(strings.ReplaceAll(endpoint, datastorePlaceholder, strings.Repeat("0", 32)))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("simulate: FHIR endpoint %q is not a URL", endpoint)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if u.Scheme != "http" || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		return "", fmt.Errorf("simulate: import needs the local FHIR server's admin import (POST /_admin/import), "+
			"but the FHIR endpoint %s://%s is not an http loopback address; on HealthLake, imports are "+
			"StartFHIRImportJob jobs reading S3, which simulate does not drive", u.Scheme, u.Host)
	}
	return "http://" + u.Host + "/_admin/import", nil
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
	o.Clock = clock.Or(o.Clock)
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
	at := w.o.Clock.Now()
	resp.Body.Close()
	return Version{ID: id, VersionID: etagVersion(resp.Header.Get("ETag")), LastUpdated: at}, nil
}

// Patch implements Patcher.
func (w *HTTPWriter) Patch(ctx context.Context, datastoreID, resourceType, id string, patch []byte) (Version, error) {
	return w.write(ctx, http.MethodPatch, w.url(datastoreID, resourceType, id), patch)
}

// Read implements Importer.
func (w *HTTPWriter) Read(ctx context.Context, datastoreID, resourceType, id string) (Version, error) {
	return w.write(ctx, http.MethodGet, w.url(datastoreID, resourceType, id), nil)
}

// Bundle implements BundleWriter. An entry's version comes from its resource's meta when the
// server returns it, else from response.location, etag and lastModified (what FHIR asks of
// every batch-response entry).
func (w *HTTPWriter) Bundle(ctx context.Context, datastoreID string, bundle []byte) ([]EntryResult, error) {
	u := strings.TrimSuffix(strings.ReplaceAll(w.o.Endpoint, datastorePlaceholder, datastoreID), "/")
	resp, err := w.do(ctx, http.MethodPost, u+"/", bundle)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	type meta struct {
		VersionID   string    `json:"versionId"`
		LastUpdated time.Time `json:"lastUpdated"`
	}
	var b struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource *struct {
				ID   string `json:"id"`
				Meta meta   `json:"meta"`
			} `json:"resource"`
			Response struct {
				Status       string          `json:"status"`
				Location     string          `json:"location"`
				Etag         string          `json:"etag"`
				LastModified time.Time       `json:"lastModified"`
				Outcome      json.RawMessage `json:"outcome"`
			} `json:"response"`
		} `json:"entry"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&b); err != nil || b.ResourceType != "Bundle" {
		return nil, fmt.Errorf("simulate: POST %s/: response is no Bundle: %v", u, err)
	}
	out := make([]EntryResult, len(b.Entry))
	for i, e := range b.Entry {
		r := e.Response
		status, _, _ := strings.Cut(r.Status, " ")
		out[i].Status, _ = strconv.Atoi(status)
		if out[i].Status/100 != 2 {
			if len(r.Outcome) > 0 {
				out[i].Detail = outcome(bytes.NewReader(r.Outcome))
			}
			continue
		}
		// location: [base/]Type/id/_history/vid
		parts := strings.Split(r.Location, "/")
		if n := len(parts); n >= 4 && parts[n-2] == "_history" {
			out[i].ID, out[i].VersionID = parts[n-3], parts[n-1]
		}
		out[i].VersionID = cmp.Or(etagVersion(r.Etag), out[i].VersionID)
		out[i].LastUpdated = r.LastModified
		if e.Resource != nil {
			out[i].ID = cmp.Or(e.Resource.ID, out[i].ID)
			out[i].VersionID = cmp.Or(e.Resource.Meta.VersionID, out[i].VersionID)
			if !e.Resource.Meta.LastUpdated.IsZero() {
				out[i].LastUpdated = e.Resource.Meta.LastUpdated
			}
		}
	}
	return out, nil
}

// Import implements Importer with the local FHIR server's admin import.
func (w *HTTPWriter) Import(ctx context.Context, datastoreID string, resources []json.RawMessage) (ImportJob, error) {
	if w.o.ImportURL == "" {
		return ImportJob{}, errors.New("simulate: import: no import URL (only the local FHIR server has an admin import)")
	}
	body, err := json.Marshal(map[string]any{"datastoreId": datastoreID, "resources": resources})
	if err != nil {
		return ImportJob{}, err
	}
	resp, err := w.do(ctx, http.MethodPost, w.o.ImportURL, body)
	if err != nil {
		return ImportJob{}, err
	}
	defer resp.Body.Close()
	var j struct {
		JobID      string    `json:"jobId"`
		JobStatus  string    `json:"jobStatus"`
		SubmitTime time.Time `json:"submitTime"`
		EndTime    time.Time `json:"endTime"`
		Imported   int       `json:"imported"`
		Errors     int       `json:"errors"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&j); err != nil || j.JobID == "" || j.SubmitTime.IsZero() || j.EndTime.IsZero() {
		return ImportJob{}, fmt.Errorf("simulate: import: answer lacks jobId, submitTime or endTime (%v)", err)
	}
	return ImportJob{JobID: j.JobID, Status: j.JobStatus, SubmitTime: j.SubmitTime, EndTime: j.EndTime, Imported: j.Imported, ErrorCount: j.Errors}, nil
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
	// No jitter: the simulator is the only writer it paces, so each wait is the whole cap,
	// BaseBackoff doubled up to 10 s — or the server's Retry-After, which replaces it: the
	// server says when it takes writes again.
	policy := retry.Policy{Base: w.o.BaseBackoff, Max: 10 * time.Second, Clock: w.o.Clock, Rand: func() float64 { return 1 }}
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
		switch {
		case method == http.MethodPatch:
			req.Header.Set("Content-Type", "application/json-patch+json")
		case body != nil:
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
		wait := policy.Backoff(attempt, 0)
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			wait = time.Duration(s) * time.Second
		}
		if err := policy.Sleep(ctx, wait); errors.Is(err, retry.ErrDeadline) {
			return nil, fmt.Errorf("%w (%w)", &StatusError{Method: method, URL: u, Status: resp.StatusCode, Detail: detail}, err)
		} else if err != nil {
			return nil, err
		}
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
	text := cmp.Or(i.Diagnostics, i.Details.Text)
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

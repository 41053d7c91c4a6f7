package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/recorded"
)

const (
	amzJSON11         = "application/x-amz-json-1.1"
	putEventsTarget   = "AWSEvents.PutEvents"
	maxRequestBody    = 4 << 20 // JSON escaping makes a full 256 KB call larger on the wire
	defaultFailCode   = "InternalFailure"
	injectedFailMsg   = "injected failure (eventbridge recorder)"
	injectedThrottle  = "Rate exceeded (injected by eventbridge recorder)"
	defaultEventBus   = "default"
	invalidEntryCode  = "InvalidArgument"
	serializationCode = "SerializationException"
)

// Failures is the failure injection the recorder applies; it is also the JSON body of
// POST /_recorder/config.
type Failures struct {
	// FailRate is the fraction of valid entries failed with FailCode.
	FailRate float64 `json:"failRate"`
	// FailCode is the ErrorCode of injected entry failures; default InternalFailure.
	FailCode string `json:"failCode"`
	// ThrottleRate is the fraction of calls answered with a ThrottlingException.
	ThrottleRate float64 `json:"throttleRate"`
	// FailNextIndexes fails the entries at these indexes of the next call that reaches entry
	// processing (not throttled, not rejected), then clears itself.
	FailNextIndexes []int `json:"failNextIndexes"`
	// DelayMs holds every call that long before it is processed, like the network and service
	// latency of the real EventBridge; a call whose client gives up meanwhile (its timeout) is
	// dropped unrecorded. Calls wait concurrently.
	DelayMs int64 `json:"delayMs,omitempty"`
	// FailCallsWith, while set, fails every call as a whole with an API error — an expired
	// token, AccessDenied, a missing bus — before throttling and entry processing.
	FailCallsWith *CallFailure `json:"failCallsWith,omitempty"`
}

// CallFailure is the API error FailCallsWith answers every call with.
type CallFailure struct {
	// Code is the error code (X-Amzn-ErrorType and __type), e.g. AccessDeniedException,
	// ExpiredTokenException, UnrecognizedClientException, ResourceNotFoundException.
	Code string `json:"code"`
	// Status is the HTTP status; default 400, what the AWS JSON 1.1 services answer these with.
	Status int `json:"status,omitempty"`
	// Message defaults to a recorder message naming the code.
	Message string `json:"message,omitempty"`
	// ForMs bounds the failure to that many milliseconds from when it is configured; 0 keeps
	// it until it is cleared (POST {"failCallsWith": {"code": ""}}) or the recorder is reset.
	ForMs int64 `json:"forMs,omitempty"`
	// Until is when a bounded failure ends; set by the recorder, shown by GET config.
	Until *time.Time `json:"until,omitempty"`
}

func (c *CallFailure) validate() error {
	switch {
	case c.Code == "" || strings.ContainsAny(c.Code, " \r\n:"):
		return fmt.Errorf("failCallsWith: code %q is not an error code", c.Code)
	case c.Status < 400 || c.Status > 599:
		return fmt.Errorf("failCallsWith: status %d is not an HTTP error status", c.Status)
	case c.ForMs < 0:
		return fmt.Errorf("failCallsWith: forMs %d is negative", c.ForMs)
	}
	return nil
}

// active reports whether the failure applies to a call received at t.
func (c *CallFailure) active(t time.Time) bool { return c.Until == nil || t.Before(*c.Until) }

// Validate reports settings that cannot work.
func (f Failures) Validate() error {
	if f.FailRate < 0 || f.FailRate > 1 {
		return fmt.Errorf("failRate %v is outside [0, 1]", f.FailRate)
	}
	if f.ThrottleRate < 0 || f.ThrottleRate > 1 {
		return fmt.Errorf("throttleRate %v is outside [0, 1]", f.ThrottleRate)
	}
	for _, i := range f.FailNextIndexes {
		if i < 0 || i >= maxEntries {
			return fmt.Errorf("failNextIndexes: %d is outside [0, %d)", i, maxEntries)
		}
	}
	if f.DelayMs < 0 || f.DelayMs > 10*60*1000 {
		return fmt.Errorf("delayMs %d is outside [0, 600000]", f.DelayMs)
	}
	if f.FailCallsWith != nil {
		return f.FailCallsWith.validate()
	}
	return nil
}

func (f Failures) withDefaults() Failures {
	if f.FailCode == "" {
		f.FailCode = defaultFailCode
	}
	f.FailNextIndexes = append([]int{}, f.FailNextIndexes...)
	return f
}

// Stats counts what the recorder did since start or the last reset.
type Stats struct {
	Calls            int64 `json:"calls"`
	EntriesAccepted  int64 `json:"entriesAccepted"`
	EntriesFailed    int64 `json:"entriesFailed"`
	Throttled        int64 `json:"throttled"`
	ValidationErrors int64 `json:"validationErrors"`
	// CallsFailed counts calls failed as a whole by FailCallsWith.
	CallsFailed int64 `json:"callsFailed"`
}

// Options configures a Recorder.
type Options struct {
	// Out is the JSON Lines file accepted entries are appended to; its directory is created.
	Out string
	// Seed seeds the randomness of FailRate and ThrottleRate.
	Seed uint64
	// Failures is the injection at start, and what POST /_recorder/reset returns to.
	Failures Failures
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Recorder is a PutEvents-compatible EventBridge stand-in: it validates calls like AWS, appends
// every accepted entry to a JSON Lines file and can fail entries or throttle calls on purpose.
type Recorder struct {
	out     string
	seed    uint64
	initial Failures
	log     *slog.Logger
	now     func() time.Time

	mu       sync.Mutex // guards the fields below
	failures Failures
	bySource map[string]Failures // overrides of failures, by the calls' Source
	rng      *rand.Rand
	stats    Stats

	fileMu sync.Mutex // guards file; held across a call's write so its lines stay together
	file   *os.File
}

// New opens (creating if needed) the output file and returns a Recorder writing to it.
func New(opts Options) (*Recorder, error) {
	if opts.Out == "" {
		return nil, errors.New("recorder: no output file")
	}
	if err := opts.Failures.Validate(); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	out, err := filepath.Abs(opts.Out)
	if err != nil {
		return nil, fmt.Errorf("recorder: output file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, fmt.Errorf("recorder: output directory: %w", err)
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("recorder: output file: %w", err)
	}
	r := &Recorder{
		out:     out,
		seed:    opts.Seed,
		initial: opts.Failures.withDefaults(),
		log:     opts.Logger,
		now:     opts.Now,
		file:    f,
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.failures = r.initial.withDefaults()
	r.bySource = make(map[string]Failures)
	r.rng = newRand(r.seed)
	return r, nil
}

func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Out is the absolute path of the output file.
func (r *Recorder) Out() string { return r.out }

// Close closes the output file.
func (r *Recorder) Close() error {
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	if r.file == nil {
		return nil
	}
	err := r.file.Close()
	r.file = nil
	return err
}

// Handler serves PutEvents on POST / and the admin API under /_recorder/.
func (r *Recorder) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", r.serveAPI)
	mux.HandleFunc("GET /_recorder/config", r.serveGetConfig)
	mux.HandleFunc("POST /_recorder/config", r.servePostConfig)
	mux.HandleFunc("GET /_recorder/stats", r.serveStats)
	mux.HandleFunc("POST /_recorder/reset", r.serveReset)
	return mux
}

// record is one line of the output file; its readers import the same type.
type record = recorded.Line

func (r *Recorder) serveAPI(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("X-Amzn-RequestId", uuid.NewString())
	if target := req.Header.Get("X-Amz-Target"); target != putEventsTarget {
		writeAPIError(w, http.StatusBadRequest, "UnknownOperationException",
			fmt.Sprintf("operation %q is not supported by the eventbridge recorder (only %s)", target, putEventsTarget))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxRequestBody))
	if err != nil {
		writeAPIError(w, http.StatusRequestEntityTooLarge, serializationCode, "request body too large or unreadable")
		return
	}
	var in putEventsRequest
	if err := json.Unmarshal(body, &in); err != nil {
		writeAPIError(w, http.StatusBadRequest, serializationCode, "request body is not a valid PutEvents request")
		return
	}

	received := r.now()
	if err := validateRequest(in); err != nil {
		r.count(func(s *Stats) { s.Calls++; s.ValidationErrors++ })
		r.log.Info("putevents rejected", "entries", len(in.Entries), "error", err)
		writeAPIError(w, http.StatusBadRequest, "ValidationException", err.Error())
		return
	}

	// Entry checks (JSON scans of every Detail) run outside the lock, so that concurrent calls
	// use every core; decide only draws the randomness.
	details := make([][]byte, len(in.Entries))
	invalid := make([]error, len(in.Entries))
	for i, e := range in.Entries {
		details[i], invalid[i] = validateEntry(e)
	}
	results, injected, callFail, throttled, delay := r.decide(received, in.Entries, invalid)
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			r.log.Info("putevents abandoned by the client during the injected delay", "entries", len(in.Entries))
			return
		}
	}
	if callFail != nil {
		msg := callFail.Message
		if msg == "" {
			msg = fmt.Sprintf("%s (injected by eventbridge recorder)", callFail.Code)
		}
		r.log.Info("putevents failed (injected)", "entries", len(in.Entries), "code", callFail.Code)
		writeAPIError(w, callFail.Status, callFail.Code, msg)
		return
	}
	if throttled {
		r.log.Info("putevents throttled (injected)", "entries", len(in.Entries))
		writeAPIError(w, http.StatusBadRequest, "ThrottlingException", injectedThrottle)
		return
	}

	lines := linePool.Get().(*bytes.Buffer)
	defer linePool.Put(lines)
	lines.Reset()
	for i, e := range in.Entries {
		if results[i].ErrorCode != "" {
			continue
		}
		results[i].EventID = uuid.NewString()
		appendLine(lines, r.toRecord(received, results[i].EventID, e, details[i]))
	}
	err = r.append(lines.Bytes())
	if err != nil {
		r.log.Error("append to output file failed", "file", r.out, "error", err)
		writeAPIError(w, http.StatusInternalServerError, "InternalException", "the recorder could not write its output file")
		return
	}

	var accepted, failed int64
	for _, res := range results {
		if res.ErrorCode != "" {
			failed++
		} else {
			accepted++
		}
	}
	r.count(func(s *Stats) { s.EntriesAccepted += accepted; s.EntriesFailed += failed })
	r.log.Debug("putevents", "entries", len(in.Entries), "accepted", accepted, "failed", failed, "injected", injected)
	writeJSON(w, amzJSON11, putEventsResponse{FailedEntryCount: int(failed), Entries: results})
}

// decide counts the call and applies validation and failure injection under one lock, so that
// a seed gives the same outcome for the same sequence of calls.
func (r *Recorder) decide(received time.Time, entries []putEventsEntry, invalid []error) (results []putEventsResultEntry, injected int, callFail *CallFailure, throttled bool, delay time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Calls++
	f := &r.failures
	if len(entries) > 0 {
		if sf, ok := r.bySource[entries[0].Source]; ok {
			f = &sf
			defer func() { r.bySource[entries[0].Source] = sf }()
		}
	}
	delay = time.Duration(f.DelayMs) * time.Millisecond
	if c := f.FailCallsWith; c != nil {
		if c.active(received) {
			r.stats.CallsFailed++
			return nil, 0, c, false, delay
		}
		f.FailCallsWith = nil // over: forget it, so GET config shows it gone
	}
	if f.ThrottleRate > 0 && r.rng.Float64() < f.ThrottleRate {
		r.stats.Throttled++
		return nil, 0, nil, true, delay
	}
	failAt := make(map[int]bool, len(f.FailNextIndexes))
	for _, i := range f.FailNextIndexes {
		failAt[i] = true
	}
	f.FailNextIndexes = nil

	results = make([]putEventsResultEntry, len(entries))
	for i := range entries {
		if err := invalid[i]; err != nil {
			results[i] = putEventsResultEntry{ErrorCode: invalidEntryCode, ErrorMessage: err.Error()}
			continue
		}
		if failAt[i] || (f.FailRate > 0 && r.rng.Float64() < f.FailRate) {
			results[i] = putEventsResultEntry{ErrorCode: f.FailCode, ErrorMessage: injectedFailMsg}
			injected++
		}
	}
	return results, injected, nil, false, delay
}

// toRecord is the line of an accepted entry; detail is its Detail, compacted by validateEntry.
func (r *Recorder) toRecord(received time.Time, id string, e putEventsEntry, detail []byte) record {
	// AWS stamps an event without Time with the time it received it.
	t := received
	if e.Time != nil {
		t, _ = parseEpochSeconds(*e.Time) // validateEntry checked it
	}
	bus := e.EventBusName
	if bus == "" {
		bus = defaultEventBus
	}
	resources := e.Resources
	if resources == nil {
		resources = []string{}
	}
	return record{
		Received:     received.UTC(),
		EventID:      id,
		EventBusName: bus,
		Source:       e.Source,
		DetailType:   e.DetailType,
		Time:         t.UTC(),
		Resources:    resources,
		Detail:       detail,
		TraceHeader:  e.TraceHeader,
	}
}

var linePool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// appendLine writes rec as json.Encoder would (same keys, order, escaping, trailing newline)
// without its second scan of the detail: encoding a json.RawMessage compacts and validates it
// again, which was a fifth of the recorder's CPU. The detail is already compact and valid, so
// HTML-escaping it (what the encoder's compaction adds) gives the same bytes.
func appendLine(buf *bytes.Buffer, rec record) {
	// time.Time encodes as RFC 3339 with nanoseconds, trailing zeros dropped: the same text.
	head, _ := json.Marshal(recordHead{rec.Received.Format(time.RFC3339Nano), rec.EventID, rec.EventBusName, rec.Source, rec.DetailType, rec.Time.Format(time.RFC3339Nano), rec.Resources}) // strings always marshal
	buf.Write(head[:len(head)-1])
	buf.WriteString(`,"detail":`)
	json.HTMLEscape(buf, rec.Detail)
	if rec.TraceHeader != "" {
		buf.WriteString(`,"traceHeader":`)
		b, _ := json.Marshal(rec.TraceHeader)
		buf.Write(b)
	}
	buf.WriteString("}\n")
}

// recordHead is record up to its detail: the same fields, keys and order.
type recordHead struct {
	Received     string   `json:"received"`
	EventID      string   `json:"eventId"`
	EventBusName string   `json:"eventBusName"`
	Source       string   `json:"source"`
	DetailType   string   `json:"detailType"`
	Time         string   `json:"time"`
	Resources    []string `json:"resources"`
}

// append writes one call's lines with a single write, so a reader never sees half a call.
func (r *Recorder) append(lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	if r.file == nil {
		return os.ErrClosed
	}
	_, err := r.file.Write(lines)
	return err
}

func (r *Recorder) count(f func(*Stats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.stats)
}

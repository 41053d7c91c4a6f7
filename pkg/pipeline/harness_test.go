package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/redis/go-redis/v9"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/recorded"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/simulate"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/telemetry"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// harness is one pipeline on the real local servers: the FHIR server, Redis and the
// EventBridge recorder. Each harness has its own datastores, dedup prefix and event Source,
// so tests (and packages) sharing the servers do not see each other's data.
type harness struct {
	t         *testing.T
	timelines *timeline.Store
	fhirBase  string
	recorder  string
	source    string
	pipe      *pipeline.Pipeline
	searches  *searchLog
	// http carries the harness's requests; its idle connections are closed at the end, so
	// goleak sees no keep-alive goroutines.
	http *http.Transport

	seq   atomic.Int64
	acked atomic.Int64
	fed   atomic.Int64

	mu     sync.Mutex
	writes []write
}

type harnessOptions struct {
	config func(*pipeline.Config)
	redis  string // host:port; default the local stack's
	// tel, if set, instruments the FHIR client (otelhttp), Redis (redisotel) and the
	// EventBridge client (otelaws) as the consumer does.
	tel *telemetry.Providers
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		fhirBase: stack.URL(t, stack.FHIR),
		recorder: stack.URL(t, stack.EventBridge),
		source:   "test.pipeline." + stack.RandomHex(6),
		http:     http.DefaultTransport.(*http.Transport).Clone(),
	}
	t.Cleanup(h.http.CloseIdleConnections)
	redisAddr := o.redis
	if redisAddr == "" {
		redisAddr = stack.Addr(t, stack.Redis)
	}

	fcfg := fhir.Config{
		Endpoint:    h.fhirBase + "/datastore/{datastoreId}/r4/",
		BaseBackoff: 50 * time.Millisecond, MaxBackoff: time.Second,
		HTTPClient: &http.Client{Timeout: time.Minute, Transport: h.http},
	}
	if o.tel != nil {
		fcfg.HTTPClient = &http.Client{Timeout: time.Minute, Transport: telemetry.HTTPTransport(h.http, *o.tel)}
	}
	fc, err := fhir.New(fcfg)
	if err != nil {
		t.Fatal(err)
	}
	h.searches = &searchLog{next: fc}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, MaxRetries: -1, DialTimeout: 500 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	if o.tel != nil {
		if err := telemetry.Redis(rdb, *o.tel); err != nil {
			t.Fatal(err)
		}
	}
	prefix := "test:" + stack.RandomHex(6) + ":"
	store, err := dedup.NewStore(rdb, dedup.Options{Prefix: prefix, ClaimTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.timelines, err = timeline.New(rdb, timeline.Options{Prefix: prefix + "tl:", Owner: dedup.RandomOwner(), LeaseTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// No SDK retries: bus.Emitter's own retry is the one under test.
	eb := stack.EventBridgeClient(t, func(eo *eventbridge.Options) {
		eo.Retryer = aws.NopRetryer{}
		if o.tel != nil {
			telemetry.AWS(&eo.APIOptions, *o.tel)
		}
	})
	emitter, err := bus.New(eb, bus.Options{BaseBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	builder, err := event.NewBuilder(event.Options{Source: h.source})
	if err != nil {
		t.Fatal(err)
	}

	cfg := pipeline.DefaultConfig()
	cfg.Timeline = coalesce.Config{
		Window: 300 * time.Millisecond, Settle: 0, Lead: 2 * time.Second, Lag: 2 * time.Second,
		MaxSpan: 5 * time.Minute, VerifyAfter: time.Second,
	}
	cfg.MinBackoff, cfg.MaxBackoff, cfg.PendingRetry = 50*time.Millisecond, time.Second, 200*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if o.config != nil {
		o.config(&cfg)
	}
	validator, err := cloudtrail.NewValidator(nil)
	if err != nil {
		t.Fatal(err)
	}
	h.pipe, err = pipeline.New(cfg, pipeline.Parts{
		Validator: validator,
		FHIR:      h.searches,
		Timelines: h.timelines,
		NewClaims: func() pipeline.Claims { return store.WithOwner(dedup.RandomOwner()) },
		Emitter:   emitter,
		Events:    builder,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.pipe.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return h
}

// searchLog records every datastore and type the pipeline asked the FHIR server about, so
// tests can prove no rejected value ever reached a URL.
type searchLog struct {
	next *fhir.Client
	mu   sync.Mutex
	keys map[[2]string]int
}

func (s *searchLog) note(ds, rt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = make(map[[2]string]int)
	}
	s.keys[[2]string{ds, rt}]++
}

func (s *searchLog) Search(ctx context.Context, ds, rt string, from, to time.Time, visit func(fhir.Page) error) error {
	s.note(ds, rt)
	return s.next.Search(ctx, ds, rt, from, to, visit)
}

func (s *searchLog) HistoryRange(ctx context.Context, ds, rt string, from, to time.Time, visit func(fhir.HistoryPage) error) error {
	s.note(ds, rt)
	return s.next.HistoryRange(ctx, ds, rt, from, to, visit)
}

func (s *searchLog) Count(ctx context.Context, ds, rt string, from, to time.Time) (int, bool, error) {
	s.note(ds, rt)
	return s.next.Count(ctx, ds, rt, from, to)
}

func (s *searchLog) searched() map[[2]string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[[2]string]int, len(s.keys))
	for k, v := range s.keys {
		out[k] = v
	}
	return out
}

// write is one change made on the FHIR server: what the pipeline must announce.
type write struct {
	DS, Type, ID, Version string
	LastUpdated           time.Time
	Op                    event.Operation
}

// fhirWrite runs one write through the producer's FHIR writer (the same HTTP client code
// `producer simulate` uses) against the local server.
func (h *harness) fhirWrite(do func(ctx context.Context, w *simulate.HTTPWriter) (simulate.Version, error)) simulate.Version {
	h.t.Helper()
	w, err := simulate.NewHTTPWriter(simulate.HTTPWriterOptions{
		Endpoint: h.fhirBase + "/datastore/{datastoreId}/r4/", Client: &http.Client{Timeout: 30 * time.Second, Transport: h.http},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	v, err := do(context.Background(), w)
	if err != nil {
		h.t.Fatalf("FHIR write: %v", err)
	}
	return v
}

func body(rt, id string, n int) []byte {
	b, _ := json.Marshal(resource(rt, id, n))
	return b
}

// create makes a resource and returns the write with its CloudTrail record.
func (h *harness) create(ds, rt string) (write, []byte) {
	v := h.fhirWrite(func(ctx context.Context, w *simulate.HTTPWriter) (simulate.Version, error) {
		return w.Create(ctx, ds, rt, body(rt, "", 0))
	})
	return h.noteWrite(write{DS: ds, Type: rt, ID: v.ID, Version: v.VersionID, LastUpdated: v.LastUpdated, Op: event.Create})
}

// update writes a new version of an existing resource.
func (h *harness) update(ds, rt, id string, n int) (write, []byte) {
	v := h.fhirWrite(func(ctx context.Context, w *simulate.HTTPWriter) (simulate.Version, error) {
		return w.Update(ctx, ds, rt, id, body(rt, id, n))
	})
	return h.noteWrite(write{DS: ds, Type: rt, ID: id, Version: v.VersionID, LastUpdated: v.LastUpdated, Op: event.Update})
}

// remove deletes a resource.
func (h *harness) remove(ds, rt, id string) (write, []byte) {
	v := h.fhirWrite(func(ctx context.Context, w *simulate.HTTPWriter) (simulate.Version, error) {
		return w.Delete(ctx, ds, rt, id)
	})
	return h.noteWrite(write{DS: ds, Type: rt, ID: id, LastUpdated: v.LastUpdated, Op: event.Delete})
}

func (h *harness) noteWrite(w write) (write, []byte) {
	h.mu.Lock()
	h.writes = append(h.writes, w)
	h.mu.Unlock()
	// CloudTrail's eventTime is when the call started, in whole seconds: at or before the
	// resource's lastUpdated.
	rec, err := cloudtrail.Encode(cloudtrail.Change{
		EventID: "ct-" + stack.RandomHex(12), DatastoreID: w.DS, ResourceType: w.Type, Operation: w.Op,
		EventTime: w.LastUpdated.Truncate(time.Second), Region: "us-east-1", Account: "123456789012",
	}, "eb-"+stack.RandomHex(12), "req-"+stack.RandomHex(8))
	if err != nil {
		h.t.Fatal(err)
	}
	return w, rec
}

func resource(rt, id string, n int) map[string]any {
	r := map[string]any{"resourceType": rt}
	if id != "" {
		r["id"] = id
	}
	switch rt {
	case "Observation":
		r["status"] = "final"
		r["code"] = map[string]any{"text": "heart rate"}
		r["valueQuantity"] = map[string]any{"value": 60 + n, "unit": "beats/min"}
	case "Patient":
		r["name"] = []any{map[string]any{"family": "Test", "given": []string{"Synthetic" + strconv.Itoa(n)}}}
	default:
		r["status"] = "finished"
	}
	return r
}

// feed hands records to the pipeline as one shard would, in order, each acked into h.acked.
func (h *harness) feed(records ...[]byte) {
	h.t.Helper()
	h.feedCtx(context.Background(), records...)
}

// feedCtx is feed with the context a KCL batch hook returned (its span in it).
func (h *harness) feedCtx(ctx context.Context, records ...[]byte) {
	h.t.Helper()
	for _, data := range records {
		seq := h.seq.Add(1)
		h.fed.Add(1)
		var once sync.Once
		err := h.pipe.Handle(ctx, pipeline.Record{
			ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprintf("%056d", seq), Data: data,
		}, func() { once.Do(func() { h.acked.Add(1) }) })
		if err != nil {
			h.t.Fatalf("Handle: %v", err)
		}
	}
}

// waitAcked waits until every fed record is acked.
func (h *harness) waitAcked(timeout time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for h.acked.Load() < h.fed.Load() {
		if time.Now().After(deadline) {
			h.t.Fatalf("%d of %d records acked after %v; stats %+v", h.acked.Load(), h.fed.Load(), timeout, h.pipe.Stats().Snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// emitted is one event the recorder received from this harness, its detail decoded both as a
// change (d) and as a Record Rejected report (r): the fields that do not apply stay empty.
type emitted struct {
	recorded.Line
	d event.ChangeDetail
	r event.Rejected
}

// events reads what the recorder wrote for this harness's Source.
func (h *harness) events() []emitted {
	h.t.Helper()
	var out []emitted
	for _, l := range stack.Recorded(h.t, h.source) {
		out = append(out, emitted{Line: l, d: stack.Detail[event.ChangeDetail](h.t, l), r: stack.Detail[event.Rejected](h.t, l)})
	}
	return out
}

// recorderConfig scopes failure injection to this harness's Source.
func (h *harness) recorderConfig(body string) {
	h.t.Helper()
	var m map[string]any
	json.Unmarshal([]byte(body), &m)
	m["source"] = h.source
	b, _ := json.Marshal(m)
	res, err := http.Post(h.recorder+"/_recorder/config", "application/json", bytes.NewReader(b))
	if err != nil || res.StatusCode != http.StatusOK {
		h.t.Fatalf("recorder config %s: %v %v", b, err, res)
	}
	res.Body.Close()
}

// fhirConfig sets the FHIR server's knobs for one datastore.
func (h *harness) fhirConfig(ds, body string) {
	h.t.Helper()
	var m map[string]any
	json.Unmarshal([]byte(body), &m)
	m["datastoreId"] = ds
	b, _ := json.Marshal(m)
	res, err := http.Post(h.fhirBase+"/_admin/config", "application/json", bytes.NewReader(b))
	if err != nil || res.StatusCode != http.StatusOK {
		h.t.Fatalf("fhir config %s: %v %v", b, err, res)
	}
	res.Body.Close()
}

// waitEvents reads the recorder until every write has its event or timeout passes (a
// verification re-read may deliver a late write after its record was acked), and returns
// what it read last.
func (h *harness) waitEvents(timeout time.Duration) []emitted {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs := h.events()
		if len(h.missing(evs)) == 0 || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type rid struct{ ds, rt, id string }

// missing describes every write without an event for its resource at or after it.
func (h *harness) missing(evs []emitted) []string {
	latest := make(map[rid]time.Time)
	deleted := make(map[rid]bool)
	for _, e := range evs {
		if e.DetailType == event.DetailTypeRejected || e.DetailType == event.DetailTypeRangeFailed {
			continue
		}
		k := rid{e.d.DatastoreID, e.d.ResourceType, e.d.ID}
		if e.d.Action == "delete" {
			deleted[k] = true
		} else if e.d.LastUpdated.After(latest[k]) {
			latest[k] = e.d.LastUpdated.Time
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, w := range h.writes {
		k := rid{w.DS, w.Type, w.ID}
		if w.Op == event.Delete {
			if !deleted[k] {
				out = append(out, fmt.Sprintf("no delete event for %s/%s", w.Type, w.ID))
			}
			continue
		}
		if deleted[k] {
			continue // deleted later: the delete event stands for it
		}
		if l, ok := latest[k]; !ok || l.Before(w.LastUpdated) {
			out = append(out, fmt.Sprintf("write %s/%s v%s at %s: latest event %v", w.Type, w.ID, w.Version, w.LastUpdated.Format(time.RFC3339Nano), l))
		}
	}
	return out
}

// checkDelivered asserts the contract on what reached the bus: every write has an event for
// its resource at or after it (a delete: a delete event), and no (resource, version) twice.
func (h *harness) checkDelivered(evs []emitted) {
	h.t.Helper()
	seen := make(map[string]int)
	for _, e := range evs {
		if e.DetailType == event.DetailTypeRejected || e.DetailType == event.DetailTypeRangeFailed {
			continue
		}
		seen[e.d.DatastoreID+"/"+e.d.ResourceType+"/"+e.d.ID+"/"+e.d.VersionID+"/"+string(e.d.Action)]++
	}
	for v, n := range seen {
		if n > 1 {
			h.t.Errorf("emitted %d times: %s", n, v)
		}
	}
	miss := h.missing(evs)
	for i, m := range miss {
		if i == 10 {
			break
		}
		h.t.Error(m)
	}
	if len(miss) > 0 {
		h.t.Errorf("%d of %d writes missing; stats %+v", len(miss), len(h.writes), h.pipe.Stats().Snapshot())
	}
}

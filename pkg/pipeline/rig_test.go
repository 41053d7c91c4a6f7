package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
)

// The fast tier: pipelines on in-memory fakes of Redis (timelines, dedup), the FHIR server
// and EventBridge, driven by a fake clock. Each test runs in a synctest bubble, used only to
// know when every goroutine of the pipelines is idle (synctest.Wait); time moves only when
// the test moves the fake clock (rig.advance), timer by timer. A wait that bypassed the
// injected clock would never fire (the bubble's own clock stands still while the test
// waits), so these tests also prove the clock is injected everywhere.

// testDS is a datastore id (32 lower-case hex).
const testDS = "0123456789abcdef0123456789abcdef"

// t0 is where the fake clock starts: far from the bubble's own epoch (2000-01-01), so a
// stray time.Now in the pipeline shows in lags and ranges.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

var (
	obsKey = coalesce.Key{DatastoreID: testDS, ResourceType: "Observation"}
	patKey = coalesce.Key{DatastoreID: testDS, ResourceType: "Patient"}
)

// rig is the shared world of one test — Redis, FHIR server and bus — and the workers
// (pipelines) running on it.
type rig struct {
	t       *testing.T
	clock   *clocktest.Fake
	tl      *fakeTimelines
	fhir    *fakeFHIR
	dedup   *fakeDedup
	bus     *fakeBus
	logs    *syncBuffer
	cfg     pipeline.Config
	workers []*worker
	acks    []*ack
	seq     atomic.Int64
}

type worker struct {
	r    *rig
	name string
	pipe *pipeline.Pipeline
	tl   *tlView
	stop func()
}

// ack is one record's acknowledgement.
type ack struct{ n atomic.Int32 }

func (a *ack) done() bool { return a.n.Load() > 0 }

// unit runs f in a synctest bubble with a fresh rig; config, if set, changes the pipelines'
// settings before any starts. f gets the bubble's t (the only one it may call Fatal on).
func unit(t *testing.T, config func(*pipeline.Config), f func(t *testing.T, r *rig)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, config)
		defer r.close()
		f(t, r)
	})
}

func newRig(t *testing.T, config func(*pipeline.Config)) *rig {
	c := clocktest.New(t0)
	r := &rig{
		t: t, clock: c, tl: newFakeTimelines(c), fhir: newFakeFHIR(c), dedup: newFakeDedup(c),
		bus: &fakeBus{}, logs: &syncBuffer{},
	}
	cfg := pipeline.DefaultConfig()
	cfg.Clock = c
	cfg.Timeline = coalesce.Config{
		Window: time.Second, Settle: 2 * time.Second, Lead: time.Second, Lag: time.Second,
		MaxSpan: time.Minute, VerifyAfter: 10 * time.Second,
	}
	cfg.MinBackoff, cfg.MaxBackoff, cfg.PendingRetry = 100*time.Millisecond, 2*time.Second, 500*time.Millisecond
	cfg.ParkAttempts, cfg.ParkAfter, cfg.ParkedRetry = 3, time.Hour, 30*time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if config != nil {
		config(&cfg)
	}
	r.cfg = cfg
	return r
}

// start runs one more worker (a consumer process) on the rig's shared servers.
func (r *rig) start(name string) *worker {
	r.t.Helper()
	validator, err := cloudtrail.NewValidator(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	builder, err := event.NewBuilder(event.Options{Source: "test.unit"})
	if err != nil {
		r.t.Fatal(err)
	}
	view := r.tl.as(name)
	p, err := pipeline.New(r.cfg, pipeline.Parts{
		Validator: validator, FHIR: r.fhir, Timelines: view,
		NewClaims: r.dedup.newClaims, Emitter: r.bus, Events: builder,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	var once sync.Once
	w := &worker{r: r, name: name, pipe: p, tl: view, stop: func() { once.Do(func() { cancel(); <-done }) }}
	r.workers = append(r.workers, w)
	return w
}

// crash stops w as a killed process stops: it writes nothing more to Redis (its leases
// stay until they expire), and it stops.
func (w *worker) crash() {
	w.tl.down.Store(true)
	w.stop()
}

// close stops every worker and checks that no record was acked twice.
func (r *rig) close() {
	for _, w := range r.workers {
		w.stop()
	}
	for i, a := range r.acks {
		if n := a.n.Load(); n > 1 {
			r.t.Errorf("record %d acked %d times", i, n)
		}
	}
}

// advance moves the fake clock d forward the way real time would pass: timer by timer, in
// deadline order, letting every goroutine finish what a timer started before the next one.
func (r *rig) advance(d time.Duration) {
	end := r.clock.Now().Add(d)
	for {
		synctest.Wait()
		at, ok := r.clock.NextDeadline()
		if !ok || at.After(end) {
			break
		}
		r.clock.Set(at)
	}
	r.clock.Set(end)
	synctest.Wait()
}

// advanceUntil advances in steps of step until cond holds, at most limit; it returns how long
// that took, or fails the test.
func (r *rig) advanceUntil(what string, step, limit time.Duration, cond func() bool) time.Duration {
	r.t.Helper()
	synctest.Wait()
	for waited := time.Duration(0); ; waited += step {
		if cond() {
			return waited
		}
		if waited >= limit {
			r.t.Fatalf("%s: not after %v (now %v)", what, limit, r.clock.Now().Sub(t0))
		}
		r.advance(step)
	}
}

// hint feeds the CloudTrail record of a change to k at the clock's now (its eventTime, in
// whole seconds) to w, and returns its ack.
func (w *worker) hint(k coalesce.Key, op event.Operation) *ack {
	w.r.t.Helper()
	return w.hintAt(k, op, w.r.clock.Now())
}

// hintAt feeds a record whose eventTime is at.
func (w *worker) hintAt(k coalesce.Key, op event.Operation, at time.Time) *ack {
	w.r.t.Helper()
	seq := w.r.seq.Add(1)
	rec, err := cloudtrail.Encode(cloudtrail.Change{
		EventID: fmt.Sprintf("ct-%06d", seq), DatastoreID: k.DatastoreID, ResourceType: k.ResourceType, Operation: op,
		EventTime: at.Truncate(time.Second), Region: "us-east-1", Account: "123456789012",
	}, fmt.Sprintf("eb-%06d", seq), fmt.Sprintf("req-%06d", seq))
	if err != nil {
		w.r.t.Fatal(err)
	}
	return w.feed(rec)
}

// feed hands w one record as a shard would.
func (w *worker) feed(data []byte) *ack {
	w.r.t.Helper()
	a := &ack{}
	w.r.acks = append(w.r.acks, a)
	seq := w.r.seq.Add(1)
	err := w.pipe.Handle(context.Background(), pipeline.Record{
		ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprintf("%056d", seq), Data: data,
	}, func() { a.n.Add(1) })
	if err != nil {
		w.r.t.Fatalf("Handle: %v", err)
	}
	return a
}

// write makes a change on the FHIR server now and feeds its hint to w.
func (w *worker) write(k coalesce.Key, id string) (string, *ack) {
	id, _ = w.r.fhir.write(k, id)
	return id, w.hint(k, event.Create)
}

// changes counts the change events on the bus per "type/id/version/action".
func (r *rig) changes() map[string]int {
	out := make(map[string]int)
	for _, e := range r.bus.events("") {
		if e.isChange() {
			d := detail[event.ChangeDetail](e)
			out[d.ResourceType+"/"+d.ID+"/"+d.VersionID+"/"+string(d.Action)]++
		}
	}
	return out
}

// emittedOnce fails unless the bus holds exactly want change events, none twice.
func (r *rig) emittedOnce(want int) {
	r.t.Helper()
	got := r.changes()
	for c, n := range got {
		if n > 1 {
			r.t.Errorf("emitted %d times: %s", n, c)
		}
	}
	if len(got) != want {
		r.t.Errorf("%d distinct changes emitted, want %d: %v", len(got), want, got)
	}
}

func (r *rig) hasEvent(k coalesce.Key, id string) bool {
	for c := range r.changes() {
		if strings.HasPrefix(c, k.ResourceType+"/"+id+"/") {
			return true
		}
	}
	return false
}

// hintRange is the range the pipeline needs covered for a hint made at at.
func (r *rig) hintRange(at time.Time) coalesce.Interval {
	return r.cfg.Timeline.HintRange(at, at)
}

// count is how many times sub was logged (syncBuffer is telemetry_test.go's).
func (s *syncBuffer) count(sub string) int { return strings.Count(s.String(), sub) }

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// Searcher reads what changed from the FHIR server.
type Searcher interface {
	Search(ctx context.Context, datastoreID, resourceType string, from, to time.Time, visit func(fhir.Page) error) error
	// HistoryRange reads the type's history within [from, to) only.
	HistoryRange(ctx context.Context, datastoreID, resourceType string, from, to time.Time, visit func(fhir.HistoryPage) error) error
}

// Claims is one search's view of the dedup store. Each search gets its own, so two searches
// of this process that overlap (a verification re-read and a parked retry, say) never both
// win the same change.
type Claims interface {
	Claim(ctx context.Context, ids []dedup.Identity) ([]dedup.Result, error)
	MarkDone(ctx context.Context, ids []dedup.Identity) error
	Release(ctx context.Context, ids []dedup.Identity) error
}

// Emitter puts entries on the bus and reports failures by index.
type Emitter interface {
	Emit(ctx context.Context, entries []ebtypes.PutEventsRequestEntry) []error
}

// Counter counts the resources of a range with one request (`_summary=count`). ok is false
// when the server ignored the request (no total, or entries returned): verification then
// re-reads the range instead.
type Counter interface {
	Count(ctx context.Context, datastoreID, resourceType string, from, to time.Time) (n int, ok bool, err error)
}

// Timelines is the shared state of the keys' timelines (package timeline, on Redis).
type Timelines interface {
	Sync(ctx context.Context, k coalesce.Key, w timeline.Want, tryLease bool) (timeline.State, error)
	Advance(ctx context.Context, k coalesce.Key, old coalesce.Timeline, chunk coalesce.Interval, verifyAt time.Time) error
	Release(ctx context.Context, k coalesce.Key) error
	Deletes(ctx context.Context, k coalesce.Key, iv coalesce.Interval) ([]timeline.HistoryHint, error)
	DeletesBefore(ctx context.Context, k coalesce.Key, t time.Time) ([]timeline.HistoryHint, error)
	ForgetDeletes(ctx context.Context, k coalesce.Key, hs []timeline.HistoryHint) error
	DueKeys(ctx context.Context, now time.Time, limit int) ([]coalesce.Key, error)
	Due(ctx context.Context, k coalesce.Key, now time.Time) ([]timeline.Obligation, error)
	Verified(ctx context.Context, k coalesce.Key, done []timeline.Obligation) error
	Seen(ctx context.Context, k coalesce.Key, seen []timeline.Latest) error
	Gone(ctx context.Context, k coalesce.Key, ids []string) error
	Hinted(ctx context.Context, k coalesce.Key, iv coalesce.Interval) (func(time.Time) bool, error)
	Expected(ctx context.Context, k coalesce.Key, iv coalesce.Interval) (int, error)
	Park(ctx context.Context, p timeline.Parked) error
	Unpark(ctx context.Context, p timeline.Parked) error
	ListParked(ctx context.Context) ([]timeline.Parked, error)
	LeaseParked(ctx context.Context, p timeline.Parked) (bool, error)
	NoteTypes(ctx context.Context, datastoreID string, now time.Time, types ...string) error
	KnownTypes(ctx context.Context, datastoreID string, now time.Time) ([]string, error)
	KnownDatastores(ctx context.Context, now time.Time) ([]string, error)
	LeaseSweep(ctx context.Context, datastoreID string, ttl time.Duration) (bool, error)
	LeaseWatermark(ctx context.Context, datastoreID string, ttl time.Duration) (bool, error)
	Final(ctx context.Context, k coalesce.Key) (time.Time, error)
	RaiseWatermark(ctx context.Context, datastoreID string, t time.Time) (time.Time, error)
}

// ImportJobs reads an import job's times (HealthLake's DescribeFHIRImportJob). end is zero
// while the job has none.
type ImportJobs interface {
	DescribeImport(ctx context.Context, datastoreID, jobID string) (submit, end time.Time, err error)
}

// Parts are the pipeline's collaborators.
type Parts struct {
	Validator *cloudtrail.Validator
	FHIR      Searcher
	// Timelines coordinates the keys' searches between workers. Required.
	Timelines Timelines
	// NewClaims returns a fresh claim owner for one search; nil only with NoDedup.
	NewClaims func() Claims
	Emitter   Emitter
	Events    event.Builder
	// ImportJobs, if set, gives an import's time range; without it the range runs from the
	// event's submitTime (or ImportLookback before the event) to the event.
	ImportJobs ImportJobs
}

// Record is one Kinesis record as the pipeline needs it.
type Record struct {
	ShardID, SequenceNumber string
	Data                    []byte
}

// errStopped is returned by Handle once the pipeline no longer takes records.
var errStopped = errors.New("pipeline stopped")

type hintMsg struct {
	change cloudtrail.Change
	done   func()
	link   trace.SpanContext // the delivering batch's span, if any
}

type rejectMsg struct {
	decision cloudtrail.Decision
	shard    string
	seq      string
	done     func()
}

// Pipeline turns records into change events. Handle feeds it; Run drives it.
type Pipeline struct {
	cfg   Config
	parts Parts
	stats Stats

	tracer trace.Tracer
	met    instruments

	hints   chan hintMsg
	sweeps  chan coalesce.Key // keys a sweep asked to run
	rejects chan rejectMsg
	stopped chan struct{}
	stop    sync.Once
	fhirSem chan struct{}

	// failures are the permanent failures of a key's next chunk, until it is parked.
	failMu   sync.Mutex
	failures map[coalesce.Key]*failure
	// parkedTail is the last range parked per key, which a failure of the next chunk grows.
	parkedTail map[coalesce.Key]timeline.Parked
	// watermarks are the last ones this worker published, for the age gauge.
	watermarks watermarks
	// countIgnored is set once the server ignored a count request (logged once).
	countIgnored atomic.Bool
	// busy are the keys a goroutine of this worker is running or verifying. The search
	// lease is the worker's, not a goroutine's: without this, a key's run and the verify
	// loop would both verify its due obligations, and the later one — counting after the
	// first forgot the versions its count is compared with — re-reads the range for nothing.
	busyMu sync.Mutex
	busy   map[coalesce.Key]struct{}
}

// claimKey marks k busy for the caller; false when another goroutine of this worker has it.
func (p *Pipeline) claimKey(k coalesce.Key) bool {
	p.busyMu.Lock()
	defer p.busyMu.Unlock()
	if _, ok := p.busy[k]; ok {
		return false
	}
	p.busy[k] = struct{}{}
	return true
}

func (p *Pipeline) unclaimKey(k coalesce.Key) {
	p.busyMu.Lock()
	delete(p.busy, k)
	p.busyMu.Unlock()
}

// New checks cfg and parts and returns a Pipeline that is not running yet.
func New(cfg Config, parts Parts) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline config: %w", err)
	}
	if parts.Validator == nil || parts.FHIR == nil || parts.Emitter == nil || parts.Timelines == nil {
		return nil, errors.New("pipeline: validator, FHIR client, timelines and emitter are required")
	}
	if parts.NewClaims == nil && !cfg.NoDedup {
		return nil, errors.New("pipeline: a dedup store is required unless dedup is turned off")
	}
	p := &Pipeline{
		cfg:        cfg,
		parts:      parts,
		tracer:     cfg.TracerProvider.Tracer(instrumentationName),
		hints:      make(chan hintMsg, 1024),
		sweeps:     make(chan coalesce.Key, 1024),
		rejects:    make(chan rejectMsg, 256),
		stopped:    make(chan struct{}),
		fhirSem:    make(chan struct{}, cfg.FHIRConcurrency),
		failures:   make(map[coalesce.Key]*failure),
		parkedTail: make(map[coalesce.Key]timeline.Parked),
		busy:       make(map[coalesce.Key]struct{}),
	}
	met, err := newInstruments(cfg.MeterProvider.Meter(instrumentationName), &p.stats)
	if err != nil {
		return nil, fmt.Errorf("pipeline metrics: %w", err)
	}
	p.met = met
	if err := p.watermarkGauge(cfg.MeterProvider.Meter(instrumentationName)); err != nil {
		return nil, fmt.Errorf("pipeline metrics: %w", err)
	}
	return p, nil
}

// Stats are the live counters.
func (p *Pipeline) Stats() *Stats { return &p.stats }

// Handle takes one Kinesis record. done runs once the record is fully processed: at once for
// skipped records, after the report for rejected ones, and for accepted ones once the key's
// timeline covers the hint's range (searched by this worker or another).
// It blocks while the pipeline is busy (backpressure) and fails once the pipeline stopped.
// The span in ctx (the KCL batch's) is kept with the record: its window's span links to it.
func (p *Pipeline) Handle(ctx context.Context, r Record, done func()) error {
	d := p.parts.Validator.Decide(r.Data)
	p.met.countRecord(ctx, d)
	switch d.Outcome {
	case cloudtrail.Act:
		p.stats.RecordsAct.Add(1)
		return send(ctx, p.stopped, p.hints, hintMsg{change: d.Change, done: done, link: trace.SpanContextFromContext(ctx)})
	case cloudtrail.Reject:
		p.stats.RecordsRejected.Add(1)
		p.cfg.Logger.WarnContext(ctx, "record rejected", "reason", string(d.Reason), "detail", d.Detail,
			"shard", r.ShardID, "sequenceNumber", r.SequenceNumber)
		return send(ctx, p.stopped, p.rejects, rejectMsg{decision: d, shard: r.ShardID, seq: r.SequenceNumber, done: done})
	default:
		p.stats.RecordsSkipped.Add(1)
		done()
		return nil
	}
}

func send[T any](ctx context.Context, stopped <-chan struct{}, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-stopped:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run drives the pipeline until ctx ends, then stops taking records and waits for its
// goroutines. Hints not yet covered are abandoned un-acked: their records are read again
// after a restart, and the shared timeline and dedup keep that from searching or emitting
// twice. The leases this worker holds are given up on the way out.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { p.schedule(ctx, &wg) })
	wg.Go(func() { p.verifyLoop(ctx) })
	if p.cfg.SweepInterval > 0 {
		wg.Go(func() { p.sweepLoop(ctx) })
	}
	if p.cfg.WatermarkInterval > 0 {
		wg.Go(func() { p.watermarkLoop(ctx) })
	}
	if p.cfg.ParkedRetry > 0 {
		wg.Go(func() { p.retryParkedLoop(ctx) })
	}
	wg.Go(func() { p.reportRejects(ctx) })
	<-ctx.Done()
	p.stop.Do(func() { close(p.stopped) })
	wg.Wait()
	return nil
}

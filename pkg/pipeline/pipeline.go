package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
)

// Searcher reads what changed from the FHIR server.
type Searcher interface {
	Search(ctx context.Context, datastoreID, resourceType string, from, to time.Time, visit func(fhir.Page) error) error
	History(ctx context.Context, datastoreID, resourceType string, since time.Time, visit func(fhir.HistoryPage) error) error
}

// Claims is one attempt's view of the dedup store. Each window attempt gets its own, so two
// windows of this process that overlap never both win the same change.
type Claims interface {
	Claim(ctx context.Context, ids []dedup.Identity) ([]dedup.Result, error)
	MarkDone(ctx context.Context, ids []dedup.Identity) error
	Release(ctx context.Context, ids []dedup.Identity) error
}

// Emitter puts entries on the bus and reports failures by index.
type Emitter interface {
	Emit(ctx context.Context, entries []ebtypes.PutEventsRequestEntry) []error
}

// Parts are the pipeline's collaborators.
type Parts struct {
	Validator *cloudtrail.Validator
	FHIR      Searcher
	// NewClaims returns a fresh claim owner for one window attempt; nil only with NoDedup.
	NewClaims func() Claims
	Emitter   Emitter
	Events    event.Builder
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
	rejects chan rejectMsg
	stopped chan struct{}
	stop    sync.Once
	fhirSem chan struct{}
}

// New checks cfg and parts and returns a Pipeline that is not running yet.
func New(cfg Config, parts Parts) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pipeline config: %w", err)
	}
	if parts.Validator == nil || parts.FHIR == nil || parts.Emitter == nil {
		return nil, errors.New("pipeline: validator, FHIR client and emitter are required")
	}
	if parts.NewClaims == nil && !cfg.NoDedup {
		return nil, errors.New("pipeline: a dedup store is required unless dedup is turned off")
	}
	p := &Pipeline{
		cfg:     cfg,
		parts:   parts,
		tracer:  cfg.TracerProvider.Tracer(instrumentationName),
		hints:   make(chan hintMsg, 1024),
		rejects: make(chan rejectMsg, 256),
		stopped: make(chan struct{}),
		fhirSem: make(chan struct{}, cfg.FHIRConcurrency),
	}
	met, err := newInstruments(cfg.MeterProvider.Meter(instrumentationName), &p.stats)
	if err != nil {
		return nil, fmt.Errorf("pipeline metrics: %w", err)
	}
	p.met = met
	return p, nil
}

// Stats are the live counters.
func (p *Pipeline) Stats() *Stats { return &p.stats }

// Handle takes one Kinesis record. done runs once the record is fully processed: at once for
// skipped records, after the report for rejected ones, after the window for accepted ones.
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
// goroutines. Windows still in flight are abandoned un-acked: their records are read again
// after a restart, and dedup keeps that from emitting twice.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { p.schedule(ctx, &wg) })
	wg.Go(func() { p.reportRejects(ctx) })
	<-ctx.Done()
	p.stop.Do(func() { close(p.stopped) })
	wg.Wait()
	return nil
}

// schedule owns the coalescer: it files hints into windows and starts a goroutine per
// closed window. Those goroutines join wg, which Run waits on.
func (p *Pipeline) schedule(ctx context.Context, wg *sync.WaitGroup) {
	c := coalesce.New(p.cfg.Windows)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := func(ws ...*coalesce.Window) {
		for _, w := range ws {
			wg.Go(func() { p.runWindow(ctx, w) })
		}
	}
	for {
		if next, ok := c.NextClose(); ok {
			timer.Reset(max(next.Sub(p.cfg.Now()), 0))
		} else {
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case m := <-p.hints:
			ch := m.change
			key := coalesce.Key{DatastoreID: ch.DatastoreID, ResourceType: ch.ResourceType}
			h := coalesce.Hint{EventID: ch.EventID, Time: ch.EventTime, Op: op(ch.Operation), Region: ch.Region, Account: ch.Account, Link: m.link}
			if full := c.Add(p.cfg.Now(), key, h, m.done); full != nil {
				start(full)
			}
		case <-timer.C:
			start(c.Closed(p.cfg.Now())...)
		}
	}
}

func op(o cloudtrail.Operation) coalesce.Op {
	switch o {
	case cloudtrail.Create:
		return coalesce.Create
	case cloudtrail.Delete:
		return coalesce.Delete
	default:
		return coalesce.Update
	}
}

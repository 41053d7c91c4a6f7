package kcl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kcli "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	metricnoop "go.opentelemetry.io/otel/metric/noop"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
)

// checkpointWriteTimeout bounds one checkpoint write to the lease table.
const checkpointWriteTimeout = 10 * time.Second

// tableCreateTimeout bounds the wait for a new lease table to become ACTIVE at start.
const tableCreateTimeout = 2 * time.Minute

// Consumer runs a KCL worker that feeds the stream's records to a Handler.
type Consumer struct {
	cfg    Config
	log    *slog.Logger
	h      Handler
	worker *worker.Worker
	leases *leaseTable
	shaper *kinesisShaper
	mon    *monitor

	mu      sync.Mutex
	started bool
	running atomic.Bool
	// stopCtx is Run's context, also cancelled by the first Handler error; shard processors
	// are created only after Run set it.
	stopCtx context.Context
	stop    context.CancelCauseFunc
}

// errHandler marks a Handler failure as the cause of a stop.
type errHandler struct{ err error }

func (e errHandler) Error() string { return e.err.Error() }
func (e errHandler) Unwrap() error { return e.err }

// New returns a Consumer of cfg.Stream. The clients are the caller's, built from one
// aws.Config (so AWS_ENDPOINT_URL_KINESIS / AWS_ENDPOINT_URL_DYNAMODB apply). The lease
// table cfg.Application is created at Run if it does not exist (on-demand capacity; several
// workers may start at once), but a deployment should create it beforehand
// (deploy/aws creates it with point-in-time recovery).
func New(cfg Config, kc *kinesis.Client, db *dynamodb.Client, h Handler) (*Consumer, error) {
	if kc == nil || db == nil || h == nil {
		return nil, errors.New("kcl: Kinesis client, DynamoDB client and handler are required")
	}
	cfg.Region = cmp.Or(cfg.Region, kc.Options().Region)
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kcl config: %w", err)
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	mon, err := newMonitor(mp.Meter(instrumentationName))
	if err != nil {
		return nil, fmt.Errorf("kcl metrics: %w", err)
	}
	c := &Consumer{
		cfg: cfg,
		log: cfg.Logger.With("stream", cfg.Stream, "application", cfg.Application, "worker", cfg.WorkerID),
		h:   h,
		mon: mon,
	}
	lib := cfg.library(c.log, c.mon)
	c.leases = newLeaseTable(lib, db, cfg.InitialPosition == Latest, time.Now)
	c.shaper = newKinesisShaper(kc, cfg.KPLAggregation, time.Now)
	c.worker = worker.NewWorker(processorFactory{c}, lib).WithKinesis(c.shaper.client()).WithCheckpointer(c.leases)
	return c, nil
}

// WorkerID is this worker's name in the lease table.
func (c *Consumer) WorkerID() string { return c.cfg.WorkerID }

// Running reports whether the worker is started and not stopping (for readiness checks).
func (c *Consumer) Running() bool { return c.running.Load() }

// LeasesHeld is the number of shards this worker reads now.
func (c *Consumer) LeasesHeld() int { return c.mon.held() }

// InFlight is, per shard this worker reads, the records handed to the Handler and not yet
// done.
func (c *Consumer) InFlight() map[string]int { return c.mon.inFlight() }

// Shards lists, sorted, the shards this worker reads now.
func (c *Consumer) Shards() []string { return c.mon.shards() }

// Run starts the worker and blocks until ctx ends or the Handler fails, then shuts the
// worker down: each shard stops taking records, waits up to ShutdownGrace for its records in
// flight, checkpoints what was acked and releases its lease. It returns nil after a clean
// stop, the Handler's error if one stopped it, or an error if the worker did not stop within
// ShutdownTimeout — its goroutines are then left running (the library's Shutdown cannot be
// cancelled), which is acceptable only because the process is about to exit. Run may be
// called once.
func (c *Consumer) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("kcl: Run called twice")
	}
	c.started = true
	c.stopCtx, c.stop = context.WithCancelCause(ctx)
	c.mu.Unlock()
	defer c.stop(nil)

	if ctx.Err() != nil {
		return nil
	}
	c.log.Info("kcl worker starting")
	if err := c.worker.Start(); err != nil {
		return fmt.Errorf("kcl: start worker: %w", err)
	}
	c.running.Store(true)
	<-c.stopCtx.Done()
	c.running.Store(false)
	c.log.Info("kcl worker stopping", "leases", c.Shards())
	c.leases.stopping.Store(true)

	stopped := make(chan struct{})
	go func() {
		c.worker.Shutdown()
		close(stopped)
	}()
	timer := time.NewTimer(c.cfg.ShutdownTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-stopped:
		c.log.Info("kcl worker stopped")
	case <-timer.C:
		err = fmt.Errorf("kcl: worker did not stop within %s; its goroutines are abandoned", c.cfg.ShutdownTimeout)
	}
	var he errHandler
	if errors.As(context.Cause(c.stopCtx), &he) {
		err = errors.Join(he.err, err)
	}
	return err
}

// fail stops the consumer because the Handler failed; the first error wins.
func (c *Consumer) fail(err error) {
	c.log.Error("handler failed; stopping", "err", err)
	c.stop(errHandler{fmt.Errorf("kcl: %w", err)})
}

// processorFactory creates one processor per shard lease.
type processorFactory struct{ c *Consumer }

func (f processorFactory) CreateProcessor() kcli.IRecordProcessor {
	c := f.c
	return newProcessor(processorConfig{
		handler:        c.h,
		hooks:          c.cfg.Hooks,
		log:            c.log,
		maxInFlight:    c.cfg.MaxInFlightPerShard,
		maxOutstanding: outstandingFactor * c.cfg.MaxInFlightPerShard,
		interval:       c.cfg.CheckpointInterval,
		grace:          c.cfg.ShutdownGrace,
		clock:          clock.Real{},
		ctx:            c.stopCtx,
		fail:           c.fail,
		mon:            c.mon,
		leases:         c.leases,
		leaseMargin:    c.leases.margin,
		restore:        c.shaper.restore,
	})
}

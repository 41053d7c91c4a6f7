package kcl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	kcli "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/ack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// processorConfig is what every shard's processor shares.
type processorConfig struct {
	handler        Handler
	hooks          Hooks
	log            *slog.Logger
	maxInFlight    int
	maxOutstanding int
	interval       time.Duration // least time between checkpoint writes
	grace          time.Duration // wait for in-flight acks on a requested shutdown
	clock          clock.Clock   // the time a processor sees; tests inject a clocktest.Fake
	// ctx ends when the consumer stops taking records; Handle gets it.
	ctx context.Context
	// fail reports a Handler error; the consumer stops.
	fail func(error)
	// mon observes the shard's records in flight; nil in tests.
	mon *monitor
	// leases tells the processor when its lease is ending and releases it; nil in tests.
	leases leaseSource
	// leaseMargin: the hand-over of an ending lease checkpoints no later than this before
	// the lease expires (the lease table refuses checkpoints closer to expiry).
	leaseMargin time.Duration
	// restore returns the original bytes of a record the Kinesis client escaped; nil: none.
	restore func(shard, seq string) ([]byte, bool)
}

// leaseSource is what a processor needs of the lease table.
type leaseSource interface {
	watch(shardID string) *leaseWatch
	release(shardID string) error
}

// errLeaseEnding cancels the Handler's context when the shard's lease is ending.
var errLeaseEnding = errors.New("kcl: the shard's lease is ending")

// processor is the library's IRecordProcessor for one shard lease. The library calls
// Initialize, ProcessRecords and Shutdown from the shard's reader goroutine, one at a time;
// done funcs run on pipeline goroutines and touch only the tracker and the acked signal.
type processor struct {
	processorConfig

	shardID string
	tracker *ack.Tracker
	acked   chan struct{} // signalled (without blocking) after every ack

	written   string    // last checkpoint written, or the one the lease started from
	lastWrite time.Time // time of the last write attempt
	// stopped: no more records are taken. dropped: a record was not handed over (so the
	// shard must not be ended even if every taken record is acked). handedOver: the lease
	// ended and the processor let go of it; the reader's remaining calls do nothing.
	stopped, dropped, handedOver bool

	// lease follows the shard's lease (nil without a lease table). leaseCtx ends when the
	// consumer stops or the lease is ending; the Handler gets it.
	lease       *leaseWatch
	leaseCtx    context.Context
	cancelLease context.CancelCauseFunc
}

var _ kcli.IRecordProcessor = (*processor)(nil)

func newProcessor(c processorConfig) *processor {
	return &processor{processorConfig: c, tracker: ack.New(), acked: make(chan struct{}, 1)}
}

// Initialize remembers the shard and the checkpoint its lease starts from.
func (p *processor) Initialize(in *kcli.InitializationInput) {
	p.shardID = in.ShardId
	if in.ExtendedSequenceNumber != nil {
		p.written = aws.ToString(in.ExtendedSequenceNumber.SequenceNumber)
	}
	p.lastWrite = p.clock.Now()
	p.mon.track(p.shardID, p.tracker)
	p.leaseCtx, p.cancelLease = context.WithCancelCause(p.ctx)
	if p.leases != nil {
		p.lease = p.leases.watch(p.shardID)
	}
	if p.lease != nil {
		lease, cancel, done := p.lease, p.cancelLease, p.leaseCtx.Done()
		go func() {
			select {
			case <-lease.ending:
				cancel(errLeaseEnding)
			case <-done:
			}
		}()
		// The library ends a reader without Shutdown when its lease renewal or a GetRecords
		// call failed; the tracker and gauges must not outlive it.
		tracker := p.tracker
		lease.onReaderEnd(func() {
			p.mon.untrack(p.shardID, tracker)
			cancel(errReaderEnded)
		})
	}
	p.log.Debug("shard processor started", "shard", p.shardID, "checkpoint", p.written)
}

// leaseEnding reports whether the shard's lease is ending (taken over, claimed by another
// worker, not renewed, or refused a checkpoint).
func (p *processor) leaseEnding() bool { return p.lease != nil && p.lease.isEnding() }

// ProcessRecords hands a batch to the Handler in order, blocking while the shard has
// MaxInFlightPerShard records in flight, then checkpoints the acked prefix if it moved and
// CheckpointInterval passed.
func (p *processor) ProcessRecords(in *kcli.ProcessRecordsInput) {
	if p.handedOver || p.leaseEnding() {
		if len(in.Records) > 0 {
			p.dropped = true
		}
		p.handOver(in.Checkpointer)
		return
	}
	ctx := p.leaseCtx
	if p.hooks.OnBatch != nil {
		var end func()
		ctx, end = p.hooks.OnBatch(ctx, Batch{ShardID: p.shardID, Records: len(in.Records), MillisBehindLatest: in.MillisBehindLatest})
		if end != nil {
			defer end()
		}
	}
	recs := in.Records
	for i := 0; i < len(recs); {
		// Records de-aggregated from one KPL record share a sequence number: they are one
		// entry in the tracker, done when all of its parts are.
		j := i + 1
		for j < len(recs) && aws.ToString(recs[j].SequenceNumber) == aws.ToString(recs[i].SequenceNumber) {
			j++
		}
		if !p.handGroup(ctx, recs[i:j], in.Checkpointer) {
			p.dropped = true
			break
		}
		i = j
	}
	if p.leaseEnding() {
		p.handOver(in.Checkpointer)
		return
	}
	p.maybeCheckpoint(in.Checkpointer, false)
}

// handOver lets go of a shard whose lease is ending, once: no more records are taken; the
// records in flight get up to the shutdown grace — but no closer to the lease's expiry than
// twice the margin — to be acked; the acked prefix is checkpointed and the lease released,
// so a worker that claimed the shard takes it at once and reads on from there.
func (p *processor) handOver(cp kcli.IRecordProcessorCheckpointer) {
	if p.handedOver {
		return
	}
	p.handedOver, p.stopped = true, true
	reason := p.lease.why()
	wait := min(p.grace, p.lease.leaseLeft(p.clock.Now())-2*p.leaseMargin)
	if wait > 0 && !errors.Is(reason, ErrLeaseLost) && !errors.Is(reason, errReaderEnded) {
		p.waitAcked(cp, wait, p.ctx.Done())
	}
	if !errors.Is(reason, ErrLeaseLost) {
		p.maybeCheckpoint(cp, true)
	}
	if err := p.leases.release(p.shardID); err != nil {
		var ccf *ddbtypes.ConditionalCheckFailedException
		if !errors.As(err, &ccf) { // not ours any more: nothing to release
			p.log.Warn("could not release lease", "shard", p.shardID, "err", err)
		}
	}
	p.mon.untrack(p.shardID, p.tracker)
	p.cancelLease(errLeaseEnding)
	p.log.Info("shard handed over: lease ending", "shard", p.shardID, "reason", reason,
		"checkpoint", p.written, "inFlight", p.tracker.InFlight())
}

// handGroup hands the records of one sequence number to the Handler; false means the shard
// stopped taking records.
func (p *processor) handGroup(ctx context.Context, group []types.Record, cp kcli.IRecordProcessorCheckpointer) bool {
	if p.stopped || p.leaseEnding() || !p.waitForRoom(cp) {
		p.stopped = true
		return false
	}
	seq := aws.ToString(group[0].SequenceNumber)
	tk, err := p.tracker.Add(seq)
	if err != nil {
		// Kinesis never sends this; if it did, no checkpoint could be placed safely past it.
		// Stop loudly rather than stall one shard in silence.
		p.fail(fmt.Errorf("shard %s: %w", p.shardID, err))
		p.stopped = true
		return false
	}
	var left atomic.Int64
	left.Store(int64(len(group)))
	for _, r := range group {
		var once sync.Once
		done := func() {
			once.Do(func() {
				if left.Add(-1) == 0 {
					p.tracker.Done(tk)
					select {
					case p.acked <- struct{}{}:
					default:
					}
				}
			})
		}
		data := r.Data
		if p.restore != nil {
			if orig, ok := p.restore(p.shardID, seq); ok {
				data = orig
			}
		}
		rec := Record{
			ShardID:        p.shardID,
			SequenceNumber: seq,
			PartitionKey:   aws.ToString(r.PartitionKey),
			Data:           data,
			ArrivalTime:    aws.ToTime(r.ApproximateArrivalTimestamp),
		}
		if err := p.handler.Handle(ctx, rec, done); err != nil {
			if p.leaseCtx.Err() == nil {
				p.fail(fmt.Errorf("handler, shard %s, sequence number %s: %w", p.shardID, seq, err))
			}
			p.stopped = true
			return false
		}
	}
	return true
}

// waitForRoom blocks until the shard may take another record, checkpointing as acks come
// in. It returns false if the consumer stops, the lease is ending or a checkpoint found the
// lease lost first.
func (p *processor) waitForRoom(cp kcli.IRecordProcessorCheckpointer) bool {
	for p.tracker.InFlight() >= p.maxInFlight || p.tracker.Outstanding() >= p.maxOutstanding {
		p.maybeCheckpoint(cp, false)
		if p.stopped {
			return false
		}
		select {
		case <-p.acked:
		case <-p.leaseCtx.Done():
			return false
		}
	}
	return true
}

// waitAcked waits until every taken record is done, or until limit passed (0: no limit) or
// cancel; it reports whether all are done. Meanwhile it keeps checkpointing the acked prefix,
// so a long wait (a shard end waiting on a slow window) does not hold the checkpoint back.
func (p *processor) waitAcked(cp kcli.IRecordProcessorCheckpointer, limit time.Duration, cancel <-chan struct{}) bool {
	var deadline <-chan time.Time // nil: never
	if limit > 0 {
		t := p.clock.NewTimer(limit)
		defer t.Stop()
		deadline = t.C()
	}
	tick := p.clock.NewTimer(p.interval)
	defer tick.Stop()
	for p.tracker.Pending() {
		select {
		case <-p.acked:
		case <-tick.C():
			tick.Reset(p.interval)
		case <-deadline:
			return !p.tracker.Pending()
		case <-cancel:
			return !p.tracker.Pending()
		}
		p.maybeCheckpoint(cp, false)
	}
	return true
}

// maybeCheckpoint writes the end of the acked prefix if it moved since the last write and,
// unless force, CheckpointInterval passed since the last attempt.
func (p *processor) maybeCheckpoint(cp kcli.IRecordProcessorCheckpointer, force bool) {
	seq, ok := p.tracker.Checkpoint()
	if !ok || seq == p.written {
		return
	}
	now := p.clock.Now()
	if !force && now.Sub(p.lastWrite) < p.interval {
		return
	}
	p.lastWrite = now
	err := cp.Checkpoint(&seq)
	if p.hooks.OnCheckpoint != nil {
		p.hooks.OnCheckpoint(p.shardID, seq, err)
	}
	if err != nil {
		p.checkpointFailed(err)
		return
	}
	p.written = seq
}

func (p *processor) checkpointFailed(err error) {
	if errors.Is(err, ErrLeaseLost) {
		// Another worker reads this shard now. Keep out of its way: records in flight here
		// are read again there, and dedup absorbs the duplicates.
		p.log.Warn("shard stopped: lease lost", "shard", p.shardID, "err", err)
		p.stopped = true
		return
	}
	p.log.Warn("checkpoint failed; retrying at the next one", "shard", p.shardID, "err", err)
}

// Shutdown ends the processor. The library delivers REQUESTED (the worker stops) and
// TERMINATE (the shard was read to its end after a reshard); ZOMBIE is never delivered — a
// lost lease shows in the lease table's watch instead, and handOver ends the processor.
//
// REQUESTED waits up to the grace period for in-flight records, then checkpoints the acked
// prefix. TERMINATE waits for every record (for as long as the consumer runs and the lease
// lasts), then writes SHARD_END, which lets the child shards start; writing it any earlier
// would lose the records still in flight. If the consumer stops first, TERMINATE acts like
// REQUESTED and the next owner finishes the shard; if the lease ends first, the shard is
// handed over.
func (p *processor) Shutdown(in *kcli.ShutdownInput) {
	if p.handedOver {
		return
	}
	p.stopped = true
	defer p.mon.untrack(p.shardID, p.tracker)
	defer p.cancelLease(nil)
	all := false
	if in.ShutdownReason == kcli.TERMINATE && !p.dropped {
		all = p.waitAcked(in.Checkpointer, 0, p.leaseCtx.Done())
	}
	if p.leaseEnding() {
		p.handOver(in.Checkpointer)
		return
	}
	if !all {
		all = p.waitAcked(in.Checkpointer, p.grace, nil)
	}
	if in.ShutdownReason == kcli.TERMINATE && all && !p.dropped {
		p.endShard(in.Checkpointer)
		return
	}
	p.maybeCheckpoint(in.Checkpointer, true)
	p.log.Debug("shard processor stopped", "shard", p.shardID, "reason", aws.ToString(kcli.ShutdownReasonMessage(in.ShutdownReason)),
		"checkpoint", p.written, "inFlight", p.tracker.InFlight())
}

// endShardPolicy bounds the attempts to write SHARD_END: until it is written the children
// wait, but a worker that cannot write it leaves it to the shard's next owner. No jitter:
// one writer per shard, nobody to spread the retries from.
var endShardPolicy = retry.Policy{Base: 250 * time.Millisecond, Max: 500 * time.Millisecond, MaxAttempts: 3, Rand: func() float64 { return 1 }}

// endShard writes SHARD_END, retrying a few times (endShardPolicy); a lost lease stops it at
// once.
func (p *processor) endShard(cp kcli.IRecordProcessorCheckpointer) {
	policy := endShardPolicy
	policy.Clock = p.clock
	// Not p.ctx: the consumer may be stopping already, and the shard end is worth writing then
	// too; the attempts are bounded.
	err := policy.Do(context.WithoutCancel(p.ctx), func(context.Context, int) error {
		err := cp.Checkpoint(nil)
		if p.hooks.OnCheckpoint != nil {
			p.hooks.OnCheckpoint(p.shardID, ShardEnd, err)
		}
		if errors.Is(err, ErrLeaseLost) {
			return retry.Permanent(err)
		}
		return err
	})
	if err == nil {
		p.written = ShardEnd
		p.log.Info("shard ended", "shard", p.shardID)
		return
	}
	// The next owner reads the shard's tail again and ends it; save it what we can.
	p.log.Warn("could not end shard", "shard", p.shardID, "err", err)
	if !errors.Is(err, ErrLeaseLost) {
		p.maybeCheckpoint(cp, true)
	}
}

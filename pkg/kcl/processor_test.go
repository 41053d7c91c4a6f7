package kcl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	kcli "github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
)

func seqOf(i int) string { return fmt.Sprintf("4959%052d", i) }

func records(from, n int) []types.Record {
	rs := make([]types.Record, n)
	for i := range rs {
		rs[i] = types.Record{
			SequenceNumber: aws.String(seqOf(from + i)),
			PartitionKey:   aws.String("pk"),
			Data:           []byte(fmt.Sprint(from + i)),
		}
	}
	return rs
}

// fakeCheckpointer is the library's IRecordProcessorCheckpointer, recording the writes.
type fakeCheckpointer struct {
	mu     sync.Mutex
	writes []string // "SHARD_END" for Checkpoint(nil)
	err    error
	fails  int // the first fails calls fail with err, when set; else every call does
	calls  int
}

func (f *fakeCheckpointer) Checkpoint(seq *string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil && (f.fails == 0 || f.calls <= f.fails) {
		return f.err
	}
	if seq == nil {
		f.writes = append(f.writes, ShardEnd)
	} else {
		f.writes = append(f.writes, *seq)
	}
	return nil
}

func (f *fakeCheckpointer) PrepareCheckpoint(*string) (kcli.IPreparedCheckpointer, error) {
	return nil, errors.New("not used")
}

func (f *fakeCheckpointer) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// waitTimer waits until the processor armed a timer of d from now on c, and it is the next
// to fire.
func waitTimer(t *testing.T, c *clocktest.Fake, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if at, ok := c.NextDeadline(); ok && at.Equal(c.Now().Add(d)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s timer started", d)
		}
		time.Sleep(time.Millisecond)
	}
}

// holdingHandler keeps every record's done func for the test to call.
type holdingHandler struct {
	mu    sync.Mutex
	recs  []Record
	dones []func()
	more  chan struct{} // signalled after every Handle
	errAt int           // Handle fails for this record number (data), if > 0
}

func newHoldingHandler() *holdingHandler { return &holdingHandler{more: make(chan struct{}, 1000)} }

func (h *holdingHandler) Handle(_ context.Context, r Record, done func()) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.errAt > 0 && string(r.Data) == fmt.Sprint(h.errAt) {
		return errors.New("pipeline broken")
	}
	h.recs = append(h.recs, r)
	h.dones = append(h.dones, done)
	h.more <- struct{}{}
	return nil
}

func (h *holdingHandler) ack(i ...int) {
	h.mu.Lock()
	ds := slices.Clone(h.dones)
	h.mu.Unlock()
	for _, k := range i {
		ds[k]()
	}
}

func (h *holdingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.recs)
}

type harness struct {
	p      *processor
	h      *holdingHandler
	cp     *fakeCheckpointer
	clock  *clocktest.Fake
	cancel context.CancelFunc
	failed chan error
}

func newHarness(t *testing.T, maxInFlight int) *harness {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	hs := &harness{
		h:      newHoldingHandler(),
		cp:     &fakeCheckpointer{},
		clock:  clocktest.New(time.Unix(1_700_000_000, 0)),
		cancel: cancel,
		failed: make(chan error, 10),
	}
	hs.p = newProcessor(processorConfig{
		handler:        hs.h,
		log:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		maxInFlight:    maxInFlight,
		maxOutstanding: outstandingFactor * maxInFlight,
		interval:       5 * time.Second,
		grace:          time.Second,
		clock:          hs.clock,
		ctx:            ctx,
		fail:           func(err error) { hs.failed <- err },
	})
	hs.p.Initialize(&kcli.InitializationInput{ShardId: "shardId-000000000001",
		ExtendedSequenceNumber: &kcli.ExtendedSequenceNumber{SequenceNumber: aws.String("")}})
	return hs
}

func (hs *harness) process(recs []types.Record) {
	hs.p.ProcessRecords(&kcli.ProcessRecordsInput{Records: recs, Checkpointer: hs.cp})
}

// idle is an empty poll after CheckpointInterval, which writes the checkpoint if it moved.
func (hs *harness) idle() {
	hs.clock.Advance(5 * time.Second)
	hs.process(nil)
}

// async runs f and returns a channel closed when it returns.
func async(f func()) chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	return done
}

func blocked(t *testing.T, done chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
		t.Fatalf("%s returned, want it blocked", what)
	case <-time.After(50 * time.Millisecond):
	}
}

func returns(t *testing.T, done chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func TestProcessorCheckpointsOnlyAckedPrefix(t *testing.T) {
	hs := newHarness(t, 100)
	hs.process(records(1, 5))
	if n := hs.h.count(); n != 5 {
		t.Fatalf("handed %d records, want 5", n)
	}
	for i, r := range hs.h.recs {
		if r.SequenceNumber != seqOf(i+1) || r.ShardID != "shardId-000000000001" || r.PartitionKey != "pk" {
			t.Errorf("record %d = %+v", i, r)
		}
	}
	hs.idle()
	equal(t, "writes with nothing acked", hs.cp.got(), nil)

	hs.h.ack(2, 4) // records 3 and 5
	hs.idle()
	equal(t, "writes with 3 and 5 acked", hs.cp.got(), nil)

	hs.h.ack(0) // record 1
	hs.idle()
	equal(t, "writes with 1, 3, 5 acked", hs.cp.got(), []string{seqOf(1)})

	hs.h.ack(1, 1) // record 2, twice
	hs.idle()
	equal(t, "writes with 1-3, 5 acked", hs.cp.got(), []string{seqOf(1), seqOf(3)})

	hs.idle() // nothing moved: no write
	hs.h.ack(3)
	hs.idle()
	equal(t, "writes with all acked", hs.cp.got(), []string{seqOf(1), seqOf(3), seqOf(5)})
}

func TestProcessorCheckpointInterval(t *testing.T) {
	hs := newHarness(t, 100)
	hs.process(records(1, 3))
	hs.h.ack(0, 1, 2)
	hs.process(nil)
	hs.clock.Advance(4 * time.Second)
	hs.process(nil)
	equal(t, "writes before the interval", hs.cp.got(), nil)
	hs.clock.Advance(time.Second)
	hs.process(nil)
	equal(t, "writes after the interval", hs.cp.got(), []string{seqOf(3)})
}

func TestProcessorBackpressure(t *testing.T) {
	hs := newHarness(t, 2)
	done := async(func() { hs.process(records(1, 5)) })
	blocked(t, done, "ProcessRecords with 2 in flight")
	if n := hs.h.count(); n != 2 {
		t.Fatalf("handed %d records at MaxInFlight 2", n)
	}
	hs.h.ack(1) // out of order: still frees a slot
	<-hs.h.more
	<-hs.h.more
	<-hs.h.more
	blocked(t, done, "ProcessRecords with 2 in flight")
	if n := hs.h.count(); n != 3 {
		t.Fatalf("handed %d records after one ack, want 3", n)
	}
	hs.clock.Advance(5 * time.Second)
	hs.h.ack(0) // prefix 1-2 done: checkpointed while still blocked
	<-hs.h.more
	blocked(t, done, "ProcessRecords with 2 in flight")
	equal(t, "writes while blocked", hs.cp.got(), []string{seqOf(2)})
	hs.h.ack(2, 3)
	returns(t, done, "ProcessRecords")
	if n := hs.h.count(); n != 5 {
		t.Fatalf("handed %d records, want 5", n)
	}
}

func TestProcessorBackpressureEndsOnStop(t *testing.T) {
	hs := newHarness(t, 1)
	done := async(func() { hs.process(records(1, 3)) })
	blocked(t, done, "ProcessRecords with 1 in flight")
	hs.cancel()
	returns(t, done, "ProcessRecords after stop")
	hs.process(records(4, 2)) // the library may call once more before it sees the stop
	if n := hs.h.count(); n != 1 {
		t.Errorf("handed %d records, want 1", n)
	}
}

func TestProcessorTerminateWaitsForAllAcks(t *testing.T) {
	hs := newHarness(t, 100)
	hs.process(records(1, 3))
	hs.h.ack(0)
	done := async(func() { hs.p.Shutdown(&kcli.ShutdownInput{ShutdownReason: kcli.TERMINATE, Checkpointer: hs.cp}) })
	blocked(t, done, "Shutdown(TERMINATE) with records in flight")
	hs.h.ack(2)
	blocked(t, done, "Shutdown(TERMINATE) with records in flight")
	equal(t, "writes before all acks", hs.cp.got(), nil)
	hs.h.ack(1)
	returns(t, done, "Shutdown(TERMINATE)")
	equal(t, "writes", hs.cp.got(), []string{ShardEnd})
}

// SHARD_END is retried on endShardPolicy: a failure that may pass is retried after 250 ms and
// 500 ms of the clock, a lost lease stops at once, and after 3 attempts the worker keeps the
// acked prefix (here failing too) and leaves the shard end to the next owner.
func TestProcessorEndShardRetries(t *testing.T) {
	throttled := errors.New("checkpoint: throttled")
	for _, tc := range []struct {
		name   string
		fails  int
		err    error
		waits  []time.Duration
		calls  int
		writes []string
	}{
		{"transient", 2, throttled, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, 3, []string{ShardEnd}},
		{"lease lost", 0, fmt.Errorf("checkpoint: %w", ErrLeaseLost), nil, 1, nil},
		{"gives up", 0, throttled, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}, 4, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, 100)
			hs.process(records(1, 2))
			hs.h.ack(0, 1)
			hs.cp.err, hs.cp.fails = tc.err, tc.fails
			done := async(func() { hs.p.Shutdown(&kcli.ShutdownInput{ShutdownReason: kcli.TERMINATE, Checkpointer: hs.cp}) })
			for _, d := range tc.waits {
				waitTimer(t, hs.clock, d)
				blocked(t, done, "Shutdown(TERMINATE) between SHARD_END attempts")
				hs.clock.Advance(d)
			}
			returns(t, done, "Shutdown(TERMINATE)")
			hs.cp.mu.Lock()
			calls := hs.cp.calls
			hs.cp.mu.Unlock()
			if calls != tc.calls {
				t.Errorf("%d checkpoint calls, want %d", calls, tc.calls)
			}
			equal(t, "writes", hs.cp.got(), tc.writes)
			if tc.writes == nil && hs.p.written == ShardEnd {
				t.Error("the shard is recorded as ended")
			}
		})
	}
}

func TestProcessorTerminateInterruptedByStop(t *testing.T) {
	hs := newHarness(t, 100)
	hs.process(records(1, 3))
	hs.h.ack(0)
	done := async(func() { hs.p.Shutdown(&kcli.ShutdownInput{ShutdownReason: kcli.TERMINATE, Checkpointer: hs.cp}) })
	blocked(t, done, "Shutdown(TERMINATE)")
	hs.cancel() // the consumer stops: wait out the grace period, then keep what is acked
	blocked(t, done, "Shutdown(TERMINATE) in its grace period")
	hs.h.ack(1)
	waitTimer(t, hs.clock, time.Second)
	hs.clock.Advance(time.Second) // the grace period ends
	returns(t, done, "Shutdown(TERMINATE)")
	equal(t, "writes", hs.cp.got(), []string{seqOf(2)})
}

func TestProcessorRequestedCheckpointsAckedPrefixAfterGrace(t *testing.T) {
	hs := newHarness(t, 100)
	hs.process(records(1, 4))
	hs.h.ack(0, 2)
	hs.cancel()
	done := async(func() { hs.p.Shutdown(&kcli.ShutdownInput{ShutdownReason: kcli.REQUESTED, Checkpointer: hs.cp}) })
	blocked(t, done, "Shutdown(REQUESTED) in its grace period")
	hs.h.ack(1)
	blocked(t, done, "Shutdown(REQUESTED) in its grace period")
	waitTimer(t, hs.clock, time.Second)
	hs.clock.Advance(time.Second) // the grace period ends
	returns(t, done, "Shutdown(REQUESTED)")
	equal(t, "writes", hs.cp.got(), []string{seqOf(3)}) // never SHARD_END, never past record 4
}

func TestProcessorRequestedReturnsWhenAllAcked(t *testing.T) {
	hs := newHarness(t, 100)
	hs.process(records(1, 2))
	hs.cancel()
	done := async(func() { hs.p.Shutdown(&kcli.ShutdownInput{ShutdownReason: kcli.REQUESTED, Checkpointer: hs.cp}) })
	hs.h.ack(0, 1)
	returns(t, done, "Shutdown(REQUESTED)") // no need to wait out the grace period
	equal(t, "writes", hs.cp.got(), []string{seqOf(2)})
}

func TestProcessorHandlerErrorStopsShard(t *testing.T) {
	hs := newHarness(t, 100)
	hs.h.errAt = 3
	hs.process(records(1, 5))
	select {
	case err := <-hs.failed:
		t.Logf("reported: %v", err)
	default:
		t.Fatal("handler error not reported")
	}
	hs.process(records(6, 2))
	if n := hs.h.count(); n != 2 {
		t.Fatalf("handed %d records, want 2 (none after the error)", n)
	}
	hs.h.ack(0, 1)
	// Records 3-7 were never taken, so the shard must not be ended even though every taken
	// record is acked.
	done := async(func() { hs.p.Shutdown(&kcli.ShutdownInput{ShutdownReason: kcli.TERMINATE, Checkpointer: hs.cp}) })
	waitTimer(t, hs.clock, time.Second)
	hs.clock.Advance(time.Second) // the grace period ends
	returns(t, done, "Shutdown(TERMINATE)")
	equal(t, "writes", hs.cp.got(), []string{seqOf(2)})
}

func TestProcessorLeaseLostStopsShard(t *testing.T) {
	hs := newHarness(t, 100)
	hs.process(records(1, 2))
	hs.h.ack(0, 1)
	hs.cp.err = fmt.Errorf("checkpoint: %w", ErrLeaseLost)
	hs.clock.Advance(5 * time.Second)
	hs.process(records(3, 2)) // its checkpoint fails: the records after it are still handed
	hs.process(records(5, 2))
	if n := hs.h.count(); n != 4 {
		t.Errorf("handed %d records, want 4 (none after the lease was lost)", n)
	}
}

func TestProcessorAggregatedRecords(t *testing.T) {
	hs := newHarness(t, 100)
	// Records 1 and 3 are whole; record 2 was de-aggregated into three user records.
	recs := records(1, 3)
	two := recs[1]
	recs = []types.Record{recs[0], two, two, two, recs[2]}
	hs.process(recs)
	if n := hs.h.count(); n != 5 {
		t.Fatalf("handed %d records, want 5", n)
	}
	hs.h.ack(0, 1, 2, 4)
	hs.idle()
	equal(t, "writes with one part of record 2 in flight", hs.cp.got(), []string{seqOf(1)})
	hs.h.ack(3)
	hs.idle()
	equal(t, "writes", hs.cp.got(), []string{seqOf(1), seqOf(3)})
}

func TestProcessorTransientCheckpointErrorRetries(t *testing.T) {
	hs := newHarness(t, 100)
	hs.process(records(1, 2))
	hs.h.ack(0, 1)
	hs.cp.err = errors.New("throttled")
	hs.idle()
	hs.cp.err = nil
	hs.process(nil) // within the interval of the failed attempt
	equal(t, "writes", hs.cp.got(), nil)
	hs.idle()
	equal(t, "writes", hs.cp.got(), []string{seqOf(2)})
}

func TestProcessorOnBatchAndOnCheckpoint(t *testing.T) {
	hs := newHarness(t, 100)
	type key struct{}
	var batches []Batch
	var ended int
	var cps []string
	hs.p.hooks = Hooks{
		OnBatch: func(ctx context.Context, b Batch) (context.Context, func()) {
			batches = append(batches, b)
			return context.WithValue(ctx, key{}, "span"), func() { ended++ }
		},
		OnCheckpoint: func(shard, seq string, err error) { cps = append(cps, shard+" "+seq) },
	}
	var sawSpan bool
	hs.p.handler = HandlerFunc(func(ctx context.Context, r Record, done func()) error {
		sawSpan = ctx.Value(key{}) == "span"
		done()
		return nil
	})
	hs.p.ProcessRecords(&kcli.ProcessRecordsInput{Records: records(1, 2), MillisBehindLatest: 1500, Checkpointer: hs.cp})
	hs.idle()
	if !sawSpan || ended != 2 {
		t.Errorf("Handle saw the batch context: %v; batches ended: %d", sawSpan, ended)
	}
	want := []Batch{{ShardID: "shardId-000000000001", Records: 2, MillisBehindLatest: 1500}, {ShardID: "shardId-000000000001"}}
	if !slices.Equal(batches, want) {
		t.Errorf("batches = %+v, want %+v", batches, want)
	}
	equal(t, "OnCheckpoint", cps, []string{"shardId-000000000001 " + seqOf(2)})
}

func TestProcessorTerminateCheckpointsWhileWaiting(t *testing.T) {
	hs := newHarness(t, 100)
	hs.process(records(1, 3))
	hs.h.ack(0, 1)
	done := async(func() { hs.p.Shutdown(&kcli.ShutdownInput{ShutdownReason: kcli.TERMINATE, Checkpointer: hs.cp}) })
	waitTimer(t, hs.clock, 5*time.Second)
	hs.clock.Advance(5 * time.Second) // a checkpoint interval passes with record 3 still in flight
	waitTimer(t, hs.clock, 5*time.Second)
	blocked(t, done, "Shutdown(TERMINATE) with a record in flight")
	equal(t, "writes while waiting", hs.cp.got(), []string{seqOf(2)})
	hs.h.ack(2)
	returns(t, done, "Shutdown(TERMINATE)")
	equal(t, "writes", hs.cp.got(), []string{seqOf(2), ShardEnd})
}

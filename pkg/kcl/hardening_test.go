package kcl

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
	rec "github.com/awslabs/kinesis-aggregation/go/v2/records"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// The tests in this file reproduce the defects of vmware-go-kcl-v2 v1.0.0 listed in issue
// 10, each against kinesalite and dynalite; each fails without its fix (checked by reverting
// the fix once). Upstream paths are relative to the module root.

// kplAggregate frames msg as a KPL aggregated record: magic, protobuf, MD5 of the protobuf.
func kplAggregate(msg []byte) []byte {
	sum := md5.Sum(msg)
	return append(append(append([]byte(nil), kplMagic...), msg...), sum[:]...)
}

func marshalAggregate(t *testing.T, agg *rec.AggregatedRecord) []byte {
	t.Helper()
	b, err := proto.Marshal(protoadapt.MessageV2Of(agg))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// putData puts each datum as one record into the stream's only shard, in one call.
func putData(t *testing.T, kc *kinesis.Client, stream string, data [][]byte) {
	t.Helper()
	var entries []ktypes.PutRecordsRequestEntry
	for i, d := range data {
		entries = append(entries, ktypes.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String(fmt.Sprintf("pk-%d", i))})
	}
	out, err := kc.PutRecords(ctxFor(t, 10*time.Second), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
		t.Fatalf("PutRecords: %v (failed %d)", err, aws.ToInt32(out.FailedRecordCount))
	}
}

// hostileRecords are two records that start with the KPL magic and carry a valid MD5:
// brokenProto's protobuf does not decode, badIndex's names partition key 7 of an empty table.
func hostileRecords(t *testing.T) (brokenProto, badIndex []byte) {
	brokenProto = kplAggregate([]byte{0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01}) // field 3, length past the end
	badIndex = kplAggregate(marshalAggregate(t, &rec.AggregatedRecord{
		Records: []*rec.Record{{PartitionKeyIndex: proto.Uint64(7), Data: []byte("x")}},
	}))
	if validAggregate(brokenProto) || validAggregate(badIndex) {
		t.Fatal("the hostile records decode as valid aggregates")
	}
	return brokenProto, badIndex
}

// testKPLLookalike puts hostile between plain records into one shard (one GetRecords batch)
// and checks that every record reaches the Handler once, with its bytes as put.
func testKPLLookalike(t *testing.T, hostile []byte, kpl bool) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 1)
	var data [][]byte
	for i := range 10 {
		data = append(data, fmt.Appendf(nil, "rec-%d", i))
		if i == 4 {
			data = append(data, hostile)
		}
	}
	putData(t, kc, stream, data)

	c := newCollector()
	cfg := testConfig(t, stream, app, "worker-1")
	cfg.KPLAggregation = kpl
	startConsumer(t, cfg, kc, db, c)
	stack.Eventually(t, 20*time.Second, "the plain records around the hostile one", func() bool { return c.has(0, 10) })
	stack.Eventually(t, 5*time.Second, "the hostile record", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.count[string(hostile)] > 0
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.count[string(hostile)]; n != 1 {
		t.Errorf("hostile record delivered %d times, want once", n)
	}
	if len(c.got) != len(data) {
		t.Errorf("%d deliveries of %d records", len(c.got), len(data))
	}
}

// TestKPLLookalikeBrokenProtobuf: upstream, clientlibrary/worker/common-shard-consumer.go:148
// de-aggregates every batch; for this record the de-aggregator returns an error
// (github.com/awslabs/kinesis-aggregation/go/v2 deaggregator/deaggregator.go:58-61), the
// library only logs it (common-shard-consumer.go:149-153) and hands ProcessRecords nil: the
// whole batch, the plain records around it included, is never delivered, and the next
// checkpoint passes it.
func TestKPLLookalikeBrokenProtobuf(t *testing.T) {
	broken, _ := hostileRecords(t)
	testKPLLookalike(t, broken, false)
}

// TestKPLLookalikeBadKeyIndex: upstream, the de-aggregator indexes the partition key table
// with the record's index unchecked (deaggregator/deaggregator.go:85): an index out of range
// panics in the shard's goroutine (clientlibrary/worker/worker.go:361-366, no recover), the
// process dies, and so does every worker that takes the shard next.
func TestKPLLookalikeBadKeyIndex(t *testing.T) {
	_, badIndex := hostileRecords(t)
	testKPLLookalike(t, badIndex, false)
}

// TestKPLAggregationEnabled: with KPLAggregation on, a valid aggregate is expanded (its
// records share a sequence number) and a broken one still reaches the Handler as it is.
func TestKPLAggregationEnabled(t *testing.T) {
	_, badIndex := hostileRecords(t)
	t.Run("broken aggregate passes as one record", func(t *testing.T) { testKPLLookalike(t, badIndex, true) })

	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 1)
	valid := kplAggregate(marshalAggregate(t, &rec.AggregatedRecord{
		PartitionKeyTable: []string{"a", "b"},
		Records: []*rec.Record{
			{PartitionKeyIndex: proto.Uint64(0), Data: []byte("rec-1")},
			{PartitionKeyIndex: proto.Uint64(1), Data: []byte("rec-2")},
		},
	}))
	putData(t, kc, stream, [][]byte{[]byte("rec-0"), valid, []byte("rec-3")})
	c := newCollector()
	cfg := testConfig(t, stream, app, "worker-1")
	cfg.KPLAggregation = true
	startConsumer(t, cfg, kc, db, c)
	stack.Eventually(t, 20*time.Second, "the 4 user records", func() bool { return c.has(0, 4) })
	ds := c.deliveries()
	if len(ds) != 4 || ds[1].seq != ds[2].seq {
		t.Errorf("deliveries %+v, want 4 with rec-1 and rec-2 sharing the aggregate's sequence number", ds)
	}
}

// TestLatestMeansApplicationStart: upstream, a shard without a checkpoint starts at the
// configured position when its reader starts (clientlibrary/worker/common-shard-consumer.go:
// 94-111): with LATEST, the children of a split — read only after a restart here — skipped
// every record put to them before their reader began. LATEST now means the application's
// first start: records put before it are not read, every record put after it is.
func TestLatestMeansApplicationStart(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 1)
	putData(t, kc, stream, [][]byte{[]byte("old-0"), []byte("old-1")})
	time.Sleep(100 * time.Millisecond)

	c := newCollector()
	cfg := testConfig(t, stream, app, "worker-1")
	cfg.InitialPosition = Latest
	w1 := startConsumer(t, cfg, kc, db, c)
	stack.Eventually(t, 20*time.Second, "the lease", func() bool { return w1.LeasesHeld() == 1 })
	time.Sleep(500 * time.Millisecond) // the reader has its iterator
	put(t, kc, stream, 0, 10, nil)
	stack.Eventually(t, 20*time.Second, "10 records", func() bool { return c.has(0, 10) })
	if err := w1.stop(t); err != nil {
		t.FailNow()
	}

	parent := splitOnly(t, kc, stream)
	put(t, kc, stream, 10, 20, nil) // to the children, while no worker runs
	cfg.WorkerID = "worker-2"
	startConsumer(t, cfg, kc, db, c)
	stack.Eventually(t, 30*time.Second, "the 20 records put to the children", func() bool { return c.has(10, 20) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.count["old-0"]+c.count["old-1"] > 0 {
		t.Error("records put before the application first started were read with LATEST")
	}
	if items := leaseTable_(t, db, app); items[parent].checkpoint == "" {
		t.Errorf("parent %s has no checkpoint", parent)
	}
}

// splitOnly splits the stream's only shard in two halves and returns the parent's id.
func splitOnly(t *testing.T, kc *kinesis.Client, stream string) string {
	t.Helper()
	ctx := ctxFor(t, 10*time.Second)
	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil || len(shards.Shards) != 1 {
		t.Fatalf("ListShards: %v %v", shards, err)
	}
	parent := aws.ToString(shards.Shards[0].ShardId)
	mid := new(big.Int).Lsh(big.NewInt(1), 127)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String(parent), NewStartingHashKey: aws.String(mid.String()),
	}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	stack.Eventually(t, 10*time.Second, "the split", func() bool {
		d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		return err == nil && d.StreamDescriptionSummary.StreamStatus == ktypes.StreamStatusActive
	})
	return parent
}

// claimOf reads a lease's ClaimRequest.
func claimOf(t *testing.T, db *dynamodb.Client, app, shard string) string {
	t.Helper()
	out, err := db.GetItem(ctxFor(t, 5*time.Second), &dynamodb.GetItemInput{
		TableName: aws.String(app), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{chk.LeaseKeyKey: &ddbtypes.AttributeValueMemberS{Value: shard}},
	})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	if v, ok := out.Item[chk.ClaimRequestKey].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// TestStaleOwnerCheckpointRefused: upstream, the lease sync behind rebalancing copies the
// table's owner into the in-memory shard of every lease, the ones this worker still reads
// included (clientlibrary/checkpoint/dynamodb-checkpointer.go:480-482), and the checkpoint
// is a PutItem of the whole item from memory (dynamodb-checkpointer.go:252-273). Our old
// condition used that in-memory owner, so worker a, still inside ProcessRecords after b took
// the shard over, passed it: it moved b's checkpoint back and erased c's ClaimRequest.
func TestStaleOwnerCheckpointRefused(t *testing.T) {
	kc, db := stackClients(t)
	_, app := createStream(t, kc, db, 1)
	table := func(worker string) *leaseTable {
		cfg := testConfig(t, "unused", app, worker)
		cfg.Region = "us-east-1"
		cfg = cfg.withDefaults()
		lt := newLeaseTable(cfg.library(cfg.Logger, testMonitor(t)), db, false, time.Now)
		lt.timeout = 5 * time.Second
		return lt
	}
	a, b, c := table("worker-a"), table("worker-b"), table("worker-c")
	if err := a.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	const id = "shardId-000000000000"
	shardA := &par.ShardStatus{ID: id, Mux: &sync.RWMutex{}}
	if err := a.GetLease(shardA, "worker-a"); err != nil {
		t.Fatalf("GetLease: %v", err)
	}
	shardA.SetCheckpoint("100")
	if err := a.CheckpointSequence(shardA); err != nil {
		t.Fatalf("checkpoint by the owner: %v", err)
	}

	// a's lease runs out (its renewals failed); b takes the shard over and moves on.
	a.LeaseDuration = 1
	if err := a.DynamoCheckpoint.GetLease(shardA, "worker-a"); err != nil {
		t.Fatalf("GetLease: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	shardB := &par.ShardStatus{ID: id, Mux: &sync.RWMutex{}}
	if err := b.FetchCheckpoint(shardB); err != nil {
		t.Fatalf("FetchCheckpoint: %v", err)
	}
	if err := b.GetLease(shardB, "worker-b"); err != nil {
		t.Fatalf("takeover: %v", err)
	}
	shardB.SetCheckpoint("300")
	if err := b.CheckpointSequence(shardB); err != nil {
		t.Fatalf("checkpoint by the new owner: %v", err)
	}
	// c claims the shard from b (lease stealing).
	shardC := &par.ShardStatus{ID: id, Mux: &sync.RWMutex{}}
	if err := c.ClaimShard(shardC, "worker-c"); err != nil {
		t.Fatalf("ClaimShard: %v", err)
	}

	// a's rebalancing syncs leases: the library writes b's name into a's shard.
	if _, err := a.ListActiveWorkers(map[string]*par.ShardStatus{id: shardA}); err != nil {
		t.Fatalf("ListActiveWorkers: %v", err)
	}
	if owner := shardA.GetLeaseOwner(); owner != "worker-b" {
		t.Fatalf("in-memory owner after lease sync %q, want worker-b", owner)
	}
	// a, still in ProcessRecords, checkpoints an older position; its memory says the lease
	// has time left (as right after its last renewal).
	shardA.SetLeaseTimeout(time.Now().Add(time.Minute))
	shardA.SetCheckpoint("200")
	if err := a.CheckpointSequence(shardA); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("checkpoint by the old owner: %v, want ErrLeaseLost", err)
	}
	it := leaseTable_(t, db, app)[id]
	if it.checkpoint != "300" || it.owner != "worker-b" {
		t.Errorf("lease after the stale write: %+v, want checkpoint 300 owned by worker-b", it)
	}
	if claim := claimOf(t, db, app, id); claim != "worker-c" {
		t.Errorf("ClaimRequest %q after the stale write, want worker-c", claim)
	}
	// The owner's own checkpoints keep the claim too.
	shardB.SetCheckpoint("400")
	if err := b.CheckpointSequence(shardB); err != nil {
		t.Fatalf("checkpoint by the owner: %v", err)
	}
	if claim := claimOf(t, db, app, id); claim != "worker-c" {
		t.Errorf("ClaimRequest %q after the owner's checkpoint, want worker-c", claim)
	}
}

// TestTakeKeepsTheLastCheckpoint: upstream, taking a lease writes the checkpoint that the
// taker's FetchCheckpoint read just before (dynamodb-checkpointer.go:133-238). When the old
// owner checkpoints once more and releases in between — a hand-over after a steal — its last
// checkpoint was put back (the soak saw shardId-000000000008 move backwards). The take now
// reads the checkpoint again once the lease is free, and does not take a lease still held.
func TestTakeKeepsTheLastCheckpoint(t *testing.T) {
	kc, db := stackClients(t)
	_, app := createStream(t, kc, db, 1)
	table := func(worker string) *leaseTable {
		cfg := testConfig(t, "unused", app, worker)
		cfg.Region = "us-east-1"
		cfg = cfg.withDefaults()
		lt := newLeaseTable(cfg.library(cfg.Logger, testMonitor(t)), db, false, time.Now)
		lt.timeout = 5 * time.Second
		return lt
	}
	a, b := table("worker-a"), table("worker-b")
	if err := a.Init(); err != nil {
		t.Fatalf("Init: %v", err)
	}
	const id = "shardId-000000000000"
	shardA := &par.ShardStatus{ID: id, Mux: &sync.RWMutex{}}
	if err := a.GetLease(shardA, "worker-a"); err != nil {
		t.Fatalf("GetLease: %v", err)
	}
	shardA.SetCheckpoint("100")
	if err := a.CheckpointSequence(shardA); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	// b looks at the lease (its worker loop's FetchCheckpoint) while a still holds it: a take
	// now is refused, as upstream refuses it.
	shardB := &par.ShardStatus{ID: id, Mux: &sync.RWMutex{}}
	if err := b.FetchCheckpoint(shardB); err != nil {
		t.Fatalf("FetchCheckpoint: %v", err)
	}
	if err := b.GetLease(shardB, "worker-b"); !errors.As(err, &chk.ErrLeaseNotAcquired{}) {
		t.Fatalf("take of a lease another worker holds: %v, want ErrLeaseNotAcquired", err)
	}
	// a checkpoints once more and hands the shard over; b, with 100 in memory, takes it.
	shardA.SetCheckpoint("200")
	if err := a.CheckpointSequence(shardA); err != nil {
		t.Fatalf("last checkpoint: %v", err)
	}
	if err := a.RemoveLeaseOwner(id); err != nil {
		t.Fatalf("release: %v", err)
	}
	shardB.SetCheckpoint("100")
	if err := b.GetLease(shardB, "worker-b"); err != nil {
		t.Fatalf("take after the release: %v", err)
	}
	if it := leaseTable_(t, db, app)[id]; it.checkpoint != "200" || it.owner != "worker-b" {
		t.Errorf("lease after the take: %+v, want checkpoint 200 (the old owner's last) owned by worker-b", it)
	}
	if cp := shardB.GetCheckpoint(); cp != "200" {
		t.Errorf("taker's checkpoint in memory %q, want 200", cp)
	}
}

// takeOver writes the lease of shard to worker as another worker's GetLease would.
func takeOver(t *testing.T, db *dynamodb.Client, app, shard, worker string) {
	t.Helper()
	_, err := db.UpdateItem(ctxFor(t, 5*time.Second), &dynamodb.UpdateItemInput{
		TableName:                aws.String(app),
		Key:                      map[string]ddbtypes.AttributeValue{chk.LeaseKeyKey: &ddbtypes.AttributeValueMemberS{Value: shard}},
		UpdateExpression:         aws.String("SET #o = :w, #t = :t"),
		ExpressionAttributeNames: map[string]string{"#o": chk.LeaseOwnerKey, "#t": chk.LeaseTimeoutKey},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":w": &ddbtypes.AttributeValueMemberS{Value: worker},
			":t": &ddbtypes.AttributeValueMemberS{Value: time.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)},
		},
	})
	if err != nil {
		t.Fatalf("take over %s: %v", shard, err)
	}
}

// TestLeaseLostWhileBlocked: the shard's processor blocks on backpressure (its records are
// not acked) when another worker takes the lease over. Upstream, the reader learns of a
// failed renewal only after ProcessRecords returns (clientlibrary/worker/polling-shard-
// consumer.go:211 then 229-235), and our waitForRoom waited for acks alone: the reader sat
// on the shard, its tracker and gauges stayed, and once acks came it handed more records
// over although another worker read the shard. Now the processor stops at once, lets go of
// its tracker, and the reader ends.
func TestLeaseLostWhileBlocked(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 1)
	put(t, kc, stream, 0, 50, nil)

	c := newCollector()
	c.hold = func(string) bool { return true }
	var held []func()
	var heldMu sync.Mutex
	h := HandlerFunc(func(ctx context.Context, r Record, done func()) error {
		heldMu.Lock()
		held = append(held, done)
		heldMu.Unlock()
		return c.Handle(ctx, r, done)
	})
	cfg := testConfig(t, stream, app, "worker-a")
	cfg.MaxInFlightPerShard = 5
	w := startConsumer(t, cfg, kc, db, h)
	stack.Eventually(t, 20*time.Second, "5 records in flight", func() bool { return w.InFlight()[firstShard(t, kc, stream)] == 5 })
	shard := firstShard(t, kc, stream)

	takeOver(t, db, app, shard, "worker-b")
	stack.Eventually(t, 5*time.Second, "the shard's tracker released", func() bool { _, ok := w.InFlight()[shard]; return !ok })
	stack.Eventually(t, 5*time.Second, "the reader ended", func() bool { return w.LeasesHeld() == 0 })

	heldMu.Lock()
	for _, done := range held {
		done()
	}
	heldMu.Unlock()
	time.Sleep(2 * time.Second)
	if n := len(c.deliveries()); n != 5 {
		t.Errorf("%d records handed over, want 5: the lease had gone", n)
	}
	if it := leaseTable_(t, db, app)[shard]; it.owner != "worker-b" || it.checkpoint != "" {
		t.Errorf("lease %+v, want worker-b's without a checkpoint", it)
	}
}

func firstShard(t *testing.T, kc *kinesis.Client, stream string) string {
	t.Helper()
	out, err := kc.ListShards(ctxFor(t, 5*time.Second), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil || len(out.Shards) == 0 {
		t.Fatalf("ListShards: %v", err)
	}
	return aws.ToString(out.Shards[0].ShardId)
}

// expireNthGetRecords makes the nth GetRecords call of clients built with it fail as
// Kinesis fails an iterator older than 5 minutes (kinesalite's limit is fixed at 300 s, too
// long for a test).
func expireNthGetRecords(n int64) func(*kinesis.Options) {
	var calls atomic.Int64
	return func(o *kinesis.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("expireIterator",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					if middleware.GetOperationName(ctx) == "GetRecords" && calls.Add(1) == n {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, &ktypes.ExpiredIteratorException{Message: aws.String("Iterator expired (test)")}
					}
					return next.HandleFinalize(ctx, in)
				}), middleware.After)
		})
	}
}

// TestExpiredIteratorKeepsLease: upstream, GetRecords failing with ExpiredIteratorException
// (ProcessRecords blocked past the iterator's 5 minutes) is an error that "cannot be retried"
// (clientlibrary/worker/polling-shard-consumer.go:205-206): the reader ends and releases the
// lease, and a new reader reads again from the checkpoint while the records in flight are
// still held — duplicates and twice the memory. Now the iterator is renewed where it was.
func TestExpiredIteratorKeepsLease(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 1)
	kcExpiring := kinesis.New(kc.Options(), expireNthGetRecords(3))
	put(t, kc, stream, 0, 30, nil)

	c := newCollector()
	cfg := testConfig(t, stream, app, "worker-1")
	cfg.MaxRecords = 10
	cfg.CheckpointInterval = time.Minute // re-reading from the checkpoint would repeat everything
	w := startConsumer(t, cfg, kcExpiring, db, c)
	stack.Eventually(t, 20*time.Second, "30 records", func() bool { return c.has(0, 30) })
	put(t, kc, stream, 30, 10, nil)
	stack.Eventually(t, 20*time.Second, "10 more records", func() bool { return c.has(30, 10) })
	time.Sleep(time.Second)
	if n := len(c.deliveries()); n != 40 {
		t.Errorf("%d deliveries of 40 records: the expired iterator cost a re-read", n)
	}
	if w.LeasesHeld() != 1 {
		t.Errorf("leases held %d, want 1", w.LeasesHeld())
	}
}

// slowAcker acks every record after delay, from another goroutine, and counts deliveries.
type slowAcker struct {
	collector
	delay time.Duration
}

func (s *slowAcker) Handle(ctx context.Context, r Record, done func()) error {
	s.mu.Lock()
	s.got = append(s.got, delivery{string(r.Data), r.ShardID, r.SequenceNumber})
	s.count[string(r.Data)]++
	s.mu.Unlock()
	s.wg.Go(func() {
		time.Sleep(s.delay)
		done()
	})
	return nil
}

// TestStealWhileBlocked: worker b claims one of a's two shards while a's processors block
// on backpressure. Upstream, a's renewal stops at the claim (clientlibrary/checkpoint/
// dynamodb-checkpointer.go:145-153) but nothing tells the processor; b waits for the lease
// to expire (dynamodb-checkpointer.go:173-176) and re-reads what a had acked and not yet
// checkpointed. Now a notices the claim at its next renewal, lets its records in flight be
// acked within the grace, checkpoints, and releases the lease: b takes the shard within
// seconds, well before a's lease would have expired, and reads on from a's checkpoint.
func TestStealWhileBlocked(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 2)
	// A backlog that keeps a's processors blocked (30 records/s per shard) until well past
	// the claim.
	const n = 1200
	put(t, kc, stream, 0, n, nil)

	h := &slowAcker{collector: *newCollector(), delay: 100 * time.Millisecond}
	cfgA := testConfig(t, stream, app, "worker-a")
	cfgA.FailoverTime = 8 * time.Second
	cfgA.LeaseRefreshInterval = 500 * time.Millisecond
	cfgA.MaxInFlightPerShard = 3
	cfgA.CheckpointInterval = 10 * time.Second // only the hand-over checkpoints in time
	a := startConsumer(t, cfgA, kc, db, h)
	stack.Eventually(t, 20*time.Second, "a holding both leases", func() bool { return a.LeasesHeld() == 2 })
	stack.Eventually(t, 20*time.Second, "checkpoints on both leases", func() bool {
		items := leaseTable_(t, db, app)
		n := 0
		for id, it := range items {
			if id != applicationStartKey && it.checkpoint != "" {
				n++
			}
		}
		return n == 2
	})
	cfgB := cfgA
	cfgB.WorkerID = "worker-b"
	b := startConsumer(t, cfgB, kc, db, h)
	var claimed time.Time
	shards := a.Shards()
	stack.Eventually(t, 30*time.Second, "b's claim", func() bool {
		for _, s := range shards {
			if claimOf(t, db, app, s) == "worker-b" {
				claimed = time.Now()
				return true
			}
		}
		return b.LeasesHeld() > 0
	})
	stack.Eventually(t, 30*time.Second, "b holding a lease", func() bool { return b.LeasesHeld() == 1 })
	t.Logf("claimed %v, b got it after %s", claimed, time.Since(claimed))
	if d := time.Since(claimed); !claimed.IsZero() && d > 5*time.Second {
		t.Errorf("the steal took %s after the claim (lease 8s)", d.Round(time.Millisecond))
	}
	stack.Eventually(t, 90*time.Second, "every record", func() bool { return h.has(0, n) })
	a.stop(t)
	b.stop(t)
	h.wg.Wait()
	if got := len(h.deliveries()); got != n {
		t.Errorf("%d deliveries of %d records: the steal re-read records a had acked", got, n)
	}
}

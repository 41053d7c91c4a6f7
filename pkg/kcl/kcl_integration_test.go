package kcl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	par "github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/ack"
)

// The tests in this file run the real library against the local stack's kinesalite and
// dynalite (`deploy/local/stack.sh up kinesis dynamodb`). They fail when those are not
// reachable, except under -short, where they are skipped.

// stackClients are the clients a program builds from one aws.Config, pointed at the local
// stack.
func stackClients(t *testing.T) (*kinesis.Client, *dynamodb.Client) {
	t.Helper()
	return stack.KinesisClient(t), stack.DynamoDBClient(t)
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createStream creates a stream with n shards; it and the lease table app are deleted at the
// end of the test.
func createStream(t *testing.T, kc *kinesis.Client, db *dynamodb.Client, n int32) (stream, app string) {
	t.Helper()
	stream, app = stack.CreateStream(t, kc, "kcl-it", n), uniqueName("kcl-it-leases")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(app)})
	})
	return stream, app
}

// put writes records "rec-<from>" … "rec-<from+n-1>" with spread partition keys; hashKey, if
// set, picks the shard instead.
func put(t *testing.T, kc *kinesis.Client, stream string, from, n int, hashKey func(i int) string) {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	for lo := from; lo < from+n; lo += 500 {
		var entries []ktypes.PutRecordsRequestEntry
		for i := lo; i < min(lo+500, from+n); i++ {
			e := ktypes.PutRecordsRequestEntry{Data: fmt.Appendf(nil, "rec-%d", i), PartitionKey: aws.String(fmt.Sprintf("pk-%d", i))}
			if hashKey != nil {
				e.ExplicitHashKey = aws.String(hashKey(i))
			}
			entries = append(entries, e)
		}
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
			t.Fatalf("PutRecords: %v (failed %d)", err, aws.ToInt32(out.FailedRecordCount))
		}
	}
}

// delivery is one Handle call.
type delivery struct {
	data, shard, seq string
}

// collector is a Handler that records what it got and acks it — at once, or a moment later
// from another goroutine for every third record — except records it is told to hold.
type collector struct {
	mu    sync.Mutex
	got   []delivery
	count map[string]int
	hold  func(data string) bool
	wg    sync.WaitGroup
}

func newCollector() *collector { return &collector{count: map[string]int{}} }

func (c *collector) Handle(_ context.Context, r Record, done func()) error {
	c.mu.Lock()
	n := len(c.got)
	c.got = append(c.got, delivery{string(r.Data), r.ShardID, r.SequenceNumber})
	c.count[string(r.Data)]++
	hold := c.hold != nil && c.hold(string(r.Data))
	c.mu.Unlock()
	switch {
	case hold:
	case n%3 == 0:
		c.wg.Go(func() {
			time.Sleep(time.Duration(n%7) * time.Millisecond)
			done()
		})
	default:
		done()
	}
	return nil
}

// has reports whether records rec-from … rec-(from+n-1) were all delivered.
func (c *collector) has(from, n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := from; i < from+n; i++ {
		if c.count[fmt.Sprintf("rec-%d", i)] == 0 {
			return false
		}
	}
	return true
}

func (c *collector) deliveries() []delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]delivery(nil), c.got...)
}

// testWriter sends log lines to t.Log until the test ends (library goroutines must not call
// t.Log after that).
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// testLogger logs warnings and errors to the test output (everything with KCL_TEST_LOG=debug).
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	level := slog.LevelWarn
	if os.Getenv("KCL_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(io.Writer(w), &slog.HandlerOptions{Level: level}))
}

// testConfig has short intervals so a test takes seconds.
func testConfig(t *testing.T, stream, app, worker string) Config {
	return Config{
		Stream:               stream,
		Application:          app,
		WorkerID:             worker,
		ShardSyncInterval:    time.Second,
		FailoverTime:         3 * time.Second,
		IdleTimeBetweenReads: 200 * time.Millisecond,
		CheckpointInterval:   200 * time.Millisecond,
		ShutdownGrace:        2 * time.Second,
		ShutdownTimeout:      15 * time.Second,
		Logger:               testLogger(t),
	}
}

type running struct {
	*Consumer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

func startConsumer(t *testing.T, cfg Config, kc *kinesis.Client, db *dynamodb.Client, h Handler) *running {
	t.Helper()
	c, err := New(cfg, kc, db, h)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Consumer: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run's context and waits for Run to return (REQUESTED shutdown).
func (r *running) stop(t *testing.T) error {
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(30 * time.Second):
			r.err = fmt.Errorf("Run did not return")
		}
		if r.err != nil {
			t.Errorf("worker %s: %v", r.WorkerID(), r.err)
		}
	})
	return r.err
}

// leaseItem is a lease table row.
type leaseItem struct{ checkpoint, owner, parent string }

func leaseTable_(t *testing.T, db *dynamodb.Client, app string) map[string]leaseItem {
	t.Helper()
	out, err := db.Scan(ctxFor(t, 10*time.Second), &dynamodb.ScanInput{TableName: aws.String(app), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("Scan %s: %v", app, err)
	}
	str := func(m map[string]ddbtypes.AttributeValue, k string) string {
		if v, ok := m[k].(*ddbtypes.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	items := map[string]leaseItem{}
	for _, it := range out.Items {
		items[str(it, chk.LeaseKeyKey)] = leaseItem{str(it, chk.SequenceNumberKey), str(it, chk.LeaseOwnerKey), str(it, chk.ParentShardIdKey)}
	}
	return items
}

// lastSeqByShard is the highest sequence number delivered per shard.
func lastSeqByShard(ds []delivery) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		if m[d.shard] == "" || ack.Compare(d.seq, m[d.shard]) > 0 {
			m[d.shard] = d.seq
		}
	}
	return m
}

// TestConsumeStopResume: a worker reads everything, a REQUESTED shutdown leaves exact
// checkpoints in the lease table, and a second worker resumes after them.
func TestConsumeStopResume(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 2)
	put(t, kc, stream, 0, 200, nil)

	first := newCollector()
	w1 := startConsumer(t, testConfig(t, stream, app, "worker-1"), kc, db, first)
	stack.Eventually(t, 30*time.Second, "200 records", func() bool { return first.has(0, 200) })
	stack.Eventually(t, 10*time.Second, "both leases held", func() bool { return w1.LeasesHeld() == 2 })
	if !w1.Running() {
		t.Error("Running() = false while running")
	}
	if err := w1.stop(t); err != nil {
		t.FailNow()
	}
	if w1.Running() || w1.LeasesHeld() != 0 {
		t.Errorf("after Run: Running %v, leases %v", w1.Running(), w1.Shards())
	}
	first.wg.Wait()

	got := first.deliveries()
	if len(got) != 200 {
		t.Errorf("first worker: %d deliveries of 200 records (duplicates in a clean run)", len(got))
	}
	last := lastSeqByShard(got)
	if len(last) != 2 {
		t.Fatalf("records came from shards %v, want 2 shards", last)
	}
	items := leaseTable_(t, db, app)
	for shard, seq := range last {
		it := items[shard]
		if it.checkpoint != seq {
			t.Errorf("shard %s: checkpoint %q, want the last record %s", shard, it.checkpoint, seq)
		}
		if it.owner != "" {
			t.Errorf("shard %s: still assigned to %q after shutdown", shard, it.owner)
		}
	}

	// The library's Prometheus service would have registered /metrics here.
	if _, pattern := http.DefaultServeMux.Handler(&http.Request{Method: "GET", URL: mustURL("/metrics")}); pattern != "" {
		t.Errorf("http.DefaultServeMux has a handler for /metrics (%q)", pattern)
	}

	second := newCollector()
	startConsumer(t, testConfig(t, stream, app, "worker-2"), kc, db, second)
	put(t, kc, stream, 200, 50, nil)
	stack.Eventually(t, 30*time.Second, "the 50 new records", func() bool { return second.has(200, 50) })
	time.Sleep(500 * time.Millisecond) // would any old record come late?
	for _, d := range second.deliveries() {
		var n int
		if _, err := fmt.Sscanf(d.data, "rec-%d", &n); err != nil || n < 200 {
			t.Errorf("second worker got %s again (checkpoints were exact)", d.data)
		}
	}
}

// TestUnackedRecordRedelivered: a record that is never acked holds the checkpoint back, so
// the next worker reads it again.
func TestUnackedRecordRedelivered(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 1)
	put(t, kc, stream, 0, 20, nil)

	first := newCollector()
	first.hold = func(d string) bool { return d == "rec-7" }
	w1 := startConsumer(t, testConfig(t, stream, app, "worker-1"), kc, db, first)
	stack.Eventually(t, 30*time.Second, "20 records", func() bool { return first.has(0, 20) })
	time.Sleep(500 * time.Millisecond) // a few checkpoint intervals
	if err := w1.stop(t); err != nil {
		t.FailNow()
	}
	first.wg.Wait()

	var seq6, seq7, shard string
	for _, d := range first.deliveries() {
		switch d.data {
		case "rec-6":
			seq6, shard = d.seq, d.shard
		case "rec-7":
			seq7 = d.seq
		}
	}
	if it := leaseTable_(t, db, app)[shard]; it.checkpoint != seq6 {
		t.Errorf("checkpoint %q, want %s (the record before the un-acked %s)", it.checkpoint, seq6, seq7)
	}

	second := newCollector()
	startConsumer(t, testConfig(t, stream, app, "worker-2"), kc, db, second)
	stack.Eventually(t, 30*time.Second, "rec-7 again", func() bool { return second.has(7, 13) })
	if second.has(0, 7) {
		t.Error("records before the un-acked one were delivered again")
	}
}

// TestSplitShard: after a split the parent is read to its end, ended with SHARD_END once all
// its records are acked, and the children are read after it.
func TestSplitShard(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 1)
	put(t, kc, stream, 0, 30, nil)

	c := newCollector()
	w := startConsumer(t, testConfig(t, stream, app, "worker-1"), kc, db, c)
	stack.Eventually(t, 30*time.Second, "30 records", func() bool { return c.has(0, 30) })

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
	low, high := "1", new(big.Int).Add(mid, big.NewInt(1)).String()
	put(t, kc, stream, 30, 40, func(i int) string {
		if i%2 == 0 {
			return low
		}
		return high
	})
	stack.Eventually(t, 40*time.Second, "the 40 records put after the split", func() bool { return c.has(30, 40) })
	stack.Eventually(t, 10*time.Second, "SHARD_END on the parent", func() bool {
		return leaseTable_(t, db, app)[parent].checkpoint == chk.ShardEnd
	})

	lastParent, firstChild := -1, -1
	children := map[string]bool{}
	for i, d := range c.deliveries() {
		var n int
		fmt.Sscanf(d.data, "rec-%d", &n)
		if d.shard == parent {
			lastParent = i
			if n >= 30 {
				t.Errorf("%s put after the split was read from the parent", d.data)
			}
		} else {
			children[d.shard] = true
			if firstChild < 0 {
				firstChild = i
			}
		}
	}
	if len(children) != 2 {
		t.Errorf("records came from child shards %v, want 2", children)
	}
	if firstChild < lastParent {
		t.Errorf("a child record (#%d) was delivered before the parent's last (#%d)", firstChild, lastParent)
	}
	items := leaseTable_(t, db, app)
	for shard := range children {
		if items[shard].parent != parent {
			t.Errorf("child %s: lease parent %q, want %s", shard, items[shard].parent, parent)
		}
	}
	if err := w.stop(t); err != nil {
		t.FailNow()
	}
	c.wg.Wait()
	if cp := leaseTable_(t, db, app)[parent].checkpoint; cp != chk.ShardEnd {
		t.Errorf("parent checkpoint after shutdown %q, want %s", cp, chk.ShardEnd)
	}
}

// TestTwoWorkersShareShards: a second worker steals a lease from one that holds all shards,
// and between them they read every record.
func TestTwoWorkersShareShards(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 2)
	put(t, kc, stream, 0, 100, nil)

	c := newCollector()
	a := startConsumer(t, testConfig(t, stream, app, "worker-a"), kc, db, c)
	stack.Eventually(t, 30*time.Second, "100 records", func() bool { return c.has(0, 100) })
	stack.Eventually(t, 10*time.Second, "worker a holding both leases", func() bool { return a.LeasesHeld() == 2 })
	// Stealing needs a checkpoint on every lease (the library skips leases without one).
	stack.Eventually(t, 10*time.Second, "checkpoints", func() bool {
		items := leaseTable_(t, db, app)
		return len(items) == 2 && ack.Valid(items[a.Shards()[0]].checkpoint) && ack.Valid(items[a.Shards()[1]].checkpoint)
	})

	b := startConsumer(t, testConfig(t, stream, app, "worker-b"), kc, db, c)
	stack.Eventually(t, 40*time.Second, "one lease each", func() bool { return a.LeasesHeld() == 1 && b.LeasesHeld() == 1 })
	put(t, kc, stream, 100, 100, nil)
	stack.Eventually(t, 30*time.Second, "the next 100 records", func() bool { return c.has(100, 100) })
	t.Logf("a reads %v, b reads %v", a.Shards(), b.Shards())
	byShard := map[string]bool{}
	for _, d := range c.deliveries() {
		var n int
		fmt.Sscanf(d.data, "rec-%d", &n)
		if n >= 100 {
			byShard[d.shard] = true
		}
	}
	if len(byShard) != 2 {
		t.Errorf("new records came from %v", byShard)
	}
	a.stop(t)
	b.stop(t)
}

// TestNoPrometheus: the library's Prometheus service (global registry, DefaultServeMux) is
// not even linked into a program using this package; we install our own MonitoringService.
func TestNoPrometheus(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "prometheus") {
			t.Errorf("linked: %s", p)
		}
	}
}

func mustURL(path string) *url.URL {
	u, err := url.Parse(path)
	if err != nil {
		panic(err)
	}
	return u
}

// TestShutdownWhileChildWaitsForParent: the parent of a split cannot end (a record is never
// acked), so its children wait for it — in a library loop that ignores the stop signal. Run
// must still return promptly, and the parent must not be ended.
func TestShutdownWhileChildWaitsForParent(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 1)
	put(t, kc, stream, 0, 10, nil)
	shards, err := kc.ListShards(ctxFor(t, 10*time.Second), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	parent := aws.ToString(shards.Shards[0].ShardId)
	mid := new(big.Int).Lsh(big.NewInt(1), 127)
	if _, err := kc.SplitShard(ctxFor(t, 10*time.Second), &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: aws.String(parent), NewStartingHashKey: aws.String(mid.String()),
	}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}

	c := newCollector()
	c.hold = func(d string) bool { return d == "rec-4" }
	w := startConsumer(t, testConfig(t, stream, app, "worker-1"), kc, db, c)
	stack.Eventually(t, 30*time.Second, "10 records", func() bool { return c.has(0, 10) })
	stack.Eventually(t, 20*time.Second, "the children's leases", func() bool { return w.LeasesHeld() == 3 })

	start := time.Now()
	if err := w.stop(t); err != nil {
		t.FailNow()
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Run took %s to stop (grace 2s)", d)
	}
	c.wg.Wait()
	var seq3 string
	for _, d := range c.deliveries() {
		if d.data == "rec-3" {
			seq3 = d.seq
		}
	}
	if cp := leaseTable_(t, db, app)[parent].checkpoint; cp != seq3 {
		t.Errorf("parent checkpoint %q, want %s (before the un-acked rec-4)", cp, seq3)
	}
}

// TestHandlerErrorStopsRun: a Handler error stops the consumer and comes back from Run.
func TestHandlerErrorStopsRun(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 1)
	put(t, kc, stream, 0, 10, nil)

	c, err := New(testConfig(t, stream, app, "worker-1"), kc, db, HandlerFunc(func(_ context.Context, r Record, done func()) error {
		if string(r.Data) == "rec-5" {
			return errors.New("pipeline broken")
		}
		done()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Run(context.Background()) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "pipeline broken") {
			t.Errorf("Run() = %v, want the handler's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the handler failed")
	}
	if err := c.Run(context.Background()); err == nil {
		t.Error("second Run did not fail")
	}
}

// TestLeaseTableConditionalCheckpoint: a checkpoint is written only by the lease's owner.
func TestLeaseTableConditionalCheckpoint(t *testing.T) {
	kc, db := stackClients(t)
	_, app := createStream(t, kc, db, 1)
	cfg := testConfig(t, "unused", app, "worker-a")
	cfg.Region = "us-east-1"
	cfg = cfg.withDefaults()
	lib := cfg.library(cfg.Logger, testMonitor(t))
	lt := newLeaseTable(lib, db, false, time.Now)
	lt.timeout = 5 * time.Second
	if err := lt.Init(); err != nil { // creates the table and waits until it is ACTIVE
		t.Fatalf("Init: %v", err)
	}
	shard := &par.ShardStatus{ID: "shardId-000000000000", Mux: &sync.RWMutex{}}
	if err := lt.GetLease(shard, "worker-a"); err != nil {
		t.Fatalf("GetLease: %v", err)
	}
	shard.SetCheckpoint("100")
	if err := lt.CheckpointSequence(shard); err != nil {
		t.Fatalf("checkpoint by the owner: %v", err)
	}

	// worker-b takes over once the lease has expired.
	shard.SetLeaseTimeout(time.Now().Add(-time.Minute))
	stale := &par.ShardStatus{ID: shard.ID, Mux: &sync.RWMutex{}}
	lt.LeaseDuration = 1
	if err := lt.GetLease(shard, "worker-a"); err != nil { // a's last renewal, expiring at once
		t.Fatalf("GetLease: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	lt.LeaseDuration = 60_000
	if err := lt.FetchCheckpoint(stale); err != nil { // as the worker loop does first
		t.Fatalf("FetchCheckpoint: %v", err)
	}
	if err := lt.GetLease(stale, "worker-b"); err != nil {
		t.Fatalf("takeover: %v", err)
	}

	shard.SetCheckpoint("200") // worker-a still thinks it owns the shard
	if err := lt.CheckpointSequence(shard); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("checkpoint by the old owner: %v, want ErrLeaseLost", err)
	}
	if it := leaseTable_(t, db, app)[shard.ID]; it.checkpoint != "100" || it.owner != "worker-b" {
		t.Errorf("lease after the stale write: %+v, want checkpoint 100 owned by worker-b", it)
	}

	lt.stopping.Store(true)
	if err := lt.FetchCheckpoint(stale); !errors.Is(err, errShuttingDown) {
		t.Errorf("FetchCheckpoint while stopping: %v", err)
	}
}

// TestStealWithIdleShard: lease stealing also works when a shard never had a record (so its
// lease has no checkpoint).
func TestStealWithIdleShard(t *testing.T) {
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 2)
	put(t, kc, stream, 0, 20, func(int) string { return "1" }) // all to the first shard

	c := newCollector()
	a := startConsumer(t, testConfig(t, stream, app, "worker-a"), kc, db, c)
	stack.Eventually(t, 30*time.Second, "20 records", func() bool { return c.has(0, 20) })
	stack.Eventually(t, 10*time.Second, "worker a holding both leases", func() bool { return a.LeasesHeld() == 2 })
	b := startConsumer(t, testConfig(t, stream, app, "worker-b"), kc, db, c)
	stack.Eventually(t, 30*time.Second, "one lease each", func() bool { return a.LeasesHeld() == 1 && b.LeasesHeld() == 1 })
}

// TestLeaseTableCreatedByWorkersStartingTogether: several workers starting at once on a new
// application all start. Upstream, DynamoCheckpoint.Init (clientlibrary/checkpoint/
// dynamodb-checkpointer.go:125-129) describes the table and then creates it, so every worker
// but the first to create got ResourceInUseException and Worker.Start failed ("Failed to
// start Checkpointer"); nor did it wait for the table to leave CREATING.
func TestLeaseTableCreatedByWorkersStartingTogether(t *testing.T) {
	_, db := stackClients(t)
	app := uniqueName("leases")
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(app)})
	})
	const workers = 6
	start := make(chan struct{})
	errs := make(chan error, workers)
	for i := range workers {
		cfg := testConfig(t, "unused", app, fmt.Sprintf("worker-%d", i))
		cfg.Region = "us-east-1"
		cfg = cfg.withDefaults()
		lt := newLeaseTable(cfg.library(cfg.Logger, testMonitor(t)), db, false, time.Now)
		lt.createTimeout = 20 * time.Second
		go func() {
			<-start
			errs <- lt.Init()
		}()
	}
	close(start)
	for range workers {
		if err := <-errs; err != nil {
			t.Errorf("Init: %v", err)
		}
	}
	out, err := db.DescribeTable(ctxFor(t, 5*time.Second), &dynamodb.DescribeTableInput{TableName: aws.String(app)})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	if out.Table.TableStatus != ddbtypes.TableStatusActive {
		t.Errorf("table status %s, want ACTIVE", out.Table.TableStatus)
	}
	if bm := out.Table.BillingModeSummary; bm == nil || bm.BillingMode != ddbtypes.BillingModePayPerRequest {
		t.Errorf("billing mode %+v, want PAY_PER_REQUEST", bm)
	}
}

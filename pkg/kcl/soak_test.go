package kcl

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/ack"
)

// The soak (make soak; a short form runs in CI): 3 worker processes share an 8-shard stream
// under steady writes for SOAK_DURATION (default 5m) while one shard is split, two are
// merged, one worker is SIGKILLed and one SIGTERMed (each replaced by a new process). At the
// end every record put must have been delivered, no checkpoint may ever have moved
// backwards (a watcher polls the lease table; SHARD_END is the end), and every parent shard
// must be ended. Workers are this test binary run again (TestSoakWorker), each appending what
// its Handler got to its own file before acking.

const (
	soakEnv       = "KCL_SOAK"
	soakWorkerEnv = "KCL_SOAK_WORKER"
)

// soakWorker is one worker process.
type soakWorker struct {
	id  string
	cmd *exec.Cmd
	out string
}

func TestSoak(t *testing.T) {
	if os.Getenv(soakEnv) == "" {
		t.Skipf("the soak runs with %s=1 (make soak)", soakEnv)
	}
	d := 5 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("SOAK_DURATION: %v", err)
		}
	}
	kc, db := stackClients(t)
	stream, app := createStream(t, kc, db, 8)
	dir := t.TempDir()
	start := time.Now()

	var workers []*soakWorker
	n := 0
	spawn := func() *soakWorker {
		n++
		w := &soakWorker{id: fmt.Sprintf("soak-%d", n), out: filepath.Join(dir, fmt.Sprintf("soak-%d.out", n))}
		log, err := os.Create(filepath.Join(dir, w.id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		w.cmd = exec.Command(os.Args[0], "-test.run=^TestSoakWorker$", "-test.count=1")
		w.cmd.Env = append(os.Environ(), soakWorkerEnv+"=1", "KCL_SOAK_STREAM="+stream, "KCL_SOAK_APP="+app,
			"KCL_SOAK_ID="+w.id, "KCL_SOAK_OUT="+w.out)
		w.cmd.Stdout, w.cmd.Stderr = log, log
		if err := w.cmd.Start(); err != nil {
			t.Fatalf("start worker: %v", err)
		}
		workers = append(workers, w)
		return w
	}
	t.Cleanup(func() {
		for _, w := range workers {
			if w.cmd.ProcessState == nil {
				_ = w.cmd.Process.Kill()
				_ = w.cmd.Wait()
			}
		}
	})
	for range 3 {
		spawn()
	}

	// Steady writes.
	ctx, stopWriting := context.WithCancel(context.Background())
	defer stopWriting()
	var put atomic.Int64
	writerDone := make(chan error, 1)
	go func() { writerDone <- soakWrite(ctx, kc, stream, &put) }()

	// The watcher: no checkpoint moves backwards, none leaves SHARD_END.
	watch := newCheckpointWatcher()
	watchCtx, stopWatching := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for watchCtx.Err() == nil {
			out, err := db.Scan(watchCtx, &dynamodb.ScanInput{TableName: aws.String(app), ConsistentRead: aws.Bool(true)})
			if err == nil {
				watch.observe(out.Items)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()

	at := func(f float64) { time.Sleep(time.Until(start.Add(time.Duration(f * float64(d))))) }
	var parents []string
	at(0.2)
	parents = append(parents, soakSplit(t, kc, stream))
	at(0.35)
	parents = append(parents, soakMerge(t, kc, stream)...)
	at(0.5)
	killed := workers[0]
	_ = killed.cmd.Process.Signal(syscall.SIGKILL)
	_ = killed.cmd.Wait()
	t.Logf("%s: SIGKILLed %s", time.Since(start).Round(time.Second), killed.id)
	at(0.55)
	spawn()
	at(0.7)
	termed := workers[1]
	_ = termed.cmd.Process.Signal(syscall.SIGTERM)
	termErr := termed.cmd.Wait()
	t.Logf("%s: SIGTERMed %s (exit: %v)", time.Since(start).Round(time.Second), termed.id, termErr)
	spawn()
	at(1)
	stopWriting()
	if err := <-writerDone; err != nil {
		t.Errorf("writer: %v", err)
	}
	total := int(put.Load())

	// Drain: wait until everything put was delivered somewhere.
	deadline := time.Now().Add(90 * time.Second)
	var got soakDeliveries
	for {
		got = readSoakFiles(t, workers)
		if got.missing(total) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	// Parents end once their tail is acked: give the checkpoints a moment.
	stack.Eventually(t, 30*time.Second, "SHARD_END on every parent", func() bool {
		items := leaseTable_(t, db, app)
		for _, p := range parents {
			if items[p].checkpoint != ShardEnd {
				return false
			}
		}
		return true
	})
	for _, w := range workers {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, w := range workers {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Wait()
		}
	}
	stopWatching()
	<-watchDone
	got = readSoakFiles(t, workers)

	missing := got.missing(total)
	t.Logf("soak %s: %d records put, %d delivered (%d distinct), %d duplicate deliveries, %d missing; "+
		"%d checkpoint observations over %d leases, %d backward moves; parents %v ended",
		time.Since(start).Round(time.Second), total, got.lines, len(got.count), got.lines-len(got.count), missing,
		watch.observations, len(watch.last), len(watch.violations), parents)
	if missing > 0 {
		t.Errorf("%d records put were never delivered (first: %v)", missing, got.firstMissing(total, 10))
	}
	for _, v := range watch.violations {
		t.Errorf("checkpoint moved backwards: %s", v)
	}
	if t.Failed() {
		for _, w := range workers {
			b, _ := os.ReadFile(filepath.Join(dir, w.id+".log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("%s log (last lines):\n%s", w.id, strings.Join(lines[max(0, len(lines)-15):], "\n"))
		}
	}
}

// soakWrite puts "soak-<i>" records, 10 every 100 ms, until ctx ends; put counts the ones
// Kinesis accepted, which are numbered without gaps (failed entries are retried first).
func soakWrite(ctx context.Context, kc *kinesis.Client, stream string, put *atomic.Int64) error {
	next := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var entries []ktypes.PutRecordsRequestEntry
		for i := next; i < next+10; i++ {
			entries = append(entries, ktypes.PutRecordsRequestEntry{
				Data: fmt.Appendf(nil, "soak-%d", i), PartitionKey: aws.String(fmt.Sprintf("pk-%d", rand.Int64())),
			})
		}
		for attempt := 0; len(entries) > 0; attempt++ {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := kc.PutRecords(cctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
			cancel()
			if err != nil {
				if attempt > 20 {
					return fmt.Errorf("PutRecords: %w", err)
				}
				time.Sleep(200 * time.Millisecond)
				continue
			}
			var failed []ktypes.PutRecordsRequestEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					failed = append(failed, entries[i])
				}
			}
			entries = failed
		}
		next += 10
		put.Store(int64(next))
	}
}

// soakSplit splits the first open shard at the middle of its hash range.
func soakSplit(t *testing.T, kc *kinesis.Client, stream string) string {
	open := openShards(t, kc, stream)
	s := open[0]
	lo, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
	hi, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := kc.SplitShard(ctxFor(t, 10*time.Second), &kinesis.SplitShardInput{
		StreamName: aws.String(stream), ShardToSplit: s.ShardId, NewStartingHashKey: aws.String(mid.String()),
	}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	waitActive(t, kc, stream)
	t.Logf("split %s", aws.ToString(s.ShardId))
	return aws.ToString(s.ShardId)
}

// soakMerge merges the last two open shards (adjacent hash ranges).
func soakMerge(t *testing.T, kc *kinesis.Client, stream string) []string {
	open := openShards(t, kc, stream)
	a, b := open[len(open)-2], open[len(open)-1]
	if _, err := kc.MergeShards(ctxFor(t, 10*time.Second), &kinesis.MergeShardsInput{
		StreamName: aws.String(stream), ShardToMerge: a.ShardId, AdjacentShardToMerge: b.ShardId,
	}); err != nil {
		t.Fatalf("MergeShards: %v", err)
	}
	waitActive(t, kc, stream)
	t.Logf("merged %s and %s", aws.ToString(a.ShardId), aws.ToString(b.ShardId))
	return []string{aws.ToString(a.ShardId), aws.ToString(b.ShardId)}
}

// openShards lists the shards without an ending sequence number, by starting hash key.
func openShards(t *testing.T, kc *kinesis.Client, stream string) []ktypes.Shard {
	t.Helper()
	out, err := kc.ListShards(ctxFor(t, 10*time.Second), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	var open []ktypes.Shard
	for _, s := range out.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, s)
		}
	}
	key := func(s ktypes.Shard) *big.Int {
		v, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		return v
	}
	slices.SortFunc(open, func(a, b ktypes.Shard) int { return key(a).Cmp(key(b)) })
	return open
}

func waitActive(t *testing.T, kc *kinesis.Client, stream string) {
	t.Helper()
	stack.WaitStreamActive(t, kc, stream)
}

// soakDeliveries is what the workers' files say was delivered.
type soakDeliveries struct {
	count map[int]int
	lines int
}

func (d soakDeliveries) missing(total int) int {
	n := 0
	for i := range total {
		if d.count[i] == 0 {
			n++
		}
	}
	return n
}

func (d soakDeliveries) firstMissing(total, k int) []int {
	var out []int
	for i := 0; i < total && len(out) < k; i++ {
		if d.count[i] == 0 {
			out = append(out, i)
		}
	}
	return out
}

func readSoakFiles(t *testing.T, workers []*soakWorker) soakDeliveries {
	t.Helper()
	d := soakDeliveries{count: map[int]int{}}
	for _, w := range workers {
		f, err := os.Open(w.out)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var shard, seq string
			var i int
			// A SIGKILL may cut the last line short; such a line was not acked either.
			if _, err := fmt.Sscanf(sc.Text(), "%s %s soak-%d", &shard, &seq, &i); err == nil {
				d.count[i]++
				d.lines++
			}
		}
		f.Close()
	}
	return d
}

// TestSoakWorker is one soak worker process (started by TestSoak).
func TestSoakWorker(t *testing.T) {
	if os.Getenv(soakWorkerEnv) == "" {
		t.Skip("started by TestSoak only")
	}
	kc, db := stackClients(t)
	out, err := os.OpenFile(os.Getenv("KCL_SOAK_OUT"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acks sync.WaitGroup
	h := HandlerFunc(func(_ context.Context, r Record, done func()) error {
		mu.Lock()
		_, err := fmt.Fprintf(out, "%s %s %s\n", r.ShardID, r.SequenceNumber, r.Data)
		mu.Unlock()
		if err != nil {
			return err
		}
		// Ack a moment later, out of order, so records are in flight at every kill.
		acks.Go(func() {
			time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
			done()
		})
		return nil
	})
	cfg := testConfig(t, os.Getenv("KCL_SOAK_STREAM"), os.Getenv("KCL_SOAK_APP"), os.Getenv("KCL_SOAK_ID"))
	cfg.Logger = slogStderr()
	cfg.MaxInFlightPerShard = 50
	c, err := New(cfg, kc, db, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	runErr := c.Run(ctx)
	acks.Wait()
	out.Close()
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "run:", runErr)
		os.Exit(1)
	}
	// Abandoned library goroutines would fail goleak; the parent only needs the file.
	os.Exit(0)
}

// checkpointWatcher asserts, from lease table scans, that no checkpoint moves backwards.
type checkpointWatcher struct {
	last         map[string]string
	violations   []string
	observations int
}

func newCheckpointWatcher() *checkpointWatcher { return &checkpointWatcher{last: map[string]string{}} }

func (w *checkpointWatcher) observe(items []map[string]ddbtypes.AttributeValue) {
	for _, it := range items {
		id, cp := attrS(it, "ShardID"), attrS(it, "Checkpoint")
		if id == "" || cp == "" || id == applicationStartKey {
			continue
		}
		w.observations++
		prev, seen := w.last[id]
		switch {
		case !seen || prev == cp:
		case prev == ShardEnd:
			w.violations = append(w.violations, fmt.Sprintf("%s: %s after %s", id, cp, prev))
		case cp == ShardEnd:
		case ack.Compare(cp, prev) < 0:
			w.violations = append(w.violations, fmt.Sprintf("%s: %s after %s", id, cp, prev))
		}
		w.last[id] = cp
	}
}

func attrS(m map[string]ddbtypes.AttributeValue, k string) string {
	if v, ok := m[k].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// slogStderr is a worker process's log: its stderr goes to a file the soak prints on failure.
func slogStderr() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

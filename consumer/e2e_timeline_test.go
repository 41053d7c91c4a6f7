package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/redis/go-redis/v9"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// The end-to-end tests of the shared timeline (issue 8): the real consumer binary, several
// workers, steady traffic, on the local stack. Their figures are logged with -v and quoted in
// the README ("Performance").

// steadyDuration is how long the steady-traffic tests write: CDC_E2E_STEADY (default 60s).
func steadyDuration(t *testing.T) time.Duration {
	t.Helper()
	if v := os.Getenv("CDC_E2E_STEADY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CDC_E2E_STEADY: %v", err)
		}
		return d
	}
	return 60 * time.Second
}

// traffic writes steadily to every (datastore, type) until stop: rate writes/s in all, 80%
// creates and 20% updates of resources created earlier, putting each write's CloudTrail
// record on the stream within 100 ms (as the rule would, partition key random).
type traffic struct {
	e     *e2e
	dss   []string
	types []string
	rate  float64
	// onWrite, if set, is called with each write's time (for lag figures).
	mu  sync.Mutex
	ids map[string][]string
}

func (tr *traffic) run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(7, uint64(len(tr.dss))))
	tr.ids = map[string][]string{}
	var batch [][]byte
	flushAt := time.Now().Add(100 * time.Millisecond)
	interval := time.Duration(float64(time.Second) / tr.rate)
	next := time.Now()
	for ctx.Err() == nil {
		ds, rt := tr.dss[rng.IntN(len(tr.dss))], tr.types[rng.IntN(len(tr.types))]
		key := ds + "/" + rt
		tr.mu.Lock()
		pool := tr.ids[key]
		tr.mu.Unlock()
		var rec []byte
		if len(pool) > 5 && rng.Float64() < 0.2 {
			rec = tr.e.write(ds, rt, pool[rng.IntN(len(pool))], rng.IntN(1000))
		} else {
			rec = tr.e.write(ds, rt, "", 0)
			tr.e.mu.Lock()
			id := tr.e.writes[len(tr.e.writes)-1].ID
			tr.e.mu.Unlock()
			tr.mu.Lock()
			tr.ids[key] = append(tr.ids[key], id)
			tr.mu.Unlock()
		}
		batch = append(batch, rec)
		if time.Now().After(flushAt) {
			tr.e.put(batch...)
			batch = batch[:0]
			flushAt = time.Now().Add(100 * time.Millisecond)
		}
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
	}
	tr.e.put(batch...)
}

// readFigures are the FHIR server's counters for a run: resources returned by searches, and
// the requests by kind.
type readFigures struct {
	resources, searches, counts, writes, distinct int
}

func (e *e2e) readFigures(dss []string) readFigures {
	e.t.Helper()
	admin := stack.FHIRAdmin(e.t)
	var f readFigures
	for _, ds := range dss {
		s := admin.Stats(ds)
		f.resources += s.SearchResources
		f.searches += s.Requests["search"] - s.CountRequests
		f.counts += s.CountRequests
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	f.writes = len(e.writes)
	seen := map[string]bool{}
	for _, w := range e.writes {
		seen[w.DS+"/"+w.Type+"/"+w.ID] = true
	}
	f.distinct = len(seen)
	return f
}

// TestE2ESteadyTrafficReadsOnce: steady writes on 2 datastores × 3 types with 1, 2 and then
// 4 consumers on an 8-shard stream (every key's hints spread over every shard): nothing
// missing, no duplicate, and the resources the FHIR server returned to searches stay within
// 1.3× the writes — the same whatever the number of workers. A last run with a server that
// ignores count requests shows the cost of full verification (every range re-read).
func TestE2ESteadyTrafficReadsOnce(t *testing.T) {
	dur := steadyDuration(t)
	for _, tc := range []struct {
		name        string
		workers     int
		ignoreCount bool
	}{{"1 worker", 1, false}, {"2 workers", 2, false}, {"4 workers", 4, false}, {"full verification", 1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, 8)
			dss := []string{stack.RandomHex(16), stack.RandomHex(16)}
			if tc.ignoreCount {
				for _, ds := range dss {
					stack.FHIRAdmin(t).Configure(ds, stack.FHIRKnobs{IgnoreCount: stack.Ptr(true)})
				}
			}
			for i := range tc.workers {
				e.startConsumer(fmt.Sprintf("steady-%d", i))
			}
			tr := &traffic{e: e, dss: dss, types: []string{"Observation", "Patient", "Encounter"}, rate: 30}
			d := dur
			if tc.ignoreCount {
				d = dur / 2
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			tr.run(ctx)
			e.waitComplete(90 * time.Second)
			// Let the last verifications (3 s after each range) run before counting reads.
			time.Sleep(6 * time.Second)
			f := e.readFigures(dss)
			ratio := float64(f.resources) / float64(f.writes)
			t.Logf("%s: %d writes (%d distinct resources) in %v; FHIR returned %d resources to %d searches (+%d counts): %.2f per write, %.2f per distinct resource",
				tc.name, f.writes, f.distinct, d, f.resources, f.searches, f.counts, ratio, float64(f.resources)/float64(f.distinct))
			if !tc.ignoreCount && ratio > 1.3 {
				t.Errorf("%.2f resources read per write, want ≤ 1.3", ratio)
			}
		})
	}
}

// TestE2ELateIndexUnderSteadyTraffic: writes reach the search index 5 s late while the
// consumer settles only 1 s, under steady traffic on the same keys: the first searches miss
// them, verification finds them — nothing missing.
func TestE2ELateIndexUnderSteadyTraffic(t *testing.T) {
	e := newE2E(t, 4)
	dss := []string{stack.RandomHex(16)}
	stack.FHIRAdmin(t).Configure(dss[0], stack.FHIRKnobs{VisibilityDelay: stack.Ptr(5 * time.Second)})
	e.startConsumer("late-1", "CDC_SETTLE=1s", "CDC_VERIFY_AFTER=8s")
	tr := &traffic{e: e, dss: dss, types: []string{"Observation", "Patient"}, rate: 20}
	ctx, cancel := context.WithTimeout(context.Background(), steadyDuration(t)/3)
	defer cancel()
	tr.run(ctx)
	e.waitComplete(60 * time.Second)
}

// TestE2EKeepsUpUnderSearchQuota: the FHIR server allows 1/30 of the write rate in searches
// (HealthLake's ~3,000 writes/s against ~100 searches/s): 200 writes/s against 7 searches/s
// per datastore for the run. The consumer keeps up: every write is announced, and the lag
// from write to event stays bounded (p99 reported).
func TestE2EKeepsUpUnderSearchQuota(t *testing.T) {
	e := newE2E(t, 4)
	dss := []string{stack.RandomHex(16)}
	stack.FHIRAdmin(t).Configure(dss[0], stack.FHIRKnobs{SearchRateLimit: stack.Ptr(7.0)})
	e.startConsumer("quota-1")
	tr := &traffic{e: e, dss: dss, types: []string{"Observation", "Patient", "Encounter"}, rate: 200}
	ctx, cancel := context.WithTimeout(context.Background(), steadyDuration(t))
	defer cancel()
	start := time.Now()
	tr.run(ctx)
	wrote := time.Since(start)
	e.waitComplete(90 * time.Second)
	lags := e.lags()
	p := func(q float64) time.Duration { return lags[min(len(lags)-1, int(q*float64(len(lags))))] }
	f := e.readFigures(dss)
	t.Logf("%d writes in %v (%.0f/s) under 7 searches/s: %d searches, %d counts, %d resources; emit lag p50 %v p99 %v max %v",
		f.writes, wrote.Round(time.Second), float64(f.writes)/wrote.Seconds(), f.searches, f.counts, f.resources, p(0.5), p(0.99), lags[len(lags)-1])
	if p(0.99) > 30*time.Second {
		t.Errorf("emit lag p99 %v: the consumer falls behind the writes", p(0.99))
	}
}

// lags are, per write, the time from its lastUpdated to the recorder's receipt of the first
// event at or after it, sorted.
func (e *e2e) lags() []time.Duration {
	e.t.Helper()
	type ev struct {
		lu, at time.Time
	}
	byRes := map[string][]ev{}
	for _, l := range stack.Recorded(e.t, e.source) {
		if !strings.HasPrefix(l.DetailType, "FHIR Resource ") {
			continue
		}
		d := stack.Detail[event.ChangeDetail](e.t, l)
		k := d.DatastoreID + "/" + d.ResourceType + "/" + d.ID
		byRes[k] = append(byRes[k], ev{d.LastUpdated.Time, l.Received})
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []time.Duration
	for _, w := range e.writes {
		var best time.Time
		for _, x := range byRes[w.DS+"/"+w.Type+"/"+w.ID] {
			if !x.lu.Before(w.LastUpdated) && (best.IsZero() || x.at.Before(best)) {
				best = x.at
			}
		}
		if !best.IsZero() {
			out = append(out, best.Sub(w.LastUpdated))
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		e.t.Fatal("no lags: no event matched a write")
	}
	return out
}

// TestE2EForbiddenDatastoreIsParked: the FHIR server answers 403 for one datastore while two
// others flow. The others' events keep coming; the failing key's range is reported once as
// "HealthLake CDC Range Failed", parked, its records acked — and retried to success when the
// 403 stops.
func TestE2EForbiddenDatastoreIsParked(t *testing.T) {
	e := newE2E(t, 4)
	bad := stack.RandomHex(16)
	good := []string{stack.RandomHex(16), stack.RandomHex(16)}
	e.startConsumer("park-1", "CDC_PARK_ATTEMPTS=3", "CDC_PARK_AFTER=5s")
	stack.FHIRAdmin(t).Configure(bad, stack.FHIRKnobs{FailStatus: 403, FailFor: stack.Ptr(25 * time.Second)})
	// Writes are made before the 403 starts answering reads: write to bad while it is
	// forbidden would fail too, so the bad datastore's writes go first.
	stack.FHIRAdmin(t).Set(bad, stack.FHIRKnobs{FailFor: stack.Ptr(time.Duration(0))})
	var recs [][]byte
	for range 10 {
		recs = append(recs, e.write(bad, "Observation", "", 0))
	}
	stack.FHIRAdmin(t).Set(bad, stack.FHIRKnobs{FailStatus: 403, FailFor: stack.Ptr(25 * time.Second)})
	e.put(recs...)
	tr := &traffic{e: e, dss: good, types: []string{"Observation"}, rate: 20}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tr.run(ctx)

	// While bad is forbidden: the good datastores are complete, one Range Failed report.
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing, _ := e.check()
		goodMissing := 0
		for _, w := range missing {
			if w.DS != bad {
				goodMissing++
			}
		}
		if goodMissing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes of the healthy datastores missing while another is forbidden", goodMissing)
		}
		time.Sleep(500 * time.Millisecond)
	}
	reports := e.rangeFailed()
	if len(reports) != 1 || reports[0]["datastoreId"] != bad || reports[0]["reason"] != "forbidden" {
		t.Errorf("Range Failed reports %v, want one for the forbidden datastore", reports)
	}
	// After the 403 ends, the parked range's retry emits the rest.
	e.waitComplete(60 * time.Second)
	if n := len(e.rangeFailed()); n != 1 {
		t.Errorf("%d Range Failed reports in all, want 1", n)
	}
}

func (e *e2e) rangeFailed() []map[string]any {
	var out []map[string]any
	for _, raw := range stack.RecorderLines(e.t, e.source) {
		var line struct {
			DetailType string         `json:"detailType"`
			Detail     map[string]any `json:"detail"`
		}
		if json.Unmarshal(raw, &line) == nil && line.DetailType == "HealthLake CDC Range Failed" {
			out = append(out, line.Detail)
		}
	}
	return out
}

// TestE2EBusAccessDenied: PutEvents answers AccessDenied for 15 s. Nothing is acked
// meanwhile (no checkpoint moves), /readyz is unready while it lasts, and nothing is missing
// after.
func TestE2EBusAccessDenied(t *testing.T) {
	e := newE2E(t, 2)
	addr := freeAddr(t)
	e.startConsumer("denied-1", "CDC_HTTP_ADDR="+addr)
	ds := stack.RandomHex(16)
	var first [][]byte
	for range 20 {
		first = append(first, e.write(ds, "Observation", "", 0))
	}
	e.put(first...)
	e.waitComplete(60 * time.Second)
	waitReady(t, addr, true, 30*time.Second)
	recorderConfig(t, map[string]any{"source": e.source, "failCallsWith": map[string]any{"code": "AccessDeniedException", "status": 400, "forMs": 15000}})
	denied := time.Now()
	var second [][]byte
	for range 20 {
		second = append(second, e.write(ds, "Observation", "", 0))
	}
	firstSeq := e.putSeq(second) // shard → the lowest sequence number of the outage's records
	waitReady(t, addr, false, 8*time.Second)
	time.Sleep(time.Until(denied.Add(12 * time.Second))) // within the outage, two checkpoint intervals in
	for shard, cp := range e.checkpoints() {
		if low, ok := firstSeq[shard]; ok && cmpSeq(cp, low) >= 0 {
			t.Errorf("shard %s checkpointed at %s while EventBridge refused every call: past %s, a record put during the outage", shard, cp, low)
		}
	}
	e.waitComplete(60 * time.Second)
	waitReady(t, addr, true, 30*time.Second)
}

// putSeq puts records like put and returns, per shard, the lowest sequence number given.
func (e *e2e) putSeq(records [][]byte) map[string]string {
	e.t.Helper()
	in := &kinesis.PutRecordsInput{StreamName: aws.String(e.stream)}
	for _, r := range records {
		in.Records = append(in.Records, ktypes.PutRecordsRequestEntry{Data: r, PartitionKey: aws.String(stack.RandomHex(8))})
	}
	out, err := e.kc.PutRecords(context.Background(), in)
	if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
		e.t.Fatalf("put records: %v %+v", err, out)
	}
	low := map[string]string{}
	for _, r := range out.Records {
		shard, seq := aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)
		if l, ok := low[shard]; !ok || cmpSeq(seq, l) < 0 {
			low[shard] = seq
		}
	}
	return low
}

// cmpSeq compares two Kinesis sequence numbers (decimal strings of up to 128 bits).
func cmpSeq(a, b string) int {
	x, _ := new(big.Int).SetString(a, 10)
	y, _ := new(big.Int).SetString(b, 10)
	if x == nil || y == nil {
		return strings.Compare(a, b)
	}
	return x.Cmp(y)
}

func recorderConfig(t *testing.T, body map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	res, err := http.Post(stack.URL(t, stack.EventBridge)+"/_recorder/config", "application/json", strings.NewReader(string(b)))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("recorder config %s: %v %v", b, err, res)
	}
	res.Body.Close()
}

// waitReady polls /readyz until it answers ready (or unready) as wanted.
func waitReady(t *testing.T, addr string, ready bool, timeout time.Duration) {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		res, err := c.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if (res.StatusCode == http.StatusOK) == ready {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not turn ready=%v within %v", ready, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkpoints reads the lease table: shard → checkpoint.
func (e *e2e) checkpoints() map[string]string { return e.leaseAttr("Checkpoint") }

// TestE2ESigkillBetweenSearchAndVerification: two workers under steady traffic with writes
// reaching the search index late; one is SIGKILLed while ranges it searched wait for their
// verification. Its key leases expire and are taken over, its verification obligations are
// met by the other worker: nothing missing.
func TestE2ESigkillBetweenSearchAndVerification(t *testing.T) {
	e := newE2E(t, 4)
	dss := []string{stack.RandomHex(16)}
	stack.FHIRAdmin(t).Configure(dss[0], stack.FHIRKnobs{VisibilityDelay: stack.Ptr(3 * time.Second)})
	env := []string{"CDC_SETTLE=500ms", "CDC_VERIFY_AFTER=6s", "CDC_LEASE_FAILOVER=4s"}
	a := e.startConsumer("kill-a", env...)
	e.startConsumer("kill-b", env...)
	tr := &traffic{e: e, dss: dss, types: []string{"Observation", "Patient"}, rate: 20}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	go func() {
		time.Sleep(12 * time.Second)
		a.cmd.Process.Signal(syscall.SIGKILL)
	}()
	tr.run(ctx)
	e.waitComplete(90 * time.Second)
	owners := e.leaseOwners()
	shards := make([]string, 0, len(owners))
	for s, o := range owners {
		shards = append(shards, s+"="+o)
	}
	sort.Strings(shards)
	t.Logf("leases after the kill: %v", shards)
}

// TestParkedCommand: `consumer parked list` prints what the consumers parked (no AWS needed),
// and `consumer parked retry` makes it due at once.
func TestParkedCommand(t *testing.T) {
	bin := consumerBinary(t)
	rdb := redis.NewClient(&redis.Options{Addr: stack.Addr(t, stack.Redis)})
	defer rdb.Close()
	prefix := "parkedcli:" + stack.RandomHex(4) + ":"
	store, err := timeline.New(rdb, timeline.Options{Prefix: prefix + "tl:", Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 11, 20, 9, 15, 0, 0, time.UTC)
	p := timeline.Parked{
		Key:   coalesce.Key{DatastoreID: stack.RandomHex(16), ResourceType: "Observation"},
		Range: coalesce.Interval{From: from, To: from.Add(time.Minute)}, Reason: "forbidden", Attempts: 5,
		Since: from, LastTry: from.Add(time.Hour),
	}
	if err := store.Park(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) string {
		cmd := exec.Command(bin, append([]string{"parked"}, args...)...)
		cmd.Env = []string{"CDC_REDIS_URL=redis://" + stack.Addr(t, stack.Redis) + "/0", "CDC_DEDUP_PREFIX=" + prefix}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("consumer parked %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	var got timeline.Parked
	if err := json.Unmarshal([]byte(cli("list", "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Key != p.Key || got.Reason != "forbidden" || !got.Range.To.Equal(p.Range.To) {
		t.Errorf("listed %+v, want %+v", got, p)
	}
	if out := cli("list"); !strings.Contains(out, p.Key.DatastoreID) || !strings.Contains(out, "forbidden") {
		t.Errorf("table:\n%s", out)
	}
	if out := cli("retry"); !strings.Contains(out, "1 parked ranges due") {
		t.Errorf("retry: %s", out)
	}
	if ps, _ := store.ListParked(context.Background()); len(ps) != 1 || !ps[0].LastTry.IsZero() {
		t.Errorf("after retry: %+v, want one range due now", ps)
	}
}

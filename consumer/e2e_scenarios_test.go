package main

import (
	"context"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// TestE2ELoad: 3 datastores × 4 resource types, 2,000 writes — creates and repeated
// updates, bursts of 100+ writes to one key inside a second, one resource updated 50 times in
// a row, 5% of the CloudTrail records delivered twice and the hostile fixtures mixed in — all
// through one consumer on a 4-shard stream. Every write is announced, nothing twice, and the
// FHIR requests stay within 1.5× the fewest pages the searches could take.
func TestE2ELoad(t *testing.T) {
	e := newE2E(t, 4)
	httpAddr := freeAddr(t)
	p := e.startConsumer("load-1", "CDC_HTTP_ADDR="+httpAddr)

	dss := []string{stack.RandomHex(16), stack.RandomHex(16), stack.RandomHex(16)}
	types := []string{"Patient", "Observation", "Encounter", "Condition"}
	rng := rand.New(rand.NewPCG(1, 2))
	ids := map[string][]string{} // ds/type → ids
	var batch [][]byte
	flush := func() {
		e.put(batch...)
		batch = batch[:0]
	}
	writes := 0
	emit := func(rec []byte) {
		batch = append(batch, rec)
		if rng.Float64() < 0.05 {
			batch = append(batch, rec) // delivered twice
		}
		writes++
		if len(batch) >= 100 {
			flush()
		}
	}
	// creates across every key
	for _, ds := range dss {
		for _, rt := range types {
			for range 40 {
				rec := e.write(ds, rt, "", 0)
				emit(rec)
				e.mu.Lock()
				ids[ds+"/"+rt] = append(ids[ds+"/"+rt], e.writes[len(e.writes)-1].ID)
				e.mu.Unlock()
			}
		}
	}
	// three bursts of 150 updates to one key, each inside about a second
	for b := range 3 {
		key := dss[b] + "/Observation"
		for i := range 150 {
			emit(e.write(dss[b], "Observation", ids[key][i%len(ids[key])], i))
		}
	}
	// one resource updated 50 times in a row
	hot := ids[dss[0]+"/Patient"][0]
	for i := range 50 {
		emit(e.write(dss[0], "Patient", hot, i))
	}
	// the rest: random updates and creates
	for writes < 2000 {
		ds, rt := dss[rng.IntN(len(dss))], types[rng.IntN(len(types))]
		key := ds + "/" + rt
		if rng.Float64() < 0.3 {
			emit(e.write(ds, rt, "", 0))
		} else {
			emit(e.write(ds, rt, ids[key][rng.IntN(len(ids[key]))], writes))
		}
	}
	for _, name := range []string{"reject-bad-datastore.json", "reject-bad-resourcetype.json", "not-json.bin", "truncated.json"} {
		data, err := os.ReadFile(filepath.Join("..", "pkg", "cloudtrail", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, data)
	}
	flush()

	e.waitComplete(3 * time.Minute)
	// The hostile records went in last; their reports may still be on the way.
	var rejected []event.Rejected
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if _, rejected = e.events(); len(rejected) >= 4 {
			break
		}
	}
	if len(rejected) != 4 {
		t.Errorf("%d rejected-record reports, want 4", len(rejected))
	}

	// FHIR requests: what the server answered for our datastores against the fewest pages
	// the consumer's searches could have taken. Let in-flight re-checks settle first.
	time.Sleep(3 * time.Second)
	searches := 0
	for _, ds := range dss {
		searches += fhirSearches(t, ds)
	}
	metrics := scrape(t, "http://"+httpAddr+"/metrics")
	minPages := metrics["hlcdc_search_pages_min_total"]
	if minPages == 0 || float64(searches) > 1.5*minPages {
		t.Errorf("FHIR search requests %d, fewest possible %v: over 1.5×", searches, minPages)
	}
	hints := metrics[`hlcdc_records_total{outcome="act"}`]
	t.Logf("writes %d, hints %v, searches %v (re-reads %v), FHIR search requests %d, fewest pages %v, emitted %v",
		writes, hints, metrics["hlcdc_searches_total"], metrics["hlcdc_ranges_reread_total"], searches, minPages, metrics["hlcdc_events_emitted_total"])
	if err := p.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Errorf("consumer exit after SIGTERM: %v, want status 0", err)
	}
}

// TestE2ESigkillResume: the consumer is killed with SIGKILL mid-stream; a new one takes over
// the leases from the checkpoints and nothing is missing.
func TestE2ESigkillResume(t *testing.T) {
	e := newE2E(t, 2)
	a := e.startConsumer("kill-a", "CDC_LEASE_FAILOVER=3s")
	ds := stack.RandomHex(16)
	var recs [][]byte
	for range 150 {
		recs = append(recs, e.write(ds, "Observation", "", 0))
	}
	e.put(recs...)
	time.Sleep(2 * time.Second) // some windows done and checkpointed, some not
	a.stop(t, syscall.SIGKILL, 10*time.Second)

	recs = recs[:0]
	for range 150 {
		recs = append(recs, e.write(ds, "Observation", "", 0))
	}
	e.put(recs...)
	e.startConsumer("kill-b", "CDC_LEASE_FAILOVER=3s")
	e.waitComplete(2 * time.Minute)
}

// TestE2ETwoWorkersSplitAndSIGTERM: two consumers share an 8-shard stream; a shard is split
// mid-run and one consumer is stopped with SIGTERM (it drains and exits 0). Nothing is
// missing and both workers held leases.
func TestE2ETwoWorkersSplitAndSIGTERM(t *testing.T) {
	e := newE2E(t, 8)
	env := []string{"CDC_LEASE_FAILOVER=4s"}
	a := e.startConsumer("pair-a", env...)
	e.startConsumer("pair-b", env...)
	dss := []string{stack.RandomHex(16), stack.RandomHex(16)}

	owners := map[string]bool{}
	noteOwners := func() {
		for _, o := range e.leaseOwners() {
			owners[o] = true
		}
	}
	writeSome := func(n int) {
		var recs [][]byte
		for i := range n {
			recs = append(recs, e.write(dss[i%2], "Observation", "", 0))
		}
		e.put(recs...)
	}
	writeSome(100)
	deadline := time.Now().Add(30 * time.Second)
	for len(owners) < 2 && time.Now().Before(deadline) {
		noteOwners()
		time.Sleep(500 * time.Millisecond)
	}
	// split a shard in the middle of its hash key range
	split(t, e, "shardId-000000000000")
	writeSome(100)
	time.Sleep(2 * time.Second)
	noteOwners()
	if err := a.stop(t, syscall.SIGTERM, 60*time.Second); err != nil {
		t.Errorf("consumer a after SIGTERM: %v, want exit status 0", err)
	}
	writeSome(100)
	e.waitComplete(2 * time.Minute)
	noteOwners()
	if !owners["pair-a"] || !owners["pair-b"] {
		t.Errorf("lease owners seen: %v; want both pair-a and pair-b", owners)
	}
}

func split(t *testing.T, e *e2e, shard string) {
	t.Helper()
	ctx := context.Background()
	out, err := e.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.Shards {
		if aws.ToString(s.ShardId) != shard {
			continue
		}
		start, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		end, _ := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		mid := new(big.Int).Rsh(new(big.Int).Add(start, end), 1).String()
		if _, err := e.kc.SplitShard(ctx, &kinesis.SplitShardInput{
			StreamName: aws.String(e.stream), ShardToSplit: aws.String(shard), NewStartingHashKey: aws.String(mid),
		}); err != nil {
			t.Fatalf("split shard: %v", err)
		}
		e.waitStreamActive()
		return
	}
	t.Fatalf("no shard %s", shard)
}

// fhirSearches is how many search requests (count requests not included) the FHIR server
// answered for one datastore.
func fhirSearches(t *testing.T, ds string) int {
	t.Helper()
	st := stack.FHIRAdmin(t).Stats(ds)
	return st.Requests["search"] - st.CountRequests
}

// scrape reads a Prometheus text page into name{labels} → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := res.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	out := map[string]float64{}
	for _, line := range strings.Split(b.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestE2EHTTPAddrTaken: a taken --http-addr fails the start with a clear error instead of
// running without health checks and metrics.
func TestE2EHTTPAddrTaken(t *testing.T) {
	e := newE2E(t, 1)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := e.startConsumer("taken", "CDC_HTTP_ADDR="+l.Addr().String())
	select {
	case err := <-p.done:
		if err == nil || !strings.Contains(p.out.String(), "--http-addr") {
			t.Fatalf("exit %v, output %q; want a failure naming --http-addr", err, tail(p.out.String(), 3))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("consumer kept running with its HTTP address taken")
	}
}

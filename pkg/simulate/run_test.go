package simulate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
)

// fakeFHIR is an in-memory FHIR server that fails the test when two writes to one resource
// overlap or a write targets a resource that does not exist.
type fakeFHIR struct {
	t         *testing.T
	now       func() time.Time
	delay     time.Duration // real time each write takes, to let writes overlap
	failAfter int           // fail every write after this many (0: never)

	mu       sync.Mutex
	n        int
	busy     map[string]bool
	versions map[string][]string // key → versionIds, "" for a delete
	bodies   map[string][]byte
}

func newFakeFHIR(t *testing.T, now func() time.Time) *fakeFHIR {
	return &fakeFHIR{t: t, now: now, busy: map[string]bool{}, versions: map[string][]string{}, bodies: map[string][]byte{}}
}

func (f *fakeFHIR) begin(key string, mustExist bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.failAfter > 0 && f.n > f.failAfter {
		return 0, errors.New("fake: server down")
	}
	if key == "" { // a create: the id is not known yet
		return f.n, nil
	}
	if f.busy[key] {
		f.t.Errorf("overlapping writes to %s", key)
	}
	if vs := f.versions[key]; mustExist && (len(vs) == 0 || vs[len(vs)-1] == "") {
		f.t.Errorf("write to %s, which does not exist", key)
	}
	f.busy[key] = true
	return f.n, nil
}

func (f *fakeFHIR) end(key, vid string, body []byte) Version {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.busy[key] = false
	f.versions[key] = append(f.versions[key], vid)
	f.bodies[key] = body
	return Version{VersionID: vid, LastUpdated: f.now().Add(time.Millisecond)}
}

func (f *fakeFHIR) Create(_ context.Context, ds, typ string, body []byte) (Version, error) {
	n, err := f.begin("", false)
	if err != nil {
		return Version{}, err
	}
	id := fmt.Sprintf("id-%d", n)
	v := f.end(ds+"/"+typ+"/"+id, fmt.Sprint("v", n), body)
	v.ID = id
	return v, nil
}

func (f *fakeFHIR) Update(_ context.Context, ds, typ, id string, body []byte) (Version, error) {
	key := ds + "/" + typ + "/" + id
	n, err := f.begin(key, true)
	if err != nil {
		return Version{}, err
	}
	if !bytes.Contains(body, []byte(`"id":"`+id+`"`)) {
		f.t.Errorf("update body without the id %s", id)
	}
	v := f.end(key, fmt.Sprint("v", n), body)
	v.ID = id
	return v, nil
}

func (f *fakeFHIR) Delete(_ context.Context, ds, typ, id string) (Version, error) {
	key := ds + "/" + typ + "/" + id
	if _, err := f.begin(key, true); err != nil {
		return Version{}, err
	}
	v := f.end(key, "", nil)
	v.ID = id
	return v, nil
}

type fakeSink struct {
	mu      sync.Mutex
	records []types.PutRecordsRequestEntry
	calls   int
	err     error
}

func (s *fakeSink) Put(_ context.Context, rs []types.PutRecordsRequestEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return s.err
	}
	s.records = append(s.records, rs...)
	return nil
}

func readManifest(t *testing.T, b []byte) []ManifestEntry {
	t.Helper()
	var es []ManifestEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e ManifestEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("manifest line %q: %v", sc.Text(), err)
		}
		es = append(es, e)
	}
	return es
}

func TestRunWithFakes(t *testing.T) {
	cfg := mixConfig()
	cfg.Writes, cfg.Seed, cfg.Concurrency, cfg.HotResourceUpdates = 400, 11, 8, 15
	cfg.Types = []string{"Patient", "Observation", "Condition"}
	fhir := newFakeFHIR(t, time.Now)
	fhir.delay = 200 * time.Microsecond
	sink := &fakeSink{}
	var manifest bytes.Buffer
	var progress []int
	sum, err := Run(context.Background(), cfg, fhir, sink, &manifest, func(done, total int) {
		if total != 400 {
			t.Errorf("progress total %d", total)
		}
		progress = append(progress, done)
	})
	if err != nil {
		t.Fatal(err)
	}

	entries := readManifest(t, manifest.Bytes())
	if sum.Writes != 400 || len(entries) != 400 || sum.Creates+sum.Updates+sum.Deletes != 400 || sum.Seed != 11 {
		t.Fatalf("summary %+v, %d manifest lines", sum, len(entries))
	}
	if sum.Updates < 100 || sum.Deletes < 15 || sum.Duplicates == 0 || sum.Hostile == 0 {
		t.Errorf("summary %+v: too few updates, deletes, duplicates or hostile records", sum)
	}
	for i, d := range progress {
		if d != i+1 {
			t.Fatalf("progress %v is not 1, 2, 3…", progress[:i+1])
		}
	}

	// The manifest lists each resource's versions in the order the server made them.
	listed := map[string][]string{}
	for _, e := range entries {
		k := e.DatastoreID + "/" + e.ResourceType + "/" + e.ID
		listed[k] = append(listed[k], e.VersionID)
	}
	if len(listed) != len(fhir.versions) {
		t.Errorf("manifest has %d resources, the server %d", len(listed), len(fhir.versions))
	}
	for k, vs := range fhir.versions {
		if fmt.Sprint(vs) != fmt.Sprint(listed[k]) {
			t.Errorf("%s: server versions %v, manifest %v", k, vs, listed[k])
		}
	}
	// The hot resource: created, then updated 15 times.
	if hot := entries[0]; len(listed[hot.DatastoreID+"/"+hot.ResourceType+"/"+hot.ID]) < 16 || hot.ResourceType != "Patient" {
		t.Errorf("hot resource %+v has %d versions", hot, len(listed[hot.DatastoreID+"/"+hot.ResourceType+"/"+hot.ID]))
	}

	// Records: one per write, plus duplicates, plus hostile; each decodes to the write.
	if len(sink.records) != 400+sum.Duplicates+sum.Hostile || sum.Records != len(sink.records) {
		t.Fatalf("%d records, summary %+v", len(sink.records), sum)
	}
	byEvent := map[string]ManifestEntry{}
	for _, e := range entries {
		byEvent[e.EventID] = e
	}
	seen := map[string]int{}
	hostile := 0
	for _, r := range sink.records {
		d := decide(t, r.Data)
		if d.Outcome != cloudtrail.Act {
			hostile++
			if d.Outcome != cloudtrail.Reject {
				t.Errorf("hostile record %s", d.Outcome)
			}
			continue
		}
		c := d.Change
		e, ok := byEvent[c.EventID]
		if !ok {
			t.Fatalf("record for unknown event %s", c.EventID)
		}
		seen[c.EventID]++
		if c.DatastoreID != e.DatastoreID || c.ResourceType != e.ResourceType || c.Operation != e.Operation ||
			c.Region != DefaultRegion || c.Account != DefaultAccount {
			t.Errorf("record %+v does not match manifest %+v", c, e)
		}
		if c.EventTime.After(e.LastUpdated) || e.LastUpdated.Sub(c.EventTime) > 2*time.Second {
			t.Errorf("eventTime %v, lastUpdated %v", c.EventTime, e.LastUpdated)
		}
		if aws.ToString(r.PartitionKey) == "" {
			t.Error("no partition key")
		}
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	if len(seen) != 400 || dups != sum.Duplicates || hostile != sum.Hostile {
		t.Errorf("%d events seen, %d duplicates, %d hostile; summary %+v", len(seen), dups, hostile, sum)
	}
}

func TestRunPartitionByDatastoreAndNoEvents(t *testing.T) {
	cfg := mixConfig()
	cfg.Writes, cfg.PartitionKey, cfg.HostileFraction = 50, PartitionByDatastore, 0
	sink := &fakeSink{}
	var manifest bytes.Buffer
	if _, err := Run(context.Background(), cfg, newFakeFHIR(t, time.Now), sink, &manifest, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range sink.records {
		if k := aws.ToString(r.PartitionKey); k != ds1 && k != ds2 {
			t.Fatalf("partition key %q is not a datastore", k)
		}
	}

	cfg.InjectEvents = false
	manifest.Reset()
	sum, err := Run(context.Background(), cfg, newFakeFHIR(t, time.Now), nil, &manifest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Records != 0 || sum.Duplicates != 0 || strings.Contains(manifest.String(), "eventId") {
		t.Errorf("without events: %+v\n%s", sum, manifest.String())
	}
}

func TestRunPacing(t *testing.T) {
	start := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

	// 50 writes at 100/s take 490 ms of the (fake) clock.
	clock := clocktest.NewAuto(start)
	cfg := mixConfig()
	cfg.Writes, cfg.Rate, cfg.Clock = 50, 100, clock
	var manifest bytes.Buffer
	sum, err := Run(context.Background(), cfg, newFakeFHIR(t, clock.Now), &fakeSink{}, &manifest, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Writes != 50 || sum.Elapsed != 490*time.Millisecond {
		t.Errorf("writes %d in %v, want 50 in 490ms", sum.Writes, sum.Elapsed)
	}

	// A Duration run stops at the deadline: 2 s at 20/s and bursts of 5 every second.
	clock = clocktest.NewAuto(start)
	cfg.Writes, cfg.Duration, cfg.Rate, cfg.BurstSize, cfg.BurstEvery = 0, 2*time.Second, 20, 5, time.Second
	cfg.Clock = clock
	var totals []int
	sum, err = Run(context.Background(), cfg, newFakeFHIR(t, clock.Now), &fakeSink{}, &manifest, func(_, total int) { totals = append(totals, total) })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Writes != 50 || totals[0] != 50 {
		t.Errorf("duration run: %d writes (expected %d), want 50", sum.Writes, totals[0])
	}
}

func TestRunStopsAtFirstError(t *testing.T) {
	cfg := mixConfig()
	cfg.Writes, cfg.Concurrency, cfg.DuplicateFraction, cfg.HostileFraction = 100, 1, 0, 0
	fhir := newFakeFHIR(t, time.Now)
	fhir.failAfter = 10
	sink := &fakeSink{}
	var manifest bytes.Buffer
	sum, err := Run(context.Background(), cfg, fhir, sink, &manifest, nil)
	if err == nil || !strings.Contains(err.Error(), "server down") {
		t.Fatalf("err = %v", err)
	}
	// What was written is listed and announced.
	if sum.Writes != 10 || len(readManifest(t, manifest.Bytes())) != 10 || len(sink.records) != 10 || sum.Records != 10 {
		t.Errorf("summary %+v, %d records", sum, len(sink.records))
	}

	// With several workers, the first failure stops the others: no write is tried after the
	// writes in flight when it failed.
	cfg.Concurrency = 4
	fhir = newFakeFHIR(t, time.Now)
	fhir.failAfter, fhir.delay = 10, time.Millisecond
	sum, err = Run(context.Background(), cfg, fhir, &fakeSink{}, &bytes.Buffer{}, nil)
	if err == nil || sum.Writes > 10 || fhir.n > 10+cfg.Concurrency {
		t.Errorf("err %v, %d writes, %d tried; want a stop right after the 10th", err, sum.Writes, fhir.n)
	}

	// A failing sink stops the run too.
	sink = &fakeSink{err: errors.New("stream gone")}
	cfg.Concurrency = 4
	_, err = Run(context.Background(), cfg, newFakeFHIR(t, time.Now), sink, &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "stream gone") {
		t.Errorf("sink error: %v", err)
	}

	// Cancelling ends the run with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, cfg, newFakeFHIR(t, time.Now), &fakeSink{}, &bytes.Buffer{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	if _, err := Run(context.Background(), Config{}, newFakeFHIR(t, time.Now), &fakeSink{}, &bytes.Buffer{}, nil); err == nil {
		t.Error("an invalid config ran")
	}
}

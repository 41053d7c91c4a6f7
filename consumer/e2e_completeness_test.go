package main

// End-to-end tests of completeness (issue 9, "Show it"): changes that arrive without one hint
// per resource — batch Bundles, an import job, JSON PATCH, an unknown write-like call — are
// all found, through the real consumer binary on the local stack. The writes are made by the
// producer's simulation (pkg/simulate) in this process, so the Bundles, PATCHes, import job
// and their CloudTrail records are exactly what `producer simulate` makes.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kinesisput"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/simulate"
)

// simulate runs the producer's simulation against the test's FHIR server and stream and
// records each write (creates and updates; cfg must have no deletes) in e.writes, for check.
func (e *e2e) simulate(cfg simulate.Config) simulate.Summary {
	e.t.Helper()
	endpoint := e.fhir + "/datastore/{datastoreId}/r4/"
	importURL, err := simulate.LocalImportURL(endpoint)
	if err != nil {
		e.t.Fatal(err)
	}
	w, err := simulate.NewHTTPWriter(simulate.HTTPWriterOptions{Endpoint: endpoint, ImportURL: importURL})
	if err != nil {
		e.t.Fatal(err)
	}
	sink, err := kinesisput.New(e.kc, e.stream, kinesisput.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var manifest bytes.Buffer
	sum, err := simulate.Run(ctx, cfg, w, sink, &manifest, nil)
	if err != nil {
		e.t.Fatalf("simulate: %v", err)
	}
	dec := json.NewDecoder(&manifest)
	e.mu.Lock()
	defer e.mu.Unlock()
	for dec.More() {
		var m simulate.ManifestEntry
		if err := dec.Decode(&m); err != nil {
			e.t.Fatalf("manifest: %v", err)
		}
		if m.Operation == "delete" {
			e.t.Fatalf("simulate made a delete: check cannot judge it")
		}
		e.writes = append(e.writes, e2eWrite{DS: m.DatastoreID, Type: m.ResourceType, ID: m.ID, Version: m.VersionID, LastUpdated: m.LastUpdated})
	}
	return sum
}

// completeThenNoDups waits until nothing is missing, then lets the verifications of the last
// ranges run (CDC_VERIFY_AFTER is 3 s) and checks that they emitted no duplicate.
func (e *e2e) completeThenNoDups(timeout time.Duration) {
	e.t.Helper()
	e.waitComplete(timeout)
	time.Sleep(4 * time.Second)
	if missing, dups := e.check(); len(missing) > 0 || len(dups) > 0 {
		e.t.Errorf("after verification: %d missing, %d duplicates, e.g. %v", len(missing), len(dups), dups[:min(5, len(dups))])
	}
}

// typedHints writes one resource of each type and puts its ordinary single-resource hint,
// then waits until all are announced: from then on the types are known for the datastore.
func (e *e2e) typedHints(ds string, types []string) {
	e.t.Helper()
	var recs [][]byte
	for _, rt := range types {
		recs = append(recs, e.write(ds, rt, "", 0))
	}
	e.put(recs...)
	e.waitComplete(60 * time.Second)
}

// TestE2EBundles: 30 batch Bundles of 20 entries (creates and updates) across 4 types, each
// with ONE Bundle-shaped hint — 15 as ProcessBundle without a resourceType, 15 as a write of
// resourceType "Bundle". Every entry is announced, none twice: with the types given by
// CDC_TYPES, and with them known only from one ordinary hint per type before.
func TestE2EBundles(t *testing.T) {
	types := simulate.DefaultTypes()
	for _, tc := range []struct {
		name     string
		cdcTypes bool
	}{{"types from CDC_TYPES", true}, {"types known from hints", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, 4)
			ds := stack.RandomHex(16)
			var env []string
			if tc.cdcTypes {
				env = append(env, "CDC_TYPES="+strings.Join(types, ","))
			}
			e.startConsumer("bundles-1", env...)
			if !tc.cdcTypes {
				e.typedHints(ds, types)
			}
			for i, hint := range []string{simulate.HintProcessBundle, simulate.HintBundleType} {
				cfg := simulate.DefaultConfig()
				cfg.Datastores, cfg.Types, cfg.Seed = []string{ds}, types, uint64(i+1)
				cfg.Writes, cfg.Bundles, cfg.BundleSize, cfg.BundleType, cfg.BundleHint = 0, 15, 20, simulate.BundleBatch, hint
				cfg.UpdateRatio = 0.4
				sum := e.simulate(cfg)
				if sum.Bundles != 15 || sum.Writes != 300 || sum.Records != 15 || sum.Updates == 0 || sum.Creates == 0 {
					t.Fatalf("%s: summary %+v; want 15 Bundles of 20 creates and updates, one record each", hint, sum)
				}
			}
			perType := map[string]int{}
			for _, w := range e.writes {
				perType[w.Type]++
			}
			if len(perType) != len(types) {
				t.Fatalf("writes per type %v, want all of %v", perType, types)
			}
			e.completeThenNoDups(90 * time.Second)
			f := e.readFigures([]string{ds})
			t.Logf("%d writes (%d resources): %d searches, %d counts, %d resources returned", f.writes, f.distinct, f.searches, f.counts, f.resources)
		})
	}
}

// describeCounter is a pass-through proxy in front of the local FHIR server's HealthLake
// control plane that counts DescribeFHIRImportJob calls answered 200: proof that the
// consumer read the job's times rather than the event's.
func describeCounter(t *testing.T, target string) (endpoint string, calls *atomic.Int64) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	calls = &atomic.Int64{}
	tr := &http.Transport{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = tr
	proxy.ModifyResponse = func(res *http.Response) error {
		if res.Request.Header.Get("X-Amz-Target") == "HealthLake.DescribeFHIRImportJob" && res.StatusCode == http.StatusOK {
			calls.Add(1)
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
	})
	return srv.URL, calls
}

// TestE2EImport: 2,000 resources written by one import job — no per-resource hint — and the
// job's one "Import Job Completed" event: every resource is announced, with the range taken
// from the event's submitTime, and from DescribeFHIRImportJob (--describe-import-jobs). The
// datastore's types are known from CDC_TYPES only.
func TestE2EImport(t *testing.T) {
	types := simulate.DefaultTypes()
	for _, tc := range []struct {
		name     string
		describe bool
	}{{"submitTime from the event", false}, {"DescribeFHIRImportJob", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, 2)
			ds := stack.RandomHex(16)
			env := []string{"CDC_TYPES=" + strings.Join(types, ",")}
			var calls *atomic.Int64
			if tc.describe {
				var endpoint string
				endpoint, calls = describeCounter(t, e.fhir)
				env = append(env, "CDC_DESCRIBE_IMPORT_JOBS=true", "AWS_ENDPOINT_URL_HEALTHLAKE="+endpoint)
			}
			e.startConsumer("import-1", env...)
			cfg := simulate.DefaultConfig()
			cfg.Datastores, cfg.Types, cfg.Seed = []string{ds}, types, 3
			cfg.Writes, cfg.Import = 0, 2000
			sum := e.simulate(cfg)
			if sum.Imported != 2000 || sum.ImportJobs != 1 || sum.Records != 1 {
				t.Fatalf("summary %+v; want 2,000 imported in one job, one record", sum)
			}
			e.completeThenNoDups(90 * time.Second)
			f := e.readFigures([]string{ds})
			t.Logf("%d imported: %d searches, %d counts, %d resources returned", f.writes, f.searches, f.counts, f.resources)
			if tc.describe && calls.Load() == 0 {
				t.Errorf("no DescribeFHIRImportJob call answered: the range came from the event")
			}
		})
	}
}

// TestE2EPatchHeavy: 400 single writes over 4 types, every update a JSON PATCH hinted as
// PatchResource: nothing missing, no duplicate.
func TestE2EPatchHeavy(t *testing.T) {
	e := newE2E(t, 4)
	ds := stack.RandomHex(16)
	e.startConsumer("patch-1")
	cfg := simulate.DefaultConfig()
	cfg.Datastores, cfg.Seed = []string{ds}, 4
	cfg.Writes, cfg.UpdateRatio, cfg.PatchRatio = 400, 0.6, 1
	sum := e.simulate(cfg)
	if sum.Updates < 150 || sum.Patches != sum.Updates || sum.Records != 400 {
		t.Fatalf("summary %+v; want about 240 updates, all PATCHes, and a record per write", sum)
	}
	if got := stack.FHIRAdmin(t).Stats(ds).Requests["patch"]; got != sum.Patches {
		t.Fatalf("FHIR server saw %d PATCH requests, simulate made %d", got, sum.Patches)
	}
	e.completeThenNoDups(90 * time.Second)
}

// TestE2EUnknownWriteSearchesKnownTypes: a successful call of a write-like name no list knows
// (EraseResource, shaped like pkg/cloudtrail/testdata/unknown-write.json) makes the consumer
// search every type known for the datastore — and no other — and count the hint by name. Its
// resourceType is not trusted (Decide drops it): the writes it stands for here are of the
// other known types, made without hints, and they are announced all the same.
func TestE2EUnknownWriteSearchesKnownTypes(t *testing.T) {
	e := newE2E(t, 2)
	addr := freeAddr(t)
	e.startConsumer("unknown-1", "CDC_HTTP_ADDR="+addr)
	ds := stack.RandomHex(16)
	known := []string{"Patient", "Observation", "Encounter"}
	e.typedHints(ds, known)
	time.Sleep(4 * time.Second) // the first ranges' verifications, so the counters below are the new hint's
	admin := stack.FHIRAdmin(t)
	before := admin.Stats(ds).ByType

	for _, rt := range known {
		e.write(ds, rt, "", 0) // no hint: only the unknown call's search can find it
	}
	e.put(unknownWrite(t, ds, time.Now()))
	e.completeThenNoDups(60 * time.Second)

	after := admin.Stats(ds).ByType
	searches := func(c stack.FHIRCounters) int { return c.Requests["search"] - c.CountRequests }
	for _, rt := range known {
		if searches(after[rt]) <= searches(before[rt]) {
			t.Errorf("%s: %d searches before the unknown call, %d after: not searched", rt, searches(before[rt]), searches(after[rt]))
		}
	}
	if c, ok := after["Condition"]; ok && c.Requests["search"] > 0 {
		t.Errorf("Condition, a type the datastore never had, was searched %d times", c.Requests["search"])
	}
	m := scrape(t, "http://"+addr+"/metrics")
	if got := metricWith(m, "hlcdc_hints_unrecognised_total", `event_name="EraseResource"`); got != 1 {
		t.Errorf(`hlcdc_hints_unrecognised_total{event_name="EraseResource"} = %v, want 1`, got)
	}
}

// unknownWrite is the unknown-write fixture moved to datastore ds and time at, with fresh ids.
func unknownWrite(t *testing.T, ds string, at time.Time) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "pkg", "cloudtrail", "testdata", "unknown-write.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	detail := ev["detail"].(map[string]any)
	if detail["eventName"] != "EraseResource" {
		t.Fatalf("fixture eventName %v, want EraseResource", detail["eventName"])
	}
	ts := at.UTC().Truncate(time.Second).Format(time.RFC3339)
	ev["id"], ev["time"] = "eb-"+stack.RandomHex(10), ts
	detail["eventTime"], detail["eventID"], detail["requestID"] = ts, "ct-"+stack.RandomHex(10), "req-"+stack.RandomHex(6)
	detail["requestParameters"].(map[string]any)["datastoreId"] = ds
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// metricWith sums the series of a scraped metric whose labels contain label.
func metricWith(m map[string]float64, name, label string) float64 {
	var sum float64
	for k, v := range m {
		if (k == name || strings.HasPrefix(k, name+"{")) && strings.Contains(k, label) {
			sum += v
		}
	}
	return sum
}

// TestE2EBulkDeleteReported: a `$bulk-delete` job's CloudTrail record (StartFHIRBulkDeleteJob)
// names no deleted resource, and the job deletes later, with no hint each. The consumer reports
// it on the bus as "Deletes Unresolved" (reason bulk-delete, count 0) for the type it names,
// and for every known type when it names none — never an ack in silence.
func TestE2EBulkDeleteReported(t *testing.T) {
	e := newE2E(t, 2)
	e.startConsumer("bulk-1")
	ds := stack.RandomHex(16)
	known := []string{"Patient", "Observation"}
	e.typedHints(ds, known)
	bulk := func(rt string) []byte {
		rec, err := cloudtrail.Encode(cloudtrail.Change{
			EventID: uuid.NewString(), DatastoreID: ds, ResourceType: rt, Operation: event.BulkDelete,
			EventTime: time.Now().UTC().Truncate(time.Second), Region: "us-east-1", Account: "123456789012",
		}, uuid.NewString(), uuid.NewString())
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	e.put(bulk("Observation"), bulk(""))
	want := map[string]int{"Observation": 2, "Patient": 1}
	var got map[string]int
	stack.Eventually(t, 60*time.Second, "bulk-delete reports for both types", func() bool {
		got = map[string]int{}
		for _, l := range stack.Recorded(t, e.source) {
			if l.DetailType != event.DetailTypeDeletesUnresolved {
				continue
			}
			d := stack.Detail[event.DeletesUnresolved](t, l)
			if d.DatastoreID != ds || d.Reason != "bulk-delete" || d.Count != 0 || d.From != "1970-01-01T00:00:00.000Z" {
				t.Fatalf("report %+v, want a bulk-delete report of the datastore, count 0, from the epoch", d)
			}
			got[d.ResourceType]++
		}
		return got["Observation"] >= want["Observation"] && got["Patient"] >= want["Patient"]
	})
	time.Sleep(3 * time.Second)
	for rt, n := range want {
		if got[rt] != n {
			t.Errorf("%s: %d bulk-delete reports, want %d", rt, got[rt], n)
		}
	}
}

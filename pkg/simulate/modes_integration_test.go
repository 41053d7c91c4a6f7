package simulate

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/healthlake"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kinesisput"
)

// localRun runs cfg against the local FHIR server and a new kinesalite stream and returns the
// summary, the manifest and the decided records of the stream.
func localRun(t *testing.T, cfg Config) (Summary, []ManifestEntry, []cloudtrail.Decision) {
	t.Helper()
	fhirBase := "http://" + stack.Addr(t, stack.FHIR)
	kc := stack.KinesisClient(t)
	stream := stack.CreateStream(t, kc, "simulate-test", 2)
	endpoint := fhirBase + "/datastore/{datastoreId}/r4/"
	importURL, err := LocalImportURL(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := NewHTTPWriter(HTTPWriterOptions{Endpoint: endpoint, Client: httpClient(t), ImportURL: importURL})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := kinesisput.New(kc, stream, kinesisput.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var manifest bytes.Buffer
	sum, err := Run(ctx, cfg, writer, sink, &manifest, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary %+v", sum)
	var decided []cloudtrail.Decision
	for _, r := range stack.ReadStream(t, kc, stream) {
		decided = append(decided, decide(t, r.Data))
	}
	entries := readManifest(t, manifest.Bytes())
	checkServer(t, httpClient(t), fhirBase, entries)
	return sum, entries, decided
}

// checkServer: the server holds what the manifest says, each resource's last listed write.
func checkServer(t *testing.T, c *http.Client, base string, entries []ManifestEntry) {
	t.Helper()
	last := map[[3]string]ManifestEntry{}
	for _, e := range entries {
		last[[3]string{e.DatastoreID, e.ResourceType, e.ID}] = e
	}
	for k, e := range last {
		status, vid := fhirGet(t, c, base, k[0], k[1], k[2])
		switch {
		case e.Operation == "delete" && status != http.StatusNotFound && status != http.StatusGone:
			t.Errorf("%v: deleted, but the server answers %d", k, status)
		case e.Operation != "delete" && (status != http.StatusOK || vid != e.VersionID):
			t.Errorf("%v: server has version %q (status %d), the manifest's last is %q", k, vid, status, e.VersionID)
		}
	}
}

// Batch and transaction Bundles, with both hint shapes: exactly one hint per Bundle, naming
// the Bundle's datastore and no single type, and every entry in the manifest as the server
// holds it.
func TestBundlesOnLocalStack(t *testing.T) {
	for _, tc := range []struct{ bundleType, hint string }{
		{BundleBatch, HintProcessBundle},
		{BundleTransaction, HintBundleType},
	} {
		t.Run(tc.bundleType+"/"+tc.hint, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Datastores = []string{NewDatastoreID(), NewDatastoreID()}
			cfg.Writes, cfg.Bundles, cfg.BundleSize, cfg.BundleType, cfg.BundleHint = 0, 12, 20, tc.bundleType, tc.hint
			cfg.UpdateRatio, cfg.DeleteRatio, cfg.PatchRatio, cfg.Seed = 0.4, 0.05, 0.3, 7
			sum, entries, decided := localRun(t, cfg)

			if sum.Bundles != 12 || sum.Writes != 240 || len(entries) != 240 || sum.Updates == 0 || sum.Patches == 0 || sum.Deletes == 0 {
				t.Fatalf("summary %+v, %d manifest lines", sum, len(entries))
			}
			if len(decided) != 12 || sum.Records != 12 {
				t.Fatalf("%d records on the stream (summary: %d), want one per Bundle", len(decided), sum.Records)
			}
			byEvent := map[string][]ManifestEntry{}
			for _, e := range entries {
				if e.Via != tc.bundleType || e.Bundle < 1 || e.Bundle > 12 || e.EventID == "" || e.HintDropped != "" {
					t.Fatalf("manifest line %+v", e)
				}
				if (e.Method == "PATCH") != (e.Operation == "update" && e.Method != "PUT") {
					t.Errorf("method %s for %s", e.Method, e.Operation)
				}
				byEvent[e.EventID] = append(byEvent[e.EventID], e)
			}
			for _, d := range decided {
				c := d.Change
				if d.Outcome != cloudtrail.Act || c.Operation != event.Mixed || !c.AllTypes {
					t.Fatalf("record: %s %s %+v", d.Outcome, d.Reason, c)
				}
				wantName, wantType := "ProcessBundle", ""
				if tc.hint == HintBundleType {
					wantName, wantType = "CreateResource", "Bundle"
				}
				if c.EventName != wantName || c.ResourceType != wantType {
					t.Errorf("hint %s of type %q, want %s of type %q", c.EventName, c.ResourceType, wantName, wantType)
				}
				es := byEvent[c.EventID]
				if len(es) != 20 {
					t.Fatalf("hint %s covers %d manifest lines, want the Bundle's 20", c.EventID, len(es))
				}
				for _, e := range es {
					if e.DatastoreID != c.DatastoreID || e.Bundle != es[0].Bundle || c.EventTime.After(e.LastUpdated) {
						t.Errorf("hint %+v for manifest line %+v", c, e)
					}
				}
				delete(byEvent, c.EventID)
			}
			if len(byEvent) != 0 {
				t.Errorf("%d Bundles without a hint", len(byEvent))
			}
		})
	}
}

// JSON Patch updates: hinted as PatchResource, counted by the server as patches.
func TestPatchOnLocalStack(t *testing.T) {
	cfg := DefaultConfig()
	ds := NewDatastoreID()
	cfg.Datastores, cfg.Writes, cfg.UpdateRatio, cfg.PatchRatio, cfg.Seed = []string{ds}, 80, 0.6, 0.5, 11
	sum, entries, decided := localRun(t, cfg)
	patches := map[string]bool{}
	for _, e := range entries {
		if e.Via != ViaREST {
			t.Fatalf("manifest line %+v", e)
		}
		if e.Method == "PATCH" {
			patches[e.EventID] = true
		}
	}
	if len(patches) == 0 || len(patches) != sum.Patches {
		t.Fatalf("%d PATCH lines, summary %+v", len(patches), sum)
	}
	hinted := 0
	for _, d := range decided {
		if d.Change.EventName == "PatchResource" {
			hinted++
			if !patches[d.Change.EventID] || d.Change.Operation != event.Update {
				t.Errorf("PatchResource hint %+v for no PATCH of the manifest", d.Change)
			}
		} else if patches[d.Change.EventID] {
			t.Errorf("PATCH hinted as %s", d.Change.EventName)
		}
	}
	// The admin client uses the default transport: close its connection, or goleak sees it.
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	if got := stack.FHIRAdmin(t).Stats(ds).Requests["patch"]; hinted != len(patches) || got != len(patches) {
		t.Errorf("%d PatchResource hints, server counted %d patches, manifest %d", hinted, got, len(patches))
	}
}

// An import: no per-resource hint, one "Import Job Completed" event naming the job the
// server ran (DescribeFHIRImportJob on the stand-in agrees), every resource in the manifest.
func TestImportOnLocalStack(t *testing.T) {
	cfg := DefaultConfig()
	ds := NewDatastoreID()
	cfg.Datastores, cfg.Writes, cfg.Import, cfg.UpdateRatio, cfg.Seed = []string{ds}, 20, 2000, 0.3, 13
	sum, entries, decided := localRun(t, cfg)
	if sum.Imported != 2000 || sum.ImportJobs != 1 || sum.Writes != 2020 || len(entries) != 2020 {
		t.Fatalf("summary %+v, %d lines", sum, len(entries))
	}
	var imports []cloudtrail.Change
	for _, d := range decided {
		if d.Outcome != cloudtrail.Act {
			t.Fatalf("record %s %s", d.Outcome, d.Reason)
		}
		if d.Change.Operation == event.Import {
			imports = append(imports, d.Change)
		}
	}
	if len(imports) != 1 || len(decided) != 21 {
		t.Fatalf("%d import events among %d records, want 1 among 21", len(imports), len(decided))
	}
	ev := imports[0]
	imported := 0
	for _, e := range entries {
		if e.Via != ViaImport {
			continue
		}
		imported++
		if e.JobID != ev.JobID || e.EventID != ev.EventID || e.Method != "" || e.Operation != "create" || e.LastUpdated.Before(ev.JobSubmitTime) || e.LastUpdated.After(ev.EventTime) {
			t.Fatalf("manifest line %+v for import event %+v", e, ev)
		}
	}
	if imported != 2000 || ev.JobStatus != cloudtrail.JobStatusCompleted || ev.DatastoreID != ds {
		t.Errorf("%d imported lines, event %+v", imported, ev)
	}

	hl := healthlake.NewFromConfig(stack.AWSConfig(t), func(o *healthlake.Options) { o.BaseEndpoint = aws.String(stack.URL(t, stack.FHIR)) })
	job, err := hl.DescribeFHIRImportJob(context.Background(), &healthlake.DescribeFHIRImportJobInput{DatastoreId: aws.String(ds), JobId: aws.String(ev.JobID)})
	if err != nil {
		t.Fatal(err)
	}
	if p := job.ImportJobProperties; !p.SubmitTime.Equal(ev.JobSubmitTime) || p.EndTime.After(ev.EventTime) {
		t.Errorf("job submitted %v, ended %v; event: submitted %v at %v", p.SubmitTime, p.EndTime, ev.JobSubmitTime, ev.EventTime)
	}
}

// Dropped hints: the writes are made, the stream lacks exactly the hints the manifest marks as
// dropped, at random and in the gap.
func TestDropHintsOnLocalStack(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Datastores = []string{NewDatastoreID()}
	cfg.Writes, cfg.Rate, cfg.UpdateRatio, cfg.Seed = 150, 100, 0.3, 17
	cfg.DropHints, cfg.DropGap = 0.1, Gap{Start: 500 * time.Millisecond, Duration: 400 * time.Millisecond}
	sum, entries, decided := localRun(t, cfg)
	want := map[string]bool{}
	why := map[string]int{}
	for _, e := range entries {
		why[e.HintDropped]++
		if e.HintDropped == "" {
			want[e.EventID] = true
		}
	}
	if why[DroppedGap] < 20 || why[DroppedRandom] == 0 || why[DroppedGap]+why[DroppedRandom] != sum.HintsDropped {
		t.Fatalf("dropped %v, summary %+v", why, sum)
	}
	for _, d := range decided {
		if !want[d.Change.EventID] {
			t.Errorf("hint %s on the stream: dropped, or not in the manifest", d.Change.EventID)
		}
		delete(want, d.Change.EventID)
	}
	if len(want) != 0 || len(decided) != 150-sum.HintsDropped {
		t.Errorf("%d hints missing from the stream; %d records for %d writes and %d dropped", len(want), len(decided), 150, sum.HintsDropped)
	}
}

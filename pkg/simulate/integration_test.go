package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kinesisput"
)

// httpClient keeps its idle connections only as long as the test (goleak would see them).
func httpClient(t testing.TB) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// fhirGet reads a resource back from the local FHIR server.
func fhirGet(t *testing.T, c *http.Client, base, ds, typ, id string) (int, string) {
	t.Helper()
	resp, err := c.Get(fmt.Sprintf("%s/datastore/%s/r4/%s/%s", base, ds, typ, id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Meta struct {
			VersionID string `json:"versionId"`
		} `json:"meta"`
	}
	json.Unmarshal(b, &r)
	return resp.StatusCode, r.Meta.VersionID
}

// TestRunOnLocalStack writes to the local FHIR server and kinesalite, then checks that the
// manifest is what the server holds and the stream holds exactly the expected records.
func TestRunOnLocalStack(t *testing.T) {
	fhirBase := "http://" + stack.Addr(t, stack.FHIR)
	kc := stack.KinesisClient(t)
	stream := stack.CreateStream(t, kc, "simulate-test", 2)
	client := httpClient(t)
	writer, err := NewHTTPWriter(HTTPWriterOptions{Endpoint: fhirBase + "/datastore/{datastoreId}/r4/", Client: client})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := kinesisput.New(kc, stream, kinesisput.Options{})
	if err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Datastores = []string{NewDatastoreID(), NewDatastoreID()}
	cfg.Types = []string{"Patient", "Observation"}
	cfg.Writes, cfg.UpdateRatio, cfg.DeleteRatio = 100, 0.1, 0.05
	cfg.DuplicateFraction, cfg.HostileFraction = 0.1, 0.05
	cfg.HotResourceUpdates, cfg.BurstSize, cfg.BurstEvery, cfg.Rate = 5, 10, 500*time.Millisecond, 200
	cfg.Seed = 20261120
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var manifest bytes.Buffer
	sum, err := Run(ctx, cfg, writer, sink, &manifest, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("summary %+v", sum)
	entries := readManifest(t, manifest.Bytes())
	if len(entries) != 100 || sum.Writes != 100 || sum.Deletes == 0 || sum.Updates < 5 {
		t.Fatalf("%d manifest lines, summary %+v", len(entries), sum)
	}

	checkServer(t, client, fhirBase, entries)

	// The stream holds one record per write, the duplicates and the hostile records.
	records := stack.ReadStream(t, kc, stream)
	if want := sum.Writes + sum.Duplicates + sum.Hostile; len(records) != want || sum.Records != want {
		t.Fatalf("stream has %d records, summary says %d put, want %d", len(records), sum.Records, want)
	}
	byEvent := map[string]ManifestEntry{}
	for _, e := range entries {
		byEvent[e.EventID] = e
	}
	hostile, acted := 0, map[string]int{}
	for _, r := range records {
		d := decide(t, r.Data)
		if d.Outcome != cloudtrail.Act {
			if d.Outcome != cloudtrail.Reject {
				t.Errorf("record is %s (%s), want act or reject", d.Outcome, d.Reason)
			}
			hostile++
			continue
		}
		e, ok := byEvent[d.Change.EventID]
		if !ok {
			t.Fatalf("record for event %s, not in the manifest", d.Change.EventID)
		}
		acted[d.Change.EventID]++
		c := d.Change
		if c.DatastoreID != e.DatastoreID || c.ResourceType != e.ResourceType || c.Operation != e.Operation {
			t.Errorf("record %+v does not match manifest line %+v", c, e)
		}
		if c.EventTime.After(e.LastUpdated) {
			t.Errorf("eventTime %v after lastUpdated %v", c.EventTime, e.LastUpdated)
		}
	}
	dups := 0
	for _, n := range acted {
		dups += n - 1
	}
	if hostile != sum.Hostile || dups != sum.Duplicates || len(acted) != sum.Writes {
		t.Errorf("stream: %d hostile, %d duplicates, %d writes; summary %+v", hostile, dups, len(acted), sum)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("ran out of time")
	}
}

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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

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

// localStream creates a stream of shards shards on kinesalite, deleted when the test ends
// (kinesalite's shard limit counts every stream).
func localStream(t *testing.T, shards int32) (*kinesis.Client, string) {
	t.Helper()
	kc := kinesis.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  httpClient(t),
	}, func(o *kinesis.Options) { o.BaseEndpoint = aws.String("http://" + stack.Addr(t, stack.Kinesis)) })
	stream := "simulate-test-" + NewDatastoreID()[:12]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)}); err != nil {
			t.Errorf("DeleteStream: %v", err)
		}
	})
	w := kinesis.NewStreamExistsWaiter(kc, func(o *kinesis.StreamExistsWaiterOptions) { o.MinDelay, o.MaxDelay = 50*time.Millisecond, time.Second })
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, 20*time.Second); err != nil {
		t.Fatalf("stream %s not ACTIVE: %v", stream, err)
	}
	return kc, stream
}

// readStream reads every record of every shard from TRIM_HORIZON.
func readStream(t *testing.T, kc *kinesis.Client, stream string) []types.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	var all []types.Record
	for _, sh := range ls.Shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("GetShardIterator: %v", err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
			if err != nil {
				t.Fatalf("GetRecords: %v", err)
			}
			all = append(all, out.Records...)
			if len(out.Records) == 0 {
				break // an open shard has a next iterator forever; empty means read to the end
			}
			iter = out.NextShardIterator
		}
	}
	return all
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
	kc, stream := localStream(t, 2)
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

	// The server holds what the manifest says: each resource's last listed write.
	last := map[[3]string]ManifestEntry{}
	for _, e := range entries {
		last[[3]string{e.DatastoreID, e.ResourceType, e.ID}] = e
	}
	for k, e := range last {
		status, vid := fhirGet(t, client, fhirBase, k[0], k[1], k[2])
		switch {
		case e.Operation == "delete" && status != http.StatusNotFound && status != http.StatusGone:
			t.Errorf("%v: deleted, but the server answers %d", k, status)
		case e.Operation != "delete" && (status != http.StatusOK || vid != e.VersionID):
			t.Errorf("%v: server has version %q (status %d), the manifest's last is %q", k, vid, status, e.VersionID)
		}
	}

	// The stream holds one record per write, the duplicates and the hostile records.
	records := readStream(t, kc, stream)
	if want := sum.Writes + sum.Duplicates + sum.Hostile; len(records) != want || sum.Records != want {
		t.Fatalf("stream has %d records, summary says %d put, want %d", len(records), sum.Records, want)
	}
	byEvent := map[string]ManifestEntry{}
	for _, e := range entries {
		byEvent[e.EventID] = e
	}
	hostile, acted := 0, map[string]int{}
	for _, r := range records {
		d := validator.Decide(r.Data)
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

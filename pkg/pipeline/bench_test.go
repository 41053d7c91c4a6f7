package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/redis/go-redis/v9"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
)

// pagedSearcher answers every search with the same pages, built once: the benchmark measures
// our path (decode, coalesce, dedup on Redis, emit to the recorder), not the FHIR server.
type pagedSearcher struct {
	pages   []fhir.Page
	version atomic.Int64 // bumped per search, so every search finds new versions
}

func (s *pagedSearcher) Search(ctx context.Context, _, _ string, _, _ time.Time, visit func(fhir.Page) error) error {
	v := fmt.Sprint(s.version.Add(1))
	for _, p := range s.pages {
		page := fhir.Page{Number: p.Number, Resources: make([]fhir.Resource, len(p.Resources))}
		for i, r := range p.Resources {
			r.VersionID = v
			page.Resources[i] = r
		}
		if err := visit(page); err != nil {
			return err
		}
	}
	return nil
}

func (s *pagedSearcher) History(context.Context, string, string, time.Time, func(fhir.HistoryPage) error) error {
	return nil
}

// BenchmarkPipeline is the in-process path per change event: one CloudTrail record decoded
// and coalesced, its window's search answered in memory (100 resources of about 600 bytes a
// window), every resource claimed and marked done on the real Redis and emitted to the
// recorder through the real EventBridge client. Reported: events/s and allocations per event.
func BenchmarkPipeline(b *testing.B) {
	recorder := "http://" + localAddr(b, "EVENTBRIDGE", "14010")
	rdb := redis.NewClient(&redis.Options{Addr: localAddr(b, "REDIS", "16379")})
	defer rdb.Close()
	store, err := dedup.NewStore(rdb, dedup.Options{Prefix: "bench:" + randomHex(6) + ":", DoneTTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	eb := eventbridge.New(eventbridge.Options{
		BaseEndpoint: aws.String(recorder), Region: "us-east-1", Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	emitter, err := bus.New(eb, bus.Options{MaxInFlight: 8})
	if err != nil {
		b.Fatal(err)
	}
	builder, err := event.NewBuilder(event.Options{Source: "bench.pipeline." + randomHex(4)})
	if err != nil {
		b.Fatal(err)
	}
	const perWindow = 100
	ds := randomHex(16)
	body := []byte(`{"resourceType":"Observation","id":"ID","meta":{"versionId":"1","lastUpdated":"2026-11-20T09:15:03.123Z"},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/p-1"},"effectiveDateTime":"2026-11-20T09:15:00Z","valueQuantity":{"value":72,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"},"note":[{"text":"synthetic benchmark data, no real person"}]}`)
	searcher := &pagedSearcher{}
	page := fhir.Page{Number: 1}
	for i := range perWindow {
		page.Resources = append(page.Resources, fhir.Resource{
			ResourceType: "Observation", ID: fmt.Sprintf("obs-%03d", i),
			LastUpdated: time.Date(2026, 11, 20, 9, 15, 3, 0, time.UTC), Raw: json.RawMessage(body),
		})
	}
	searcher.pages = []fhir.Page{page}

	cfg := pipeline.DefaultConfig()
	cfg.Windows = coalesce.Config{Window: time.Second, MaxEvents: perWindow}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	validator, _ := cloudtrail.NewValidator(nil)
	p, err := pipeline.New(cfg, pipeline.Parts{
		Validator: validator, FHIR: searcher, Emitter: emitter, Events: builder,
		NewClaims: func() pipeline.Claims { return store.WithOwner(dedup.RandomOwner()) },
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// One record per event: a window of perWindow hints finds perWindow resources.
	records := make([][]byte, perWindow)
	for i := range records {
		records[i], _ = cloudtrail.Encode(cloudtrail.Change{
			EventID: fmt.Sprintf("ev-%d", i), DatastoreID: ds, ResourceType: "Observation",
			Operation: cloudtrail.Update, EventTime: time.Date(2026, 11, 20, 9, 15, 3, 0, time.UTC),
			Region: "us-east-1", Account: "123456789012",
		}, "env", "req")
	}
	var acked atomic.Int64
	ack := func() { acked.Add(1) }
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	// Whole windows only: a window closes when it holds perWindow hints, so a partial last
	// window would wait for its timer and count as idle time.
	n := (b.N + perWindow - 1) / perWindow * perWindow
	for i := range n {
		if err := p.Handle(ctx, pipeline.Record{ShardID: "s", SequenceNumber: fmt.Sprint(i), Data: records[i%perWindow]}, ack); err != nil {
			b.Fatal(err)
		}
	}
	for acked.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	s := p.Stats().Snapshot()
	b.ReportMetric(float64(s.Emitted)/time.Since(start).Seconds(), "events/s")
	if s.EmitFailed > 0 {
		b.Fatalf("emit failures: %+v", s)
	}
}

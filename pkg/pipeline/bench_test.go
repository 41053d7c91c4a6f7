package pipeline_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kcl"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/telemetry"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// pagedSearcher answers a search with perSecond resources for every whole second of its
// range (the hints' seconds), in pages of 100, built from one resource body: the benchmark
// measures our path (decode, timeline, dedup on Redis, emit), not the FHIR server. Each
// resource is found once, so each hint of a second becomes one event.
type pagedSearcher struct {
	raw       json.RawMessage
	perSecond int
	version   string // every resource's versionId; "" is "1"
}

func (s *pagedSearcher) Search(ctx context.Context, _, _ string, from, to time.Time, visit func(fhir.Page) error) error {
	page := fhir.Page{Number: 1}
	for sec := from.Truncate(time.Second); sec.Before(to); sec = sec.Add(time.Second) {
		if sec.Before(from) {
			continue
		}
		for i := range s.perSecond {
			page.Resources = append(page.Resources, fhir.Resource{
				ResourceType: "Observation", ID: benchID(sec, i), VersionID: cmp.Or(s.version, "1"),
				LastUpdated: sec.Add(time.Duration(i) * time.Millisecond), Raw: s.raw,
			})
			if len(page.Resources) == 100 {
				if err := visit(page); err != nil {
					return err
				}
				page = fhir.Page{Number: page.Number + 1}
			}
		}
	}
	if len(page.Resources) > 0 {
		return visit(page)
	}
	return nil
}

func benchID(sec time.Time, i int) string { return fmt.Sprintf("obs-%d-%03d", sec.Unix(), i) }

var _ pipeline.VersionReader = (*pagedSearcher)(nil)

// InstanceHistory and VRead make pagedSearcher a pipeline.VersionReader that knows no older
// version: with versions=all, the benchmark's resources never have a gap to read.
func (s *pagedSearcher) InstanceHistory(context.Context, string, string, string, time.Time, func(fhir.HistoryPage) error) error {
	return nil
}

func (s *pagedSearcher) VRead(context.Context, string, string, string, string) (fhir.Resource, error) {
	return fhir.Resource{}, fhir.ErrNotFound
}

func (s *pagedSearcher) HistoryRange(context.Context, string, string, time.Time, time.Time, func(fhir.HistoryPage) error) error {
	return nil
}

// BenchmarkPipeline is the in-process path per change event: one CloudTrail record decoded
// and coalesced, its window's search answered in memory (100 resources of about 600 bytes a
// window), every resource claimed and marked done on the real Redis and emitted to the
// recorder through the real EventBridge client. Reported: events/s and allocations per event.
//
// tracing=off is the consumer without OTEL_TRACES_EXPORTER: the no-op tracer provider and
// uninstrumented clients. tracing=on is the consumer with an exporter: an SDK provider
// sampling every trace into a batch processor (exporting to nowhere), a batch span per 100
// records, the window span, and redisotel and otelaws spans. Both record the OTel metrics
// into the SDK meter provider the consumer serves /metrics from.
//
// emit=fake replaces the recorder with an in-memory PutEvents that accepts every entry: the
// path up to the bus client, without the recorder's HTTP and file work on the same cores.
//
// versions=all is emit=fake with CDC_VERSIONS=all over updates: every resource found is at
// version 2, and version 1 of each went out before the timer started (marked done), so the
// path adds the check that no version was skipped — the common case of that mode.
func BenchmarkPipeline(b *testing.B) {
	b.Run("tracing=off", func(b *testing.B) { benchPipeline(b, benchOptions{}) })
	b.Run("tracing=on", func(b *testing.B) { benchPipeline(b, benchOptions{tracing: true}) })
	b.Run("tracing=off/emit=fake", func(b *testing.B) { benchPipeline(b, benchOptions{fakeEmit: true}) })
	b.Run("tracing=off/emit=fake/versions=all", func(b *testing.B) {
		benchPipeline(b, benchOptions{fakeEmit: true, allVersions: true})
	})
}

type benchOptions struct{ tracing, fakeEmit, allVersions bool }

// acceptAll is a PutEvents that accepts every entry.
type acceptAll struct{}

func (acceptAll) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	out := &eventbridge.PutEventsOutput{Entries: make([]ebtypes.PutEventsResultEntry, len(in.Entries))}
	for i := range out.Entries {
		out.Entries[i].EventId = aws.String("e")
	}
	return out, nil
}

func benchPipeline(b *testing.B, o benchOptions) {
	tel, err := telemetry.Setup(context.Background(), telemetry.Config{Getenv: func(string) string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	var prov *telemetry.Providers
	var tp trace.TracerProvider = tel.TracerProvider
	if o.tracing {
		sdk := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer sdk.Shutdown(context.Background())
		tp = sdk
		prov = &telemetry.Providers{TracerProvider: sdk, Propagator: propagation.TraceContext{}}
	}

	rdb := redis.NewClient(&redis.Options{Addr: stack.Addr(b, stack.Redis)})
	defer rdb.Close()
	if prov != nil {
		if err := telemetry.Redis(rdb, *prov); err != nil {
			b.Fatal(err)
		}
	}
	store, err := dedup.NewStore(rdb, dedup.Options{Prefix: "bench:" + stack.RandomHex(6) + ":", DoneTTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	// A transport of its own that keeps up to 64 idle connections to the recorder (the
	// default keeps 2); closed at the end (goleak would see them).
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	var api bus.PutEventsAPI = stack.EventBridgeClient(b, func(o *eventbridge.Options) {
		o.HTTPClient = &http.Client{Transport: tr}
		o.Retryer = aws.NopRetryer{}
		if prov != nil {
			telemetry.AWS(&o.APIOptions, *prov)
		}
	})
	if o.fakeEmit {
		api = acceptAll{}
	}
	emitter, err := bus.New(api, bus.Options{})
	if err != nil {
		b.Fatal(err)
	}
	builder, err := event.NewBuilder(event.Options{Source: "bench.pipeline." + stack.RandomHex(4)})
	if err != nil {
		b.Fatal(err)
	}
	const perWindow = 100
	ds := stack.RandomHex(16)
	body := []byte(`{"resourceType":"Observation","id":"ID","meta":{"versionId":"1","lastUpdated":"2026-11-20T09:15:03.123Z"},"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"subject":{"reference":"Patient/p-1"},"effectiveDateTime":"2026-11-20T09:15:00Z","valueQuantity":{"value":72,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"},"note":[{"text":"synthetic benchmark data, no real person"}]}`)
	searcher := &pagedSearcher{raw: json.RawMessage(body), perSecond: perWindow}
	if o.allVersions {
		searcher.version = "2"
	}

	tls, err := timeline.New(rdb, timeline.Options{Prefix: "bench:tl:" + stack.RandomHex(4) + ":", Owner: dedup.RandomOwner()})
	if err != nil {
		b.Fatal(err)
	}
	cfg := pipeline.DefaultConfig()
	// A cadence of 1 ms and no settle or verification: the benchmark measures the path, not
	// the waits that real HealthLake needs.
	cfg.Timeline = coalesce.Config{Window: time.Millisecond, MaxSpan: 5 * time.Minute}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.TracerProvider, cfg.MeterProvider = tp, tel.MeterProvider
	cfg.AllVersions = o.allVersions
	validator, _ := cloudtrail.NewValidator(nil)
	p, err := pipeline.New(cfg, pipeline.Parts{
		Validator: validator, FHIR: searcher, Emitter: emitter, Events: builder, Timelines: tls,
		NewClaims: func() pipeline.Claims { return store.WithOwner(dedup.RandomOwner()) },
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// One record per event: each second of the key's timeline gets perWindow hints, and its
	// search finds perWindow resources. The seconds lie in the past, so they are settled.
	n := (b.N + perWindow - 1) / perWindow * perWindow
	base := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	records := make([][]byte, n)
	for i := range records {
		records[i], _ = cloudtrail.Encode(cloudtrail.Change{
			EventID: fmt.Sprintf("ev-%d", i), DatastoreID: ds, ResourceType: "Observation",
			Operation: event.Update, EventTime: base.Add(time.Duration(i/perWindow) * time.Second),
			Region: "us-east-1", Account: "123456789012",
		}, "env", "req")
	}
	if o.allVersions {
		// Version 1 of every resource the searches will find went out already.
		ids := make([]dedup.Identity, 0, n)
		for sec := range n / perWindow {
			for i := range perWindow {
				ids = append(ids, dedup.Identity{DatastoreID: ds, ResourceType: "Observation", ID: benchID(base.Add(time.Duration(sec)*time.Second), i), VersionID: "1"})
			}
		}
		for batch := range slices.Chunk(ids, 1000) {
			if err := store.MarkDone(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	var acked atomic.Int64
	ack := func() { acked.Add(1) }
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	batch := kcl.BatchSpans(tp, "bench")
	bctx, end := ctx, func() {}
	for i := range n {
		if o.tracing && i%perWindow == 0 {
			end()
			bctx, end = batch(ctx, kcl.Batch{ShardID: "s", Records: perWindow})
		}
		if err := p.Handle(bctx, pipeline.Record{ShardID: "s", SequenceNumber: fmt.Sprint(i), Data: records[i]}, ack); err != nil {
			b.Fatal(err)
		}
	}
	end()
	for acked.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	s := p.Stats().Snapshot()
	b.ReportMetric(float64(s.Emitted)/time.Since(start).Seconds(), "events/s")
	// Per core: events per CPU-second this process spent (Redis and the recorder, separate
	// processes, are not in it).
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(s.Emitted)/cpu.Seconds(), "events/cpu-s")
	}
	if s.EmitFailed > 0 {
		b.Fatalf("emit failures: %+v", s)
	}
	if o.allVersions && (s.SkippedVersions != 0 || s.VersionReads != 0) {
		b.Fatalf("versions=all did not take the no-gap path: %d skipped versions emitted, %d history reads", s.SkippedVersions, s.VersionReads)
	}
}

// cpuTime is the user plus system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

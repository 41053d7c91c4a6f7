package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/healthlake"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/urfave/cli/v3"
	"go.opentelemetry.io/otel"
	"golang.org/x/sync/errgroup"

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

// run wires the parts from the flags and runs until ctx ends (SIGTERM): then the KCL worker
// stops taking records and drains within the grace period, the pipeline stops, and the HTTP
// server closes — upstream first.
func run(ctx context.Context, cmd *cli.Command) error {
	// Checked here rather than with Required, which would bind the sub-commands too.
	for _, name := range []string{"stream", "bus"} {
		if cmd.String(name) == "" {
			return cli.Exit(fmt.Sprintf("consumer: --%s (or CDC_%s) is required", name, strings.ToUpper(name)), 2)
		}
	}
	// Settings are checked before any AWS or Redis client is built: a bad flag is a usage
	// error (exit 2) naming the flag, not a connection failure.
	pcfg, err := pipelineConfig(cmd)
	if err != nil {
		return cli.Exit("consumer: "+err.Error(), 2)
	}
	log := newLogger(cmd.String("log-level"))
	slog.SetDefault(log)
	workerID := cmd.String("worker-id")
	stream := cmd.String("stream")

	tel, err := telemetry.Setup(ctx, telemetry.Config{WorkerID: workerID, Stream: stream})
	if err != nil {
		return err
	}
	defer func() {
		// After everything else stopped: the last spans and metrics go out.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("telemetry shutdown", "error", err)
		}
	}()
	// For instrumentations that only read globals; ours get the providers passed in.
	otel.SetTracerProvider(tel.TracerProvider)
	otel.SetTextMapPropagator(tel.Propagator)
	prov := tel.Providers()

	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	if awsCfg.Region == "" {
		return errors.New("no AWS region: set AWS_REGION")
	}

	validator, err := cloudtrail.NewValidator(nonEmpty(cmd.StringSlice("datastores")))
	if err != nil {
		return fmt.Errorf("--datastores: %w", err)
	}
	metrics, err := newClientMetrics(tel.MeterProvider.Meter("github.com/healthlake-cdc/healthlake-cdc/consumer"))
	if err != nil {
		return err
	}
	fhirClient, err := newFHIR(cmd, awsCfg, metrics, tel)
	if err != nil {
		return err
	}
	rdb, err := newRedis(cmd.String("redis-url"))
	if err != nil {
		return err
	}
	defer rdb.Close()
	if tel.Tracing {
		if err := telemetry.Redis(rdb, prov); err != nil {
			return err
		}
	}
	store, err := dedup.NewStore(rdb, dedup.Options{
		Prefix: cmd.String("dedup-prefix"), ClaimTTL: cmd.Duration("claim-ttl"), DoneTTL: cmd.Duration("dedup-ttl"),
	})
	if err != nil {
		return err
	}
	// The emitter retries exactly the failed entries itself; SDK retries on top would
	// multiply the attempts. Only EventBridge calls are traced: the KCL library's Kinesis
	// and DynamoDB calls (polls, lease renewals) carry no context of ours and would each be
	// a root span, several a second per shard.
	busOpts := bus.Options{OnCall: metrics.onPutEvents, CallTimeout: cmd.Duration("putevents-timeout")}
	eb := eventbridge.NewFromConfig(awsCfg, func(o *eventbridge.Options) {
		o.Retryer = aws.NopRetryer{}
		// As many idle connections as calls in flight, or each extra call dials again.
		o.HTTPClient = bus.HTTPClient(busOpts)
		if tel.Tracing {
			telemetry.AWS(&o.APIOptions, prov)
		}
	})
	emitter, err := bus.New(eb, busOpts)
	if err != nil {
		return err
	}
	// A claim must outlive the emit it guards, or a slow emit is claimed and sent twice.
	if d, ttl := emitter.Options().MaxEmitDuration(), cmd.Duration("claim-ttl"); d >= ttl {
		return fmt.Errorf("--claim-ttl %s must exceed the longest PutEvents emit (%s: --putevents-timeout × attempts + backoff)", ttl, d)
	}
	content := event.FullResource
	if cmd.String("content") == "id-only" {
		content = event.IDOnly
	}
	builder, err := event.NewBuilder(event.Options{
		Source: cmd.String("source"), BusName: cmd.String("bus"), Region: awsCfg.Region, Content: content,
	})
	if err != nil {
		return err
	}

	timelines, err := timeline.New(rdb, timeline.Options{
		// The timelines live next to the dedup keys, under the same deployment prefix.
		Prefix: cmd.String("dedup-prefix") + "tl:", Owner: workerID + "/" + dedup.RandomOwner(),
		LeaseTTL: cmd.Duration("key-lease-ttl"), StateTTL: cmd.Duration("dedup-ttl"),
	})
	if err != nil {
		return err
	}

	var imports pipeline.ImportJobs
	if cmd.Bool("describe-import-jobs") {
		imports = importJobs{api: healthlake.NewFromConfig(awsCfg)}
	}
	pcfg.NoDedup = cmd.Bool("no-dedup")
	pcfg.Logger = log
	pcfg.TracerProvider = tel.TracerProvider
	pcfg.MeterProvider = tel.MeterProvider
	pipe, err := pipeline.New(pcfg, pipeline.Parts{
		Validator:  validator,
		FHIR:       fhirClient,
		Timelines:  timelines,
		ImportJobs: imports,
		NewClaims:  func() pipeline.Claims { return store.WithOwner(workerID + "/" + dedup.RandomOwner()) },
		Emitter:    emitter,
		Events:     builder,
	})
	if err != nil {
		return err
	}

	grace := cmd.Duration("shutdown-grace")
	var hooks kcl.Hooks
	if tel.Tracing {
		hooks.OnBatch = kcl.BatchSpans(tel.TracerProvider, stream)
	}
	worker, err := kcl.New(kcl.Config{
		Stream:              stream,
		Application:         cmd.String("application"),
		WorkerID:            workerID,
		Region:              awsCfg.Region,
		InitialPosition:     kcl.InitialPosition(cmd.String("initial-position")),
		KPLAggregation:      cmd.Bool("kpl-aggregation"),
		FailoverTime:        cmd.Duration("lease-failover"),
		MaxInFlightPerShard: int(cmd.Int("max-in-flight")),
		ShutdownGrace:       grace,
		// The library's Shutdown has no timeout of its own; give it the grace and a margin.
		ShutdownTimeout: grace + 10*time.Second,
		Logger:          log,
		Hooks:           hooks,
		MeterProvider:   tel.MeterProvider,
	}, kinesis.NewFromConfig(awsCfg), dynamodb.NewFromConfig(awsCfg), kcl.HandlerFunc(func(ctx context.Context, r kcl.Record, done func()) error {
		return pipe.Handle(ctx, pipeline.Record{ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, Data: r.Data}, done)
	}))
	if err != nil {
		return err
	}

	log.Info("consumer starting", "stream", stream, "tracing", tel.Tracing, "application", cmd.String("application"),
		"workerId", workerID, "bus", cmd.String("bus"), "region", awsCfg.Region)

	// Listen before anything starts, so a taken port fails the start instead of going unseen.
	var srv *http.Server
	var ln net.Listener
	if addr := cmd.String("http-addr"); addr != "" {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("--http-addr: %w", err)
		}
		srv = newHTTPServer(addr, health{worker: worker, redis: rdb, bus: emitter.Health()}, tel.Metrics)
	}

	// The pipeline outlives the worker so that windows can finish during the worker's drain.
	pipeCtx, stopPipe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipe()
	var g errgroup.Group
	g.Go(func() error { return pipe.Run(pipeCtx) })
	if srv != nil {
		g.Go(func() error {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http server: %w", err)
			}
			return nil
		})
	}
	werr := worker.Run(ctx)
	stopPipe()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
	gerr := g.Wait()
	if err := errors.Join(werr, gerr); err != nil {
		return err
	}
	log.Info("consumer stopped")
	return nil
}

func newFHIR(cmd *cli.Command, awsCfg aws.Config, m *clientMetrics, tel *telemetry.Telemetry) (*fhir.Client, error) {
	endpoint := cmd.String("fhir-endpoint")
	if endpoint == "" {
		endpoint = "https://healthlake." + awsCfg.Region + ".amazonaws.com/datastore/{datastoreId}/r4/"
	}
	hc := &http.Client{Timeout: time.Minute, Transport: fhirTransport(cmd.String("fhir-auth"), awsCfg, tel)}
	c, err := fhir.New(fhir.Config{Endpoint: endpoint, HTTPClient: hc, OnRequest: m.onFHIRRequest,
		CountMode: fhir.CountMode(cmd.String("fhir-count"))})
	if err != nil {
		return nil, fmt.Errorf("--fhir-endpoint: %w", err)
	}
	return c, nil
}

// fhirTransport signs with SigV4 (unless auth is "none") inside otelhttp (when tracing), so
// the traceparent header otelhttp adds is part of what is signed.
func fhirTransport(auth string, awsCfg aws.Config, tel *telemetry.Telemetry) http.RoundTripper {
	rt := http.DefaultTransport
	if auth == "sigv4" {
		rt = fhir.SigV4Transport(rt, awsCfg.Credentials, awsCfg.Region, time.Now)
	}
	if tel.Tracing {
		rt = telemetry.HTTPTransport(rt, tel.Providers())
	}
	return rt
}

// newLogger writes JSON to stderr; lines logged with a span in their context get trace_id
// and span_id.
func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by the flag
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
}

// nonEmpty drops blank items, so CDC_DATASTORES="" means "any datastore".
func nonEmpty(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// pipelineConfig maps the timeline and pipeline flags into the pipeline's Config and checks
// it; the error names the flags in their own words (window, settle, park attempts, …).
func pipelineConfig(cmd *cli.Command) (pipeline.Config, error) {
	pcfg := pipeline.DefaultConfig()
	pcfg.Timeline = coalesce.Config{
		Window: cmd.Duration("window"), Settle: cmd.Duration("settle"), Lead: cmd.Duration("lead"),
		Lag: cmd.Duration("lag"), MaxSpan: cmd.Duration("max-span"), VerifyAfter: cmd.Duration("verify-after"),
	}
	pcfg.ParkAttempts = int(cmd.Int("park-attempts"))
	pcfg.ParkAfter = cmd.Duration("park-after")
	pcfg.ParkedRetry = cmd.Duration("parked-retry")
	pcfg.SweepInterval = cmd.Duration("sweep-interval")
	pcfg.WatermarkInterval = cmd.Duration("watermark-interval")
	pcfg.AllVersions = cmd.String("versions") == "all"
	pcfg.VersionsLookback = cmd.Duration("dedup-ttl")
	pcfg.FHIRConcurrency = int(cmd.Int("fhir-concurrency"))
	for _, t := range nonEmpty(cmd.StringSlice("types")) {
		if !cloudtrail.IsResourceType(t) {
			return pcfg, fmt.Errorf("--types: %q is not a FHIR R4 resource type", t)
		}
		pcfg.Types = append(pcfg.Types, t)
	}
	if err := pcfg.Validate(); err != nil {
		return pcfg, fmt.Errorf("invalid settings: %w", err)
	}
	return pcfg, nil
}

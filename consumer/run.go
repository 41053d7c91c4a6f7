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
	// Every setting is checked before any AWS or Redis client is built: a bad flag is a usage
	// error (exit 2) naming the flag, not a connection failure.
	cfg := configFromFlags(cmd)
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	return runConfig(ctx, cfg)
}

// runConfig builds every client from cfg, which Validate accepted, and runs.
func runConfig(ctx context.Context, cfg Config) error {
	// The region is read from the AWS SDK's configuration (environment, shared config
	// files), which needs no network; a missing one is a usage error like a missing flag.
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	if awsCfg.Region == "" {
		return usageError{errors.New("no AWS region: set AWS_REGION (or a region in the AWS_PROFILE's config file)")}
	}

	log := newLogger(cfg.LogLevel)
	slog.SetDefault(log)
	tel, err := telemetry.Setup(ctx, telemetry.Config{WorkerID: cfg.WorkerID, Stream: cfg.Stream})
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

	validator, err := cloudtrail.NewValidator(cfg.Datastores)
	if err != nil {
		return fmt.Errorf("--datastores: %w", err)
	}
	fhirClient, err := newFHIR(cfg, awsCfg, tel)
	if err != nil {
		return err
	}
	rdb, err := newRedis(cfg.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if tel.Tracing {
		if err := telemetry.Redis(rdb, prov); err != nil {
			return err
		}
	}
	store, err := dedup.NewStore(rdb, cfg.dedupOptions())
	if err != nil {
		return err
	}
	// The emitter retries exactly the failed entries itself; SDK retries on top would
	// multiply the attempts. Only EventBridge calls are traced: the KCL library's Kinesis
	// and DynamoDB calls (polls, lease renewals) carry no context of ours and would each be
	// a root span, several a second per shard.
	busOpts := cfg.busOptions()
	busOpts.MeterProvider = tel.MeterProvider
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
	builder, err := event.NewBuilder(event.Options{
		Source: cfg.Source, BusName: cfg.Bus, Region: awsCfg.Region, Content: cfg.Content,
	})
	if err != nil {
		return err
	}

	timelines, err := timeline.New(rdb, timeline.Options{
		// The timelines live next to the dedup keys, under the same deployment prefix.
		Prefix: cfg.DedupPrefix + "tl:", Owner: cfg.WorkerID + "/" + dedup.RandomOwner(),
		LeaseTTL: cfg.KeyLeaseTTL, StateTTL: cfg.DedupTTL,
	})
	if err != nil {
		return err
	}

	var imports pipeline.ImportJobs
	if cfg.DescribeImportJobs {
		imports = importJobs{api: healthlake.NewFromConfig(awsCfg)}
	}
	pcfg := cfg.Pipeline
	pcfg.Logger = log
	pcfg.TracerProvider = tel.TracerProvider
	pcfg.MeterProvider = tel.MeterProvider
	pipe, err := pipeline.New(pcfg, pipeline.Parts{
		Validator:  validator,
		FHIR:       fhirClient,
		Timelines:  timelines,
		ImportJobs: imports,
		NewClaims:  func() pipeline.Claims { return store.WithOwner(cfg.WorkerID + "/" + dedup.RandomOwner()) },
		Emitter:    emitter,
		Events:     builder,
	})
	if err != nil {
		return err
	}

	kcfg := cfg.kclConfig(awsCfg.Region)
	kcfg.Logger = log
	kcfg.MeterProvider = tel.MeterProvider
	if tel.Tracing {
		kcfg.Hooks.OnBatch = kcl.BatchSpans(tel.TracerProvider, cfg.Stream)
	}
	worker, err := kcl.New(kcfg, kinesis.NewFromConfig(awsCfg), dynamodb.NewFromConfig(awsCfg), kcl.HandlerFunc(func(ctx context.Context, r kcl.Record, done func()) error {
		return pipe.Handle(ctx, pipeline.Record{ShardID: r.ShardID, SequenceNumber: r.SequenceNumber, Data: r.Data}, done)
	}))
	if err != nil {
		return err
	}

	log.Info("consumer starting", "version", version, "stream", cfg.Stream, "tracing", tel.Tracing, "application", cfg.Application,
		"workerId", cfg.WorkerID, "bus", cfg.Bus, "region", awsCfg.Region)

	// Listen before anything starts, so a taken port fails the start instead of going unseen.
	var srv *http.Server
	var ln net.Listener
	if addr := cfg.HTTPAddr; addr != "" {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("--http-addr: %w", err)
		}
		srv = newHTTPServer(addr, health{worker: worker, redis: rdb, bus: emitter.Health(), version: version}, tel.Metrics)
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

func newFHIR(cfg Config, awsCfg aws.Config, tel *telemetry.Telemetry) (*fhir.Client, error) {
	hc := &http.Client{Timeout: time.Minute, Transport: fhirTransport(cfg.FHIRAuth, awsCfg, tel)}
	c, err := fhir.New(fhir.Config{Endpoint: cfg.fhirEndpoint(awsCfg.Region), HTTPClient: hc, MeterProvider: tel.MeterProvider,
		CountMode: cfg.FHIRCount})
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

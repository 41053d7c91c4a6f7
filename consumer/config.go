package main

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kcl"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
)

// Config is every setting of a consumer run, read from the flags (and their CDC_* variables)
// once. Validate checks all of it before any AWS or Redis client is built; run builds the
// clients from a Config only. The AWS region is not here: it comes from the AWS SDK's
// configuration (AWS_REGION, the profile), loaded after Validate.
type Config struct {
	// Kinesis
	Stream, Application, WorkerID string
	InitialPosition               kcl.InitialPosition
	KPLAggregation                bool
	MaxInFlight                   int
	LeaseFailover, ShutdownGrace  time.Duration

	// Timeline: the pipeline's settings (the timeline's times, parking, sweeps, versions,
	// types, FHIR concurrency, no-dedup). Logger and providers are set by run.
	Pipeline           pipeline.Config
	KeyLeaseTTL        time.Duration
	DescribeImportJobs bool

	// FHIR
	Datastores   []string       // allow-list; empty: any
	FHIREndpoint string         // empty: HealthLake's endpoint in the AWS region
	FHIRAuth     string         // sigv4 or none
	FHIRCount    fhir.CountMode // how verification counts a range

	// Dedup
	RedisURL, DedupPrefix string
	DedupTTL, ClaimTTL    time.Duration

	// Output
	Bus, Source      string
	PutEventsTimeout time.Duration
	Content          event.Content

	// Operations
	HTTPAddr, LogLevel string
}

// configFromFlags reads every run flag into a Config; it checks nothing (Validate does).
func configFromFlags(cmd *cli.Command) Config {
	p := pipeline.DefaultConfig()
	p.Timeline = coalesce.Config{
		Window: cmd.Duration("window"), Settle: cmd.Duration("settle"), Lead: cmd.Duration("lead"),
		Lag: cmd.Duration("lag"), MaxSpan: cmd.Duration("max-span"), VerifyAfter: cmd.Duration("verify-after"),
	}
	p.ParkAttempts = int(cmd.Int("park-attempts"))
	p.ParkAfter = cmd.Duration("park-after")
	p.ParkedRetry = cmd.Duration("parked-retry")
	p.SweepInterval = cmd.Duration("sweep-interval")
	p.WatermarkInterval = cmd.Duration("watermark-interval")
	p.AllVersions = cmd.String("versions") == "all"
	p.VersionsLookback = cmd.Duration("dedup-ttl") // older versions' claims may have expired
	p.FHIRConcurrency = int(cmd.Int("fhir-concurrency"))
	p.Types = nonEmpty(cmd.StringSlice("types"))
	p.NoDedup = cmd.Bool("no-dedup")
	return Config{
		Stream:             cmd.String("stream"),
		Application:        cmd.String("application"),
		WorkerID:           cmd.String("worker-id"),
		InitialPosition:    kcl.InitialPosition(cmd.String("initial-position")),
		KPLAggregation:     cmd.Bool("kpl-aggregation"),
		MaxInFlight:        int(cmd.Int("max-in-flight")),
		LeaseFailover:      cmd.Duration("lease-failover"),
		ShutdownGrace:      cmd.Duration("shutdown-grace"),
		Pipeline:           p,
		KeyLeaseTTL:        cmd.Duration("key-lease-ttl"),
		DescribeImportJobs: cmd.Bool("describe-import-jobs"),
		Datastores:         nonEmpty(cmd.StringSlice("datastores")),
		FHIREndpoint:       cmd.String("fhir-endpoint"),
		FHIRAuth:           cmd.String("fhir-auth"),
		FHIRCount:          fhir.CountMode(cmd.String("fhir-count")),
		RedisURL:           cmd.String("redis-url"),
		DedupPrefix:        cmd.String("dedup-prefix"),
		DedupTTL:           cmd.Duration("dedup-ttl"),
		ClaimTTL:           cmd.Duration("claim-ttl"),
		Bus:                cmd.String("bus"),
		Source:             cmd.String("source"),
		PutEventsTimeout:   cmd.Duration("putevents-timeout"),
		Content:            event.Content(cmd.String("content")),
		HTTPAddr:           cmd.String("http-addr"),
		LogLevel:           cmd.String("log-level"),
	}
}

// Validate reports every setting that cannot work, each error naming its flag. It needs no
// network: the packages' own Validate methods run here on the options run will build, as a
// backstop for rules between settings, after the per-flag checks that name the flag.
func (c Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--"+flag+": "+format, args...))
	}
	for _, r := range []struct{ flag, v string }{{"stream", c.Stream}, {"bus", c.Bus}} {
		if r.v == "" {
			errs = append(errs, fmt.Errorf("--%s (or %s) is required", r.flag, envName(r.flag)))
		}
	}

	// Durations and counts that must be positive; those where 0 means "off" must not be
	// negative.
	p := c.Pipeline
	for _, d := range []struct {
		flag string
		v    time.Duration
		min  time.Duration // the least value that works
	}{
		{"lease-failover", c.LeaseFailover, time.Millisecond},
		{"shutdown-grace", c.ShutdownGrace, time.Millisecond},
		{"window", p.Timeline.Window, time.Nanosecond},
		{"settle", p.Timeline.Settle, 0},
		{"lead", p.Timeline.Lead, 0},
		{"lag", p.Timeline.Lag, 0},
		{"max-span", p.Timeline.MaxSpan, time.Second},
		{"verify-after", p.Timeline.VerifyAfter, 0},
		{"key-lease-ttl", c.KeyLeaseTTL, time.Millisecond},
		{"park-after", p.ParkAfter, time.Nanosecond},
		{"sweep-interval", p.SweepInterval, 0},
		{"watermark-interval", p.WatermarkInterval, 0},
		{"parked-retry", p.ParkedRetry, 0},
		{"dedup-ttl", c.DedupTTL, time.Second},
		{"claim-ttl", c.ClaimTTL, time.Millisecond},
		{"putevents-timeout", c.PutEventsTimeout, time.Nanosecond},
	} {
		switch {
		case d.v >= d.min:
		case d.min == 0:
			bad(d.flag, "%s must not be negative", d.v)
		case d.min == time.Nanosecond:
			bad(d.flag, "%s must be positive", d.v)
		default:
			bad(d.flag, "%s must be at least %s", d.v, d.min)
		}
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"max-in-flight", c.MaxInFlight}, {"park-attempts", p.ParkAttempts}, {"fhir-concurrency", p.FHIRConcurrency}} {
		if n.v < 1 {
			bad(n.flag, "%d must be at least 1", n.v)
		}
	}
	for _, t := range p.Types {
		if !cloudtrail.IsResourceType(t) {
			bad("types", "%q is not a FHIR R4 resource type", t)
		}
	}
	if c.WorkerID == "" {
		bad("worker-id", "must not be empty")
	}

	// FHIR
	if _, err := cloudtrail.NewValidator(c.Datastores); err != nil {
		bad("datastores", "%v", err)
	}
	if c.FHIREndpoint != "" {
		if err := (fhir.Config{Endpoint: c.FHIREndpoint}).Validate(); err != nil {
			bad("fhir-endpoint", "%v", err)
		}
	}
	if c.FHIRAuth != "sigv4" && c.FHIRAuth != "none" {
		bad("fhir-auth", "%q is not one of sigv4, none", c.FHIRAuth)
	}
	switch c.FHIRCount {
	case fhir.CountSummary, fhir.CountTotalAccurate, fhir.CountZero:
	default:
		bad("fhir-count", "%q is not one of %s, %s, %s", c.FHIRCount, fhir.CountSummary, fhir.CountTotalAccurate, fhir.CountZero)
	}

	// Dedup
	if _, err := parseRedisURL(c.RedisURL); err != nil {
		bad("redis-url", "%v", err)
	}
	if c.DedupTTL > 0 && c.DedupTTL < c.KeyLeaseTTL {
		bad("dedup-ttl", "%s is shorter than --key-lease-ttl %s (the timelines are kept for --dedup-ttl)", c.DedupTTL, c.KeyLeaseTTL)
	}

	// Output
	if err := c.busOptions().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--putevents-timeout: %w", err))
	} else if d := c.busOptions().MaxEmitDuration(); c.ClaimTTL > 0 && d >= c.ClaimTTL {
		// A claim must outlive the emit it guards, or a slow emit is claimed and sent twice.
		bad("claim-ttl", "%s must exceed the longest PutEvents emit (%s: --putevents-timeout × attempts + backoff)", c.ClaimTTL, d)
	}
	if c.Content != event.FullResource && c.Content != event.IDOnly {
		bad("content", "%q is not one of %s, %s", c.Content, event.FullResource, event.IDOnly)
	}
	if c.Source == "" {
		bad("source", "must not be empty")
	}

	// Operations
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			bad("http-addr", "%q: %v", c.HTTPAddr, err)
		}
	}

	// Backstops: the rules between settings the packages know (e.g. the KCL's lease refresh
	// below --lease-failover). Only when the per-flag checks passed, so that one bad value
	// is reported once.
	if len(errs) == 0 {
		// The region is checked on its own once the AWS configuration is loaded; any
		// non-empty value lets the KCL's rules about the flags run here.
		if err := c.kclConfig("region-checked-later").Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--application / --initial-position / --lease-failover / --shutdown-grace / --max-in-flight: %w", err))
		}
		if err := c.dedupOptions().Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--dedup-ttl / --claim-ttl: %w", err))
		}
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("timeline settings: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (c Config) dedupOptions() dedup.Options {
	return dedup.Options{Prefix: c.DedupPrefix, ClaimTTL: c.ClaimTTL, DoneTTL: c.DedupTTL}
}

// busOptions are the emitter's options; OnCall and the meter are added by run.
func (c Config) busOptions() bus.Options {
	return bus.Options{CallTimeout: c.PutEventsTimeout}
}

// kclConfig is the KCL worker's configuration in region; logger, hooks and meter are added
// by run.
func (c Config) kclConfig(region string) kcl.Config {
	return kcl.Config{
		Stream:              c.Stream,
		Application:         c.Application,
		WorkerID:            c.WorkerID,
		Region:              region,
		InitialPosition:     c.InitialPosition,
		KPLAggregation:      c.KPLAggregation,
		FailoverTime:        c.LeaseFailover,
		MaxInFlightPerShard: c.MaxInFlight,
		ShutdownGrace:       c.ShutdownGrace,
		// The library's Shutdown has no timeout of its own; give it the grace and a margin.
		ShutdownTimeout: c.ShutdownGrace + 10*time.Second,
	}
}

// fhirEndpoint is --fhir-endpoint, or HealthLake's endpoint in region.
func (c Config) fhirEndpoint(region string) string {
	if c.FHIREndpoint != "" {
		return c.FHIREndpoint
	}
	return "https://healthlake." + region + ".amazonaws.com/datastore/{datastoreId}/r4/"
}

func envName(flag string) string {
	b := []byte(flag)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		}
	}
	return "CDC_" + string(b)
}

package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
)

// Config holds the pipeline's settings. Start from DefaultConfig.
type Config struct {
	// Timeline holds the cadence (Window), settle, lead, lag, max span and verify-after.
	Timeline coalesce.Config
	// FHIRConcurrency bounds the keys searching at once, and so the concurrent FHIR requests
	// (each search walks its pages one after another).
	FHIRConcurrency int
	// Backoff bounds the waits before a key's run or a report is tried again.
	MinBackoff, MaxBackoff time.Duration
	// PendingRetry is how soon a key's run retries changes another worker is emitting.
	PendingRetry time.Duration
	// MaxChunksPerRun bounds the chunks one run of a key searches (a key far behind catches
	// up over several runs, so its lease and the key's acks move in steps).
	MaxChunksPerRun int
	// ParkAttempts and ParkAfter bound how long a range whose search fails for a reason
	// retries cannot fix (a 403, a deleted datastore, a malformed page) holds its key: after
	// that many failed attempts, or that long since the first, it is parked — reported as
	// "HealthLake CDC Range Failed", kept in Redis, its records acked.
	ParkAttempts int
	ParkAfter    time.Duration
	// ParkedRetry is how often parked ranges are searched again (0: only on demand).
	ParkedRetry time.Duration
	// Types are resource types always looked at for a hint that names no type (a Bundle, an
	// unknown write, an import), besides those seen in the datastore's hints within the
	// dedup TTL.
	Types []string
	// SweepInterval is how often every known key's timeline is extended to now − settle
	// even where no hint asks for it, counting first and reading only on a mismatch, so
	// that changes whose hints CloudTrail lost are still emitted (0: off).
	SweepInterval time.Duration
	// WatermarkInterval is how often each datastore's "HealthLake CDC Watermark" is
	// published (0: never).
	WatermarkInterval time.Duration
	// ImportLookback is how far before an import event its range starts when neither the
	// event nor DescribeFHIRImportJob gives the job's submit time.
	ImportLookback time.Duration
	// RejectBatchDelay is how long rejections gather before they are reported together.
	RejectBatchDelay time.Duration
	// AllVersions emits every version of a resource, not only the one a search shows: where
	// a found versionId jumped past the last one emitted, the skipped versions are read from
	// the resource's history and emitted first, oldest first (CDC_VERSIONS=all). Off, two
	// writes to a resource before its range settles give one event, for the later.
	AllVersions bool
	// VersionsLookback is how far back skipped versions are read (the dedup TTL: an older
	// version's claim may have expired, so emitted and never emitted look alike there).
	VersionsLookback time.Duration
	// NoDedup emits without Redis claims (opt-in, for when Redis is down and duplicates are
	// acceptable). Never the default.
	NoDedup bool
	// Clock gives every time and wait the pipeline uses (clock.Real by default); tests drive
	// a fake one.
	Clock clock.Clock
	// Logger gets the pipeline's logs; they never carry a resource body or a search result.
	Logger *slog.Logger
	// TracerProvider and MeterProvider get the pipeline's spans and metrics; the defaults
	// are no-op providers. The window's context carries its span to the FHIR client, the
	// dedup store and the emitter, so their own instrumentation makes child spans.
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
}

// DefaultConfig suits real HealthLake.
func DefaultConfig() Config {
	return Config{
		Timeline:          coalesce.Defaults(),
		FHIRConcurrency:   8,
		MinBackoff:        200 * time.Millisecond,
		MaxBackoff:        30 * time.Second,
		PendingRetry:      time.Second,
		MaxChunksPerRun:   12,
		ParkAttempts:      5,
		ParkAfter:         5 * time.Minute,
		ParkedRetry:       5 * time.Minute,
		ImportLookback:    24 * time.Hour,
		SweepInterval:     5 * time.Minute,
		WatermarkInterval: time.Minute,
		VersionsLookback:  24 * time.Hour,
		RejectBatchDelay:  100 * time.Millisecond,
		Clock:             clock.Real{},
		Logger:            slog.Default(),
		TracerProvider:    tracenoop.NewTracerProvider(),
		MeterProvider:     metricnoop.NewMeterProvider(),
	}
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	errs := []error{c.Timeline.Validate()}
	if c.FHIRConcurrency < 1 {
		errs = append(errs, fmt.Errorf("FHIR concurrency must be at least 1, got %d", c.FHIRConcurrency))
	}
	if c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff {
		errs = append(errs, fmt.Errorf("backoff must satisfy 0 < min (%v) <= max (%v)", c.MinBackoff, c.MaxBackoff))
	}
	if c.PendingRetry <= 0 {
		errs = append(errs, fmt.Errorf("pending retry must be positive, got %v", c.PendingRetry))
	}
	if c.MaxChunksPerRun < 1 {
		errs = append(errs, fmt.Errorf("max chunks per run must be at least 1, got %d", c.MaxChunksPerRun))
	}
	if c.ParkAttempts < 1 || c.ParkAfter <= 0 {
		errs = append(errs, fmt.Errorf("park attempts (%d) and park after (%v) must be positive", c.ParkAttempts, c.ParkAfter))
	}
	if c.WatermarkInterval < 0 {
		errs = append(errs, fmt.Errorf("watermark interval must not be negative, got %v", c.WatermarkInterval))
	}
	if c.SweepInterval < 0 {
		errs = append(errs, fmt.Errorf("sweep interval must not be negative, got %v", c.SweepInterval))
	}
	if c.AllVersions && c.VersionsLookback <= 0 {
		errs = append(errs, fmt.Errorf("versions lookback must be positive, got %v", c.VersionsLookback))
	}
	if c.ParkedRetry < 0 {
		errs = append(errs, fmt.Errorf("parked retry must not be negative, got %v", c.ParkedRetry))
	}
	if c.Clock == nil || c.Logger == nil || c.TracerProvider == nil || c.MeterProvider == nil {
		errs = append(errs, errors.New("clock, logger, tracer and meter providers must be set"))
	}
	return errors.Join(errs...)
}

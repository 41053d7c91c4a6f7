package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES)
// says otherwise.
const DefaultServiceName = "healthlake-cdc-consumer"

// Config is what the process knows about itself; everything else comes from OTEL_*.
type Config struct {
	// ServiceName defaults to DefaultServiceName; OTEL_SERVICE_NAME wins over it.
	ServiceName string
	// ServiceVersion defaults to the module version in the build info.
	ServiceVersion string
	// WorkerID (service.instance.id) and Stream (hlcdc.stream) name this worker.
	WorkerID, Stream string
	// Getenv reads the environment (os.Getenv if nil); tests replace it. The exporters
	// themselves read the real environment.
	Getenv func(string) string
}

// Telemetry holds the providers. Pass them explicitly to what needs them.
type Telemetry struct {
	// TracerProvider is a no-op provider when OTEL_TRACES_EXPORTER is unset or "none".
	TracerProvider trace.TracerProvider
	// MeterProvider always feeds Metrics; with OTEL_METRICS_EXPORTER set (not "none") also a
	// periodic OTLP (or console) reader.
	MeterProvider metric.MeterProvider
	// Propagator is W3C tracecontext + baggage.
	Propagator propagation.TextMapPropagator
	// Metrics serves the meter provider's instruments as Prometheus text.
	Metrics http.Handler
	// Tracing says whether spans are recorded and exported at all.
	Tracing bool

	shutdownOnce sync.Once
	shutdownErr  error
	shutdowns    []func(context.Context) error
}

// Setup builds the providers from cfg and the OTEL_* environment. Call Shutdown when done,
// also after an error-free Setup that is not used.
func Setup(ctx context.Context, cfg Config) (*Telemetry, error) {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	t := &Telemetry{
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}

	// Metrics: the Prometheus exporter is a pull reader on a registry of our own.
	reg := prometheus.NewRegistry()
	promExp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		otelprom.WithoutScopeInfo(),
		// Explicit, so names do not change when the library's default does: dots become
		// underscores, counters get _total, units (s, ms, By) their suffix.
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}
	if configured(getenv("OTEL_METRICS_EXPORTER")) {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTEL_METRICS_EXPORTER: %w", err)
		}
		mopts = append(mopts, sdkmetric.WithReader(r))
	}
	mp := sdkmetric.NewMeterProvider(mopts...)
	t.MeterProvider = mp
	t.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	t.shutdowns = append(t.shutdowns, mp.Shutdown)

	// Traces: without an exporter a no-op provider, not an SDK provider exporting nowhere —
	// the SDK would still build, sample and queue every span.
	if !configured(getenv("OTEL_TRACES_EXPORTER")) {
		t.TracerProvider = noop.NewTracerProvider()
		return t, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		_ = t.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (SDK default:
	// parentbased_always_on); the batch processor from OTEL_BSP_*.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t.TracerProvider = tp
	t.Tracing = true
	// Spans first: their exporter may still be flushing while metrics shut down.
	t.shutdowns = append([]func(context.Context) error{tp.Shutdown}, t.shutdowns...)
	return t, nil
}

// configured says whether an OTEL_*_EXPORTER value asks for an exporter. Unset means none
// here (the SDK's own default would be otlp, which would fail without a collector).
func configured(v string) bool {
	v = strings.TrimSpace(v)
	return v != "" && v != "none"
}

func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	name := cmp.Or(cfg.ServiceName, DefaultServiceName)
	version := cfg.ServiceVersion
	if version == "" {
		version = buildVersion()
	}
	attrs := []attribute.KeyValue{
		attribute.String("service.name", name),
		attribute.String("service.version", version),
	}
	if cfg.WorkerID != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.WorkerID))
	}
	if cfg.Stream != "" {
		attrs = append(attrs, attribute.String("hlcdc.stream", cfg.Stream))
	}
	// Later options win: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME override ours.
	res, err := resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

// buildVersion is the main module's version, or "devel" for a build outside a module
// download (go build in the repository says "(devel)").
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		return "devel"
	}
	return bi.Main.Version
}

// Shutdown flushes and stops the providers (spans first). Safe to call twice: the second
// call returns the first one's result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.shutdownOnce.Do(func() {
		var errs []error
		for _, f := range t.shutdowns {
			errs = append(errs, f(ctx))
		}
		t.shutdownErr = errors.Join(errs...)
	})
	return t.shutdownErr
}

// Package telemetry sets up OpenTelemetry for the consumer from the standard OTEL_*
// variables: a tracer provider (a no-op one when no trace exporter is configured, so tracing
// then costs nothing), a meter provider whose instruments are served as Prometheus text on
// the consumer's own /metrics (own registry, never the global one) and pushed over OTLP when
// OTEL_METRICS_EXPORTER asks for it, the W3C propagator, and the helpers that put the contrib
// instrumentations (otelhttp, redisotel, otelaws) on our clients with explicit providers. It
// also wraps slog handlers so that log lines written with a span in their context carry
// trace_id and span_id.
package telemetry

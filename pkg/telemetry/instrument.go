package telemetry

import (
	"net/http"
	"slices"
	"strings"

	"github.com/aws/smithy-go/middleware"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	//lint:ignore SA1019 otelaws is marked unsupported in favour of smithy-go's smithyoteltracing, which the module proxy here does not serve; it still works with aws-sdk-go-v2 v1.48.
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Providers is what the instrumentations need; *Telemetry and tests both supply it.
type Providers struct {
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Providers returns t's providers for the instrumentation helpers.
func (t *Telemetry) Providers() Providers {
	return Providers{TracerProvider: t.TracerProvider, Propagator: t.Propagator}
}

// HTTPTransport wraps next (a FHIR client's transport) in otelhttp: a CLIENT span per request,
// a child of the span in the request's context, and a traceparent header. Put it outside
// SigV4Transport so that the header it adds is signed with the rest. Only the method and the
// URL's route shape go into the span name; no query string (it holds no PHI, but is noisy).
func HTTPTransport(next http.RoundTripper, p Providers) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return otelhttp.NewTransport(next,
		otelhttp.WithTracerProvider(p.TracerProvider),
		otelhttp.WithPropagators(p.Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "FHIR " + r.Method }),
	)
}

// Redis adds a CLIENT span per command and per pipeline to rdb. Statements are left out:
// dedup keys name resources. Connection chatter (dials, HELLO, CLIENT SETINFO, AUTH) and the
// readiness PING are left out too: they run outside any window and would be root spans.
func Redis(rdb redis.UniversalClient, p Providers) error {
	return redisotel.InstrumentTracing(rdb,
		redisotel.WithTracerProvider(p.TracerProvider),
		redisotel.WithDBStatement(false),
		redisotel.WithDialFilter(true),
		redisotel.WithCommandFilter(isChatter),
		redisotel.WithCommandsFilter(func(cmds []redis.Cmder) bool { return slices.ContainsFunc(cmds, isChatter) }),
	)
}

func isChatter(cmd redis.Cmder) bool {
	switch strings.ToLower(cmd.Name()) {
	case "ping", "hello", "client", "auth":
		return true
	}
	return false
}

// AWS appends the otelaws middlewares to an aws.Config's (or a client's Options')
// APIOptions: a CLIENT span per SDK call, a child of the span in the call's context.
func AWS(apiOptions *[]func(*middleware.Stack) error, p Providers) {
	otelaws.AppendMiddlewares(apiOptions, otelaws.WithTracerProvider(p.TracerProvider), otelaws.WithTextMapPropagator(p.Propagator))
}

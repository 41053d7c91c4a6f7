package kcl

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// BatchSpans returns a Hooks.OnBatch that starts a CONSUMER span per batch of stream's
// records ("process {stream}", messaging.* attributes) and puts it in the context Handle gets,
// so the pipeline can link each window to the batches that fed it. The span ends when the
// batch has been handed over (including backpressure waits), not when its records are acked.
//
// Empty polls (a shard reader finds nothing, about once a second per shard) get no span:
// they would bury the batches in idle traces and carry no record to link to.
func BatchSpans(tp trace.TracerProvider, stream string) func(context.Context, Batch) (context.Context, func()) {
	tracer := tp.Tracer(instrumentationName)
	name := "process " + stream
	return func(ctx context.Context, b Batch) (context.Context, func()) {
		if b.Records == 0 {
			return ctx, nil
		}
		ctx, span := tracer.Start(ctx, name,
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(
				attribute.String("messaging.system", "aws_kinesis"),
				attribute.String("messaging.operation.type", "process"),
				attribute.String("messaging.destination.name", stream),
				attribute.String("messaging.destination.partition.id", b.ShardID),
				attribute.String("aws.kinesis.shard_id", b.ShardID),
				attribute.Int("messaging.batch.message_count", b.Records),
				attribute.Int64("aws.kinesis.millis_behind_latest", b.MillisBehindLatest),
			))
		return ctx, func() { span.End() }
	}
}

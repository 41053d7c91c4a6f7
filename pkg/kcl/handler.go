package kcl

import (
	"context"
	"time"
)

// Record is one Kinesis record as the pipeline sees it.
type Record struct {
	ShardID        string
	SequenceNumber string
	PartitionKey   string
	Data           []byte
	// ArrivalTime is when Kinesis accepted the record (ApproximateArrivalTimestamp).
	ArrivalTime time.Time
}

// Handler takes the records of the stream. The records of one shard arrive in order from
// one goroutine; different shards call Handle concurrently.
//
// done must be called exactly once, when the record is fully processed (emitted, deduped,
// skipped or rejected), from any goroutine; the shard's checkpoint never passes a record
// whose done was not called. Handle may block to apply backpressure.
//
// ctx ends when the consumer stops; it bounds the hand-over only. Work on a taken record
// should not be cancelled by it, or records in flight cannot finish within the shutdown
// grace period. ctx also carries what Hooks.OnBatch put in it (such as a batch span).
//
// An error means the pipeline cannot take records any more: the consumer stops taking
// records on every shard and Run returns the error. A record whose Handle failed counts as
// taken only if its done is called later.
type Handler interface {
	Handle(ctx context.Context, r Record, done func()) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, r Record, done func()) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, r Record, done func()) error { return f(ctx, r, done) }

// Batch describes one GetRecords result handed to a shard's processor.
type Batch struct {
	ShardID string
	// Records is the number of records (after KPL de-aggregation); 0 for an idle poll.
	Records int
	// MillisBehindLatest is how far the shard's reader is behind the tip of the stream.
	MillisBehindLatest int64
}

// Hooks let observability code follow the consumer without the consumer knowing it. All
// are optional and run on the shard's goroutine, so they must be quick.
type Hooks struct {
	// OnBatch runs for every batch, empty ones included (so lag gauges stay fresh). The
	// returned context is passed to Handle for the batch's records — for instance with a
	// CONSUMER span in it — and end runs once the batch has been handed over.
	OnBatch func(ctx context.Context, b Batch) (_ context.Context, end func())
	// OnCheckpoint runs after every checkpoint write of a shard; seq is "SHARD_END" when the
	// shard was ended.
	OnCheckpoint func(shardID, seq string, err error)
}

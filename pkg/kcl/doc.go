// Package kcl adapts vmware-go-kcl-v2 — the Kinesis Client Library port that holds one lease
// per shard in a DynamoDB table — to the pipeline.
//
// The pipeline sees one small interface, Handler: it gets each record of a shard in order
// with a done func to call once the record is fully processed. The adapter tracks those acks
// per shard (package ack) and checkpoints only the contiguous acked prefix, so a restart or
// a lease moving to another worker re-reads records but never skips one. In-flight records
// per shard are bounded: ProcessRecords blocks (backpressure) rather than buffer a backlog.
//
// The library is archived (v1.0.0) and has defects this package wraps rather than inherits.
// Each is fixed from our side of its interfaces — the lease table (our Checkpointer), the
// Kinesis client we hand it (SDK middleware, kinesis.go), its config, our record processor —
// and reproduced by a test on kinesalite + dynalite that names the upstream lines:
//
//   - Two workers starting on a new application race to create the lease table; the loser
//     failed to start. Our lease table creates it idempotently and waits until it is ACTIVE.
//   - A record that starts with the KPL magic bytes but is not a valid aggregate made the
//     de-aggregator drop the whole GetRecords batch (broken protobuf) or panic the process
//     (partition key index out of range). The Kinesis client changes such a record's first
//     byte before the library sees it and the processor restores it, so the Handler gets it
//     as it was put, as one (undecodable) record. Config.KPLAggregation lets valid
//     aggregates through for streams written by the KPL.
//   - LATEST was applied to every shard without a checkpoint when its reader started:
//     children of a split and shards whose owner died before a first checkpoint skipped what
//     was written meanwhile. LATEST now means the application's first start, recorded once
//     in the lease table (an item the library's scans ignore), and such shards start
//     AT_TIMESTAMP of it.
//   - A checkpoint was an unconditional PutItem of the whole lease item, owner taken from
//     memory, which the library's lease sync overwrites with the table's owner. Ours is an
//     UpdateItem of the checkpoint alone, conditioned on this worker's id, the shard not
//     ended, and the lease having more than a quarter of FailoverTime left: a worker that
//     lost its lease cannot move anyone's checkpoint, and a ClaimRequest survives.
//   - Taking a lease writes the checkpoint the taker's FetchCheckpoint read a moment before,
//     conditioned on the owner and lease timeout only: the old owner's last checkpoint,
//     landing before its release, was put back (a soak saw a checkpoint move backwards). Our
//     lease table reads the checkpoint again just before a take, and only once the lease is
//     free (released or run out), when no other worker can write one.
//   - A failed lease renewal (a claim by a worker stealing the shard, a takeover, a DynamoDB
//     error) ends the library's renewal for good, but the reader learns of it only after
//     ProcessRecords returns; ZOMBIE is never delivered. Our lease table watches every lease:
//     the processor stops handing records over at once (also while blocked on
//     backpressure), lets its records in flight be acked within the grace (and before the
//     lease could expire), checkpoints, releases the lease so a claimant takes it at once,
//     and lets go of its tracker and gauges; no second reader of the shard starts here until
//     the first one ended.
//   - An iterator older than 5 minutes (ProcessRecords blocked that long) failed the reader,
//     which released the lease and let a new reader read the records in flight again. The
//     Kinesis client renews it at the same position and repeats the call.
//   - Worker.Shutdown has no timeout, a child shard waiting for its parent never checks the
//     stop signal, and the library's calls have no deadline. Run bounds Shutdown with
//     Config.ShutdownTimeout, our lease table fails checkpoint reads once shutdown began,
//     which ends those waits, and GetShardIterator calls get a deadline.
//   - Rebalancing gives up while any lease looks unowned, and the library cannot see the
//     owner of a lease without a checkpoint: one shard that never had a record disabled lease
//     stealing. Our lease table reads the owner of such leases too.
//   - Its loggers are logrus/zap/zerolog; ours is log/slog (see the logger adapter), with
//     lines that repeat every tick in normal operation demoted to debug. One spot (lease
//     renewal of the polling reader) logs straight to the global logrus logger — one stderr
//     line when a lease is lost or stolen — and cannot be redirected without global state.
//   - Its Prometheus service registers on the global registry and http.DefaultServeMux; we
//     install our own MonitoringService, so Prometheus is not even linked.
//
// What cannot be reached from outside, and why it costs duplicates at worst, never loss:
//
//   - A worker taking over a run-out lease relies on the old owner having stopped
//     checkpointing a margin before the lease's end by its own clock: workers whose clocks
//     differ by more than the margin could still put a checkpoint back. A checkpoint moved
//     back only makes records be read again; the soak (soak_test.go) watches every
//     checkpoint for moves backwards under kills and reshards.
//   - A child shard waits for its parent's SHARD_END only if the parent's lease already has
//     a checkpoint, and the child of a merge waits for one parent only (the library keeps no
//     AdjacentParentShardId, worker.go:493-499): order across a reshard is not guaranteed.
//     Every parent is still read to its end; the pipeline does not rely on order.
//   - The lease sync behind rebalancing reads one Scan page only (dynamodb-checkpointer.go:
//     458-464): with a lease table over 1 MB (thousands of shards) rebalancing sees part of
//     it. Leases are still taken and renewed one by one; only the balance suffers.
//   - Only one new lease is taken per shard-sync tick, so the sync interval is seconds.
package kcl

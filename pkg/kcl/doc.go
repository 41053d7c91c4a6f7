// Package kcl adapts vmware-go-kcl-v2 — the Kinesis Client Library port that holds one lease
// per shard in a DynamoDB table — to the pipeline.
//
// The pipeline sees one small interface, Handler: it gets each record of a shard in order
// with a done func to call once the record is fully processed. The adapter tracks those acks
// per shard (package ack) and checkpoints only the contiguous acked prefix, so a restart or
// a lease moving to another worker re-reads records but never skips one. In-flight records
// per shard are bounded: ProcessRecords blocks (backpressure) rather than buffer a backlog.
//
// The library is archived (v1.0.0) and has defects this package wraps rather than inherits:
//
//   - Its loggers are logrus/zap/zerolog; ours is log/slog (see the logger adapter), with
//     lines that repeat every tick in normal operation demoted to debug. One spot (lease
//     renewal of the polling reader) logs straight to the global logrus logger — one stderr
//     line when a lease is lost or stolen — and cannot be redirected without global state.
//   - Its Prometheus service registers on the global registry and http.DefaultServeMux; we
//     install our own MonitoringService (it only tracks the leases held), so Prometheus is not
//     even linked.
//   - A checkpoint is an unconditional PutItem, so a worker that lost its lease could still
//     write. Our lease table makes the write conditional on owning the lease; a lost lease
//     then stops that shard's processor instead of moving someone else's checkpoint.
//   - Worker.Shutdown has no timeout, and a child shard waiting for its parent never checks
//     the stop signal. Run bounds Shutdown with Config.ShutdownTimeout, and our lease table
//     fails checkpoint reads once shutdown began, which ends those waits.
//   - Rebalancing gives up while any lease looks unowned, and the library cannot see the
//     owner of a lease without a checkpoint: one shard that never had a record disabled lease
//     stealing. Our lease table reads the owner of such leases too.
//   - ZOMBIE shutdown is never delivered: a lost or stolen lease just ends the calls, without
//     a final checkpoint. The new owner reads the records in flight again — duplicates that
//     dedup absorbs, never loss.
//   - A child shard waits for its parent's SHARD_END only if the parent's lease already has a
//     checkpoint; otherwise both are read at once. Order across a reshard is therefore not
//     guaranteed — the pipeline does not rely on it.
//   - Only one new lease is taken per shard-sync tick, so the sync interval is seconds.
package kcl

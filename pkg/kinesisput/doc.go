// Package kinesisput puts records into a Kinesis stream with PutRecords: in calls within the
// Kinesis limits, retrying exactly the records a call reports as failed (by index), on the
// project's one retry policy (pkg/retry) and an injected clock. The producer's simulate and
// replay commands share it, so both write the stream the same way.
package kinesisput

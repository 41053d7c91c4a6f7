// Package ack tracks which records of one Kinesis shard are done and where the shard may be
// checkpointed.
//
// Records of a shard are handed to the pipeline in order but finish in any order: a record
// that fed a slow window is acked long after later records that were skipped. A checkpoint
// says "everything up to here is done", so it may only move to the end of the contiguous
// done prefix — never past a record that is still in flight, or that record would be lost
// after a restart. Tracker computes that position. It is pure bookkeeping: no goroutines, no
// clock, no I/O; the caller decides when to write the checkpoint.
package ack

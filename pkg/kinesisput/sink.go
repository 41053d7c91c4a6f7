package kinesisput

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// Client is the one Kinesis call a Sink makes; *kinesis.Client has it.
type Client interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Options configures a Sink.
type Options struct {
	// Retry is the schedule of the retries of failed records (ProvisionedThroughputExceeded,
	// InternalFailure): full jitter, on Retry.Clock. Its zero fields default to Base 100 ms,
	// Max 5 s and MaxAttempts 10 (calls for one batch while some of its records keep failing).
	Retry retry.Policy
}

// Sink puts records with PutRecords, in batches within the Kinesis limits, retrying exactly
// the records that failed (by index). A whole call that fails is not retried here: the SDK's
// retryer has done that already.
type Sink struct {
	client Client
	stream string
	retry  retry.Policy
}

// New returns a sink for stream, a stream name or ARN.
func New(client Client, stream string, o Options) (*Sink, error) {
	if client == nil || stream == "" {
		return nil, errors.New("kinesisput: a sink needs a client and a stream")
	}
	p := o.Retry
	if p.Base <= 0 {
		p.Base = 100 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 5 * time.Second
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 10
	}
	return &Sink{client: client, stream: stream, retry: p}, nil
}

// Put puts records, in order of their batches; Kinesis may reorder the retried ones (the
// consumer expects any order). It returns nil only when every record was accepted. A record
// without a partition key or above MaxRecordBytes is refused before any call.
func (s *Sink) Put(ctx context.Context, records []types.PutRecordsRequestEntry) error {
	for i, r := range records {
		if r.PartitionKey == nil || *r.PartitionKey == "" {
			return fmt.Errorf("kinesisput: record %d has no partition key", i)
		}
		if RecordSize(r) > MaxRecordBytes {
			return fmt.Errorf("kinesisput: record %d is %d bytes, above the Kinesis limit of %d", i, RecordSize(r), MaxRecordBytes)
		}
	}
	for _, batch := range Batches(records) {
		if err := s.putBatch(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// failedRecords is a call that some records of failed: worth retrying those.
type failedRecords struct {
	n        int
	attempts int
	codes    map[string]int // error code → records
}

func (e *failedRecords) Error() string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(e.codes)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", c, e.codes[c]))
	}
	return fmt.Sprintf("%d records still failing after %d attempts: %s", e.n, e.attempts, strings.Join(parts, ", "))
}

func (s *Sink) putBatch(ctx context.Context, batch []types.PutRecordsRequestEntry) error {
	in := &kinesis.PutRecordsInput{}
	if strings.HasPrefix(s.stream, "arn:") {
		in.StreamARN = aws.String(s.stream)
	} else {
		in.StreamName = aws.String(s.stream)
	}
	pending := batch
	err := s.retry.Do(ctx, func(ctx context.Context, attempt int) error {
		call := *in
		call.Records = pending
		out, err := s.client.PutRecords(ctx, &call)
		if err != nil {
			return retry.Permanent(fmt.Errorf("put %d records: %w", len(pending), err))
		}
		if aws.ToInt32(out.FailedRecordCount) == 0 {
			return nil
		}
		if len(out.Records) != len(pending) {
			return retry.Permanent(fmt.Errorf("PutRecords answered %d results for %d records", len(out.Records), len(pending)))
		}
		var failed []types.PutRecordsRequestEntry
		codes := map[string]int{}
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed = append(failed, pending[i])
				codes[*r.ErrorCode]++
			}
		}
		if len(failed) == 0 { // FailedRecordCount > 0 without an ErrorCode: trust the entries
			return nil
		}
		pending = failed
		return &failedRecords{n: len(failed), attempts: attempt, codes: codes}
	})
	if err != nil {
		return fmt.Errorf("kinesisput: %w", err)
	}
	return nil
}

package simulate

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
)

// RecordSink puts records into the stream. Put returns nil only when every record was
// accepted; it may reorder them (the consumer expects any order). It uses the SDK's entry
// type, so other packages (replay) can declare the same one-method interface and share
// KinesisSink without importing this package's types.
type RecordSink interface {
	Put(ctx context.Context, records []types.PutRecordsRequestEntry) error
}

// KinesisPutter is the one Kinesis call a KinesisSink makes; *kinesis.Client has it.
type KinesisPutter interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
}

// Kinesis limits of one PutRecords call and one record.
const (
	MaxBatchRecords = 500
	MaxBatchBytes   = 5 << 20 // data and partition keys of all records
	MaxRecordBytes  = 1 << 20 // data and partition key of one record
)

// SinkOptions configures a KinesisSink.
type SinkOptions struct {
	// MaxAttempts bounds the calls for one batch while some of its records keep failing
	// (ProvisionedThroughputExceeded, InternalFailure); default 10.
	MaxAttempts int
	// BaseBackoff is the wait before the first retry of failed records, doubling up to
	// MaxBackoff; defaults 100 ms and 5 s.
	BaseBackoff, MaxBackoff time.Duration
	// Sleep, for tests; default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// KinesisSink puts records with PutRecords, in batches within the Kinesis limits, retrying
// exactly the records that failed (by index). A whole call that fails is not retried here:
// the SDK's retryer has done that already.
type KinesisSink struct {
	client KinesisPutter
	stream string
	o      SinkOptions
}

// NewKinesisSink returns a sink for stream, a stream name or ARN.
func NewKinesisSink(client KinesisPutter, stream string, o SinkOptions) (*KinesisSink, error) {
	if client == nil || stream == "" {
		return nil, errors.New("simulate: a Kinesis sink needs a client and a stream")
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return &KinesisSink{client: client, stream: stream, o: o}, nil
}

func recordSize(e types.PutRecordsRequestEntry) int {
	return len(e.Data) + len(aws.ToString(e.PartitionKey))
}

// Put implements RecordSink.
func (s *KinesisSink) Put(ctx context.Context, records []types.PutRecordsRequestEntry) error {
	for i, r := range records {
		if r.PartitionKey == nil || *r.PartitionKey == "" {
			return fmt.Errorf("simulate: record %d has no partition key", i)
		}
		if recordSize(r) > MaxRecordBytes {
			return fmt.Errorf("simulate: record %d is %d bytes, above the Kinesis limit of %d", i, recordSize(r), MaxRecordBytes)
		}
	}
	for _, batch := range Batches(records) {
		if err := s.putBatch(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

// Batches splits records, in order, into PutRecords calls within the count and size limits.
func Batches(records []types.PutRecordsRequestEntry) [][]types.PutRecordsRequestEntry {
	var out [][]types.PutRecordsRequestEntry
	start, size := 0, 0
	for i, r := range records {
		if i-start == MaxBatchRecords || size+recordSize(r) > MaxBatchBytes {
			out = append(out, records[start:i])
			start, size = i, 0
		}
		size += recordSize(r)
	}
	if start < len(records) {
		out = append(out, records[start:])
	}
	return out
}

func (s *KinesisSink) putBatch(ctx context.Context, batch []types.PutRecordsRequestEntry) error {
	in := &kinesis.PutRecordsInput{Records: batch}
	if strings.HasPrefix(s.stream, "arn:") {
		in.StreamARN = aws.String(s.stream)
	} else {
		in.StreamName = aws.String(s.stream)
	}
	backoff := s.o.BaseBackoff
	for attempt := 1; ; attempt++ {
		out, err := s.client.PutRecords(ctx, in)
		if err != nil {
			return fmt.Errorf("simulate: put %d records: %w", len(in.Records), err)
		}
		if aws.ToInt32(out.FailedRecordCount) == 0 {
			return nil
		}
		if len(out.Records) != len(in.Records) {
			return fmt.Errorf("simulate: PutRecords answered %d results for %d records", len(out.Records), len(in.Records))
		}
		var failed []types.PutRecordsRequestEntry
		codes := map[string]int{}
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed = append(failed, in.Records[i])
				codes[*r.ErrorCode]++
			}
		}
		if len(failed) == 0 { // FailedRecordCount > 0 without an ErrorCode: trust the entries
			return nil
		}
		if attempt >= s.o.MaxAttempts {
			var parts []string
			for _, c := range slices.Sorted(maps.Keys(codes)) {
				parts = append(parts, fmt.Sprintf("%s ×%d", c, codes[c]))
			}
			return fmt.Errorf("simulate: %d records still failing after %d attempts: %s", len(failed), attempt, strings.Join(parts, ", "))
		}
		if err := s.o.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, s.o.MaxBackoff)
		in = &kinesis.PutRecordsInput{Records: failed, StreamName: in.StreamName, StreamARN: in.StreamARN}
	}
}

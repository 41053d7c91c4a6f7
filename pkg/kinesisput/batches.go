package kinesisput

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Kinesis limits of one PutRecords call and one record.
const (
	MaxBatchRecords = 500
	MaxBatchBytes   = 5 << 20 // data and partition keys of all records
	MaxRecordBytes  = 1 << 20 // data and partition key of one record
)

// RecordSize is what a record counts against MaxRecordBytes and MaxBatchBytes.
func RecordSize(e types.PutRecordsRequestEntry) int {
	return len(e.Data) + len(aws.ToString(e.PartitionKey))
}

// Batches splits records, in order, into PutRecords calls within the count and size limits.
func Batches(records []types.PutRecordsRequestEntry) [][]types.PutRecordsRequestEntry {
	var out [][]types.PutRecordsRequestEntry
	start, size := 0, 0
	for i, r := range records {
		if i-start == MaxBatchRecords || size+RecordSize(r) > MaxBatchBytes {
			out = append(out, records[start:i])
			start, size = i, 0
		}
		size += RecordSize(r)
	}
	if start < len(records) {
		out = append(out, records[start:])
	}
	return out
}

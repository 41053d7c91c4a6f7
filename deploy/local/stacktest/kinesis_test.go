package stacktest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// stackUniqueName keeps tests that share a long-running server from seeing each other's resources.
func stackUniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

func TestKinesisPutAndReadAllShards(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	kc := stack.KinesisClient(t)
	const shards, records = 4, 400
	stream := stack.CreateStream(t, kc, "stacktest-kinesis", shards)

	want := make([]string, records)
	for start := 0; start < records; start += 100 {
		batch := make([]types.PutRecordsRequestEntry, 0, 100)
		for i := start; i < start+100; i++ {
			want[i] = fmt.Sprintf("record-%03d", i)
			batch = append(batch, types.PutRecordsRequestEntry{
				Data:         []byte(want[i]),
				PartitionKey: aws.String(fmt.Sprintf("pk-%d", i)),
			})
		}
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batch})
		if err != nil {
			t.Fatalf("PutRecords: %v", err)
		}
		if n := aws.ToInt32(out.FailedRecordCount); n != 0 {
			t.Fatalf("PutRecords: %d records failed", n)
		}
	}

	ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	if len(ls.Shards) != shards {
		t.Fatalf("ListShards: %d shards, want %d", len(ls.Shards), shards)
	}

	var got []string
	nonEmpty := 0
	for _, sh := range ls.Shards {
		recs := stack.ReadShard(t, kc, stream, aws.ToString(sh.ShardId))
		if len(recs) > 0 {
			nonEmpty++
		}
		for _, r := range recs {
			got = append(got, string(r.Data))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("read %d records back, want exactly the %d put", len(got), len(want))
	}
	if nonEmpty < 2 {
		t.Errorf("records landed on %d shard(s), want them spread over several", nonEmpty)
	}
}

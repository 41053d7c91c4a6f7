package stack

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Region is the region of every client of the local stack.
const Region = "us-east-1"

// AWSConfig is the aws.Config a program builds, for the local stack: Region, static
// credentials (nothing reaches a real credential provider) and an HTTP client of the test's
// own, whose idle connections are closed when the test ends (goleak would see them). Endpoints
// are per service: the clients below set them.
func AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  &http.Client{Transport: tr},
	}
}

// Endpoint is the URL of a service of the stack: AWS_ENDPOINT_URL_<name> when set (what
// `deploy/local/stack.sh env` exports, and what the programs read), else the server's
// CDC_LOCAL port. The local server must be reachable either way (see Addr), so a test without
// the stack fails — or is skipped under -short — the same way whatever the environment says.
func Endpoint(t testing.TB, name string) string {
	t.Helper()
	local := URL(t, name)
	if u := os.Getenv("AWS_ENDPOINT_URL_" + name); u != "" {
		return u
	}
	return local
}

// KinesisClient is a Kinesis client of the local stack; opts adjust it (e.g. a Retryer).
func KinesisClient(t testing.TB, opts ...func(*kinesis.Options)) *kinesis.Client {
	t.Helper()
	u := Endpoint(t, Kinesis)
	return kinesis.NewFromConfig(AWSConfig(t), append([]func(*kinesis.Options){func(o *kinesis.Options) { o.BaseEndpoint = aws.String(u) }}, opts...)...)
}

// DynamoDBClient is a DynamoDB client of the local stack; opts adjust it.
func DynamoDBClient(t testing.TB, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	u := Endpoint(t, DynamoDB)
	return dynamodb.NewFromConfig(AWSConfig(t), append([]func(*dynamodb.Options){func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(u) }}, opts...)...)
}

// EventBridgeClient is an EventBridge client of the local recorder; opts adjust it.
func EventBridgeClient(t testing.TB, opts ...func(*eventbridge.Options)) *eventbridge.Client {
	t.Helper()
	u := Endpoint(t, EventBridge)
	return eventbridge.NewFromConfig(AWSConfig(t), append([]func(*eventbridge.Options){func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(u) }}, opts...)...)
}

// CreateStream creates a stream named prefix-<random> with shards shards, waits until it is
// ACTIVE and deletes it (with its consumers) when the test ends. It returns the name.
func CreateStream(t testing.TB, kc *kinesis.Client, prefix string, shards int32) string {
	t.Helper()
	stream := prefix + "-" + RandomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatalf("CreateStream %s: %v", stream, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
			t.Logf("DeleteStream %s: %v", stream, err)
		}
	})
	WaitStreamActive(t, kc, stream)
	return stream
}

// WaitStreamActive waits up to 30 s for a stream to be ACTIVE (kinesalite takes a moment after
// CreateStream, and after a reshard).
func WaitStreamActive(t testing.TB, kc *kinesis.Client, stream string) {
	t.Helper()
	Eventually(t, 30*time.Second, "stream "+stream+" ACTIVE", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		return err == nil && d.StreamDescriptionSummary.StreamStatus == ktypes.StreamStatusActive
	})
}

// ReadStream reads every record of every shard of stream from TRIM_HORIZON, shard by shard.
func ReadStream(t testing.TB, kc *kinesis.Client, stream string) []ktypes.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards %s: %v", stream, err)
	}
	var all []ktypes.Record
	for _, sh := range ls.Shards {
		all = append(all, ReadShard(t, kc, stream, aws.ToString(sh.ShardId))...)
	}
	return all
}

// ReadShard returns the records of one shard from TRIM_HORIZON to its tip: until a read
// returns nothing and the shard is not behind (an empty read alone can come before the tip),
// or the shard is closed and read to its end.
func ReadShard(t testing.TB, kc *kinesis.Client, stream, shardID string) []ktypes.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(shardID), ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		t.Fatalf("GetShardIterator %s/%s: %v", stream, shardID, err)
	}
	var all []ktypes.Record
	for iter := it.ShardIterator; iter != nil; {
		out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
		if err != nil {
			t.Fatalf("GetRecords %s/%s: %v", stream, shardID, err)
		}
		all = append(all, out.Records...)
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			break // an open shard has a next iterator forever
		}
		iter = out.NextShardIterator
	}
	return all
}

// Eventually polls cond every 50 ms until it holds, and fails the test naming what it waited
// for when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

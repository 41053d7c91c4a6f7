package kinesisput

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// fakeKinesis fails records on demand: Kinesis's partial failures cannot be provoked on
// kinesalite.
type fakeKinesis struct {
	mu    sync.Mutex
	calls []*kinesis.PutRecordsInput
	// fail says whether the record (its data) fails in this call (1-based).
	fail    func(call int, data string) bool
	callErr error
}

func (f *fakeKinesis) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, in)
	if f.callErr != nil {
		return nil, f.callErr
	}
	out := &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(0)}
	for _, r := range in.Records {
		res := types.PutRecordsResultEntry{SequenceNumber: aws.String("1"), ShardId: aws.String("shardId-000000000000")}
		if f.fail != nil && f.fail(len(f.calls), string(r.Data)) {
			res = types.PutRecordsResultEntry{ErrorCode: aws.String("ProvisionedThroughputExceededException"), ErrorMessage: aws.String("slow down")}
			*out.FailedRecordCount++
		}
		out.Records = append(out.Records, res)
	}
	return out, nil
}

func entries(n, size int) []types.PutRecordsRequestEntry {
	var es []types.PutRecordsRequestEntry
	for i := range n {
		data := fmt.Sprintf("r%d", i)
		data += strings.Repeat(".", max(0, size-len(data)))
		es = append(es, types.PutRecordsRequestEntry{Data: []byte(data), PartitionKey: aws.String(fmt.Sprint(i))})
	}
	return es
}

// newSink returns a sink that waits on a fake clock (each wait passes at once) with the
// longest jitter (each wait is its cap), and the waits' clock.
func newSink(t *testing.T, k *fakeKinesis, stream string) (*Sink, *clocktest.Fake) {
	t.Helper()
	clk := clocktest.NewAuto(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	s, err := New(k, stream, Options{Retry: retry.Policy{MaxAttempts: 4, Clock: clk, Rand: func() float64 { return 1 }}})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func TestBatches(t *testing.T) {
	sizes := func(bs [][]types.PutRecordsRequestEntry) []int {
		var n []int
		for _, b := range bs {
			n = append(n, len(b))
		}
		return n
	}
	if got := sizes(Batches(entries(1234, 10))); fmt.Sprint(got) != "[500 500 234]" {
		t.Errorf("by count: %v", got)
	}
	// 900 KiB records (+ a few bytes of key): five fit in 5 MiB, the sixth does not.
	if got := sizes(Batches(entries(12, 900<<10))); fmt.Sprint(got) != "[5 5 2]" {
		t.Errorf("by size: %v", got)
	}
	if got := Batches(nil); len(got) != 0 {
		t.Errorf("no records: %v", got)
	}
}

func TestKinesisSinkRetriesFailedRecordsByIndex(t *testing.T) {
	k := &fakeKinesis{fail: func(call int, data string) bool {
		// Call 1 fails r1 and r3, call 2 (the retry of those two) fails r3 again.
		return (call == 1 && (data == "r1" || data == "r3")) || (call == 2 && data == "r3")
	}}
	s, clk := newSink(t, k, "the-stream")
	if err := s.Put(context.Background(), entries(5, 0)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range k.calls {
		var d []string
		for _, r := range c.Records {
			d = append(d, string(r.Data))
		}
		got = append(got, strings.Join(d, ","))
		if aws.ToString(c.StreamName) != "the-stream" || c.StreamARN != nil {
			t.Errorf("stream name %v arn %v", c.StreamName, c.StreamARN)
		}
	}
	if want := "r0,r1,r2,r3,r4 | r1,r3 | r3"; strings.Join(got, " | ") != want {
		t.Errorf("calls %q, want %q", strings.Join(got, " | "), want)
	}
	// The default schedule: caps 100 ms, then 200 ms.
	if fmt.Sprint(clk.Waits()) != "[100ms 200ms]" {
		t.Errorf("backoff %v", clk.Waits())
	}
}

func TestKinesisSinkGivesUp(t *testing.T) {
	k := &fakeKinesis{fail: func(_ int, data string) bool { return data == "r2" }}
	s, _ := newSink(t, k, "arn:aws:kinesis:us-east-1:123456789012:stream/s")
	err := s.Put(context.Background(), entries(3, 0))
	if err == nil || !strings.Contains(err.Error(), "1 records still failing after 4 attempts: ProvisionedThroughputExceededException ×1") {
		t.Errorf("err = %v", err)
	}
	if len(k.calls) != 4 || k.calls[0].StreamARN == nil || k.calls[0].StreamName != nil {
		t.Errorf("%d calls; ARN %v", len(k.calls), k.calls[0].StreamARN)
	}

	k = &fakeKinesis{callErr: errors.New("ResourceNotFoundException")}
	s, _ = newSink(t, k, "gone")
	if err := s.Put(context.Background(), entries(3, 0)); err == nil || len(k.calls) != 1 {
		t.Errorf("call error: %v after %d calls", err, len(k.calls))
	}
}

func TestKinesisSinkRefusesBadRecords(t *testing.T) {
	k := &fakeKinesis{}
	s, _ := newSink(t, k, "s")
	big := entries(1, MaxRecordBytes)
	if err := s.Put(context.Background(), big); err == nil {
		t.Error("a record above 1 MiB was accepted")
	}
	if err := s.Put(context.Background(), []types.PutRecordsRequestEntry{{Data: []byte("x")}}); err == nil {
		t.Error("a record without partition key was accepted")
	}
	if len(k.calls) != 0 {
		t.Errorf("%d calls for refused records", len(k.calls))
	}
}

// The waits are full jitter on the retry policy: drawn in [0, cap], here half of each cap;
// the retries stop at ctx's deadline rather than sleep past it.
func TestKinesisSinkBacksOffWithJitterWithinTheDeadline(t *testing.T) {
	k := &fakeKinesis{fail: func(call int, data string) bool { return data == "r0" && call < 3 }}
	clk := clocktest.NewAuto(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	s, err := New(k, "s", Options{Retry: retry.Policy{Clock: clk, Rand: func() float64 { return 0.5 }}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(context.Background(), entries(2, 0)); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(clk.Waits()) != "[50ms 100ms]" || len(k.calls) != 3 {
		t.Errorf("waits %v in %d calls", clk.Waits(), len(k.calls))
	}

	// ctx's deadline is real time: the fake clock starts now, the waits are long.
	clk = clocktest.NewAuto(time.Now())
	k = &fakeKinesis{fail: func(int, string) bool { return true }}
	s, _ = New(k, "s", Options{Retry: retry.Policy{Base: 40 * time.Minute, Max: 2 * time.Hour, Clock: clk, Rand: func() float64 { return 1 }}})
	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(time.Hour))
	defer cancel()
	err = s.Put(ctx, entries(1, 0))
	// 40 min, then 80 min would end after the deadline: two calls, no second wait.
	if !errors.Is(err, retry.ErrDeadline) || len(k.calls) != 2 {
		t.Errorf("err = %v after %d calls", err, len(k.calls))
	}
}

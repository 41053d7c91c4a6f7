package main

// End-to-end tests: the real consumer binary as separate processes, on the local stack
// (kinesalite, dynalite, Redis, the FHIR server, the EventBridge recorder). They write FHIR
// resources, put the matching CloudTrail records into Kinesis, and check what reached the bus.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/simulate"
)

// e2e is one test's world: its own stream, lease table, bus Source, dedup prefix and
// datastores on the shared local servers.
type e2e struct {
	t           *testing.T
	bin         string
	stream      string
	application string
	source      string
	fhir        string
	recorder    string
	env         []string
	kc          *kinesis.Client
	ddb         *dynamodb.Client

	mu     sync.Mutex
	writes []e2eWrite
}

type e2eWrite struct {
	DS, Type, ID, Version string
	LastUpdated           time.Time
}

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// consumerBinary builds the consumer once per test run. CDC_E2E_CONSUMER_BIN runs another
// build instead (an earlier version, for before/after figures).
func consumerBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CDC_E2E_CONSUMER_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hlcdc-e2e-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(dir, "consumer")
		out, err := exec.Command("go", "build", "-race", "-o", buildOnce.bin, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.bin
}

func newE2E(t *testing.T, shards int32) *e2e {
	t.Helper()
	e := &e2e{
		t:           t,
		bin:         consumerBinary(t),
		application: "e2e-app-" + stack.RandomHex(4),
		source:      "test.e2e." + stack.RandomHex(4),
		fhir:        stack.URL(t, stack.FHIR),
		recorder:    stack.URL(t, stack.EventBridge),
	}
	kinesisURL, ddbURL := stack.Endpoint(t, stack.Kinesis), stack.Endpoint(t, stack.DynamoDB)
	redisURL := "redis://" + stack.Addr(t, stack.Redis) + "/0"
	e.kc, e.ddb = stack.KinesisClient(t), stack.DynamoDBClient(t)
	e.stream = stack.CreateStream(t, e.kc, "e2e", shards)
	t.Cleanup(func() {
		e.ddb.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(e.application)})
	})
	e.env = append(os.Environ(),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL_KINESIS="+kinesisURL, "AWS_ENDPOINT_URL_DYNAMODB="+ddbURL,
		"AWS_ENDPOINT_URL_EVENTBRIDGE="+e.recorder,
		"CDC_STREAM="+e.stream, "CDC_APPLICATION="+e.application, "CDC_BUS=e2e-bus", "CDC_SOURCE="+e.source,
		"CDC_FHIR_ENDPOINT="+e.fhir+"/datastore/{datastoreId}/r4/", "CDC_FHIR_AUTH=none",
		"CDC_REDIS_URL="+redisURL, "CDC_DEDUP_PREFIX=e2e:"+stack.RandomHex(4)+":",
		"CDC_WINDOW=500ms", "CDC_SETTLE=0s", "CDC_LEAD=2s", "CDC_LAG=2s", "CDC_VERIFY_AFTER=3s",
		"CDC_KEY_LEASE_TTL=5s", "CDC_PARKED_RETRY=2s", "CDC_PUTEVENTS_TIMEOUT=1s",
		"CDC_CLAIM_TTL=10s", "CDC_SHUTDOWN_GRACE=20s", "CDC_HTTP_ADDR=", "CDC_LOG_LEVEL=warn",
	)
	return e
}

func (e *e2e) waitStreamActive() {
	e.t.Helper()
	stack.WaitStreamActive(e.t, e.kc, e.stream)
}

// consumerProc is one running consumer process.
type consumerProc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func (e *e2e) startConsumer(workerID string, extraEnv ...string) *consumerProc {
	e.t.Helper()
	cmd := exec.Command(e.bin)
	cmd.Env = append(append(append([]string{}, e.env...), "CDC_WORKER_ID="+workerID), extraEnv...)
	p := &consumerProc{cmd: cmd, out: &bytes.Buffer{}, done: make(chan error, 1)}
	sw := &syncWriter{w: p.out}
	cmd.Stdout, cmd.Stderr = sw, sw
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start consumer: %v", err)
	}
	go func() { p.done <- cmd.Wait() }()
	e.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
		if e.t.Failed() {
			e.t.Logf("consumer %s output:\n%s", workerID, tail(p.out.String(), 40))
			if dir := os.Getenv("CDC_E2E_LOGS"); dir != "" {
				_ = os.WriteFile(filepath.Join(dir, workerID+".log"), p.out.Bytes(), 0o644)
			}
		}
	})
	return p
}

// stop sends sig and waits for the process, returning its exit error (nil for status 0).
func (p *consumerProc) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) error {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		return err
	case <-time.After(timeout):
		t.Fatalf("consumer did not exit within %v after %v", timeout, sig)
		return nil
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// write creates (id == "") or updates a resource and returns the record CloudTrail would
// deliver for it.
func (e *e2e) write(ds, rt, id string, n int) []byte {
	e.t.Helper()
	r := map[string]any{"resourceType": rt, "status": "final", "code": map[string]any{"text": fmt.Sprint("n", n)}}
	if id != "" {
		r["id"] = id
	}
	body, _ := json.Marshal(r)
	w, err := simulate.NewHTTPWriter(simulate.HTTPWriterOptions{Endpoint: e.fhir + "/datastore/{datastoreId}/r4/"})
	if err != nil {
		e.t.Fatal(err)
	}
	start := time.Now().UTC()
	var v simulate.Version
	if id == "" {
		v, err = w.Create(context.Background(), ds, rt, body)
	} else {
		v, err = w.Update(context.Background(), ds, rt, id, body)
	}
	if err != nil {
		e.t.Fatalf("FHIR write %s: %v", rt, err)
	}
	e.mu.Lock()
	e.writes = append(e.writes, e2eWrite{DS: ds, Type: rt, ID: v.ID, Version: v.VersionID, LastUpdated: v.LastUpdated})
	e.mu.Unlock()
	op := event.Update
	if id == "" {
		op = event.Create
	}
	rec, err := cloudtrail.Encode(cloudtrail.Change{
		EventID: "ct-" + stack.RandomHex(10), DatastoreID: ds, ResourceType: rt, Operation: op,
		EventTime: start, Region: "us-east-1", Account: "123456789012",
	}, "eb-"+stack.RandomHex(10), "req-"+stack.RandomHex(6))
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// put puts records into the stream, partition key = a fresh EventBridge-like event id, as a
// rule without PartitionKeyPath does, retrying failed ones.
func (e *e2e) put(records ...[]byte) {
	e.t.Helper()
	for len(records) > 0 {
		n := min(len(records), 500)
		batch := records[:n]
		records = records[n:]
		for attempt := 0; len(batch) > 0; attempt++ {
			in := &kinesis.PutRecordsInput{StreamName: aws.String(e.stream)}
			for _, r := range batch {
				in.Records = append(in.Records, ktypes.PutRecordsRequestEntry{Data: r, PartitionKey: aws.String(stack.RandomHex(8))})
			}
			out, err := e.kc.PutRecords(context.Background(), in)
			if err != nil {
				if attempt > 20 {
					e.t.Fatalf("put records: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			var again [][]byte
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					again = append(again, batch[i])
				}
			}
			batch = again
		}
	}
}

// events reads this test's change events and rejected-record reports from the recorder's file.
func (e *e2e) events() (changes []event.ChangeDetail, rejected []event.Rejected) {
	e.t.Helper()
	for _, l := range stack.Recorded(e.t, e.source) {
		switch l.DetailType {
		case event.DetailTypeRejected:
			rejected = append(rejected, stack.Detail[event.Rejected](e.t, l))
		case event.DetailTypeCreated, event.DetailTypeUpdated, event.DetailTypeDeleted:
			changes = append(changes, stack.Detail[event.ChangeDetail](e.t, l))
		}
	}
	return changes, rejected
}

// missing lists the writes with no event for their resource at or after them, and dups the
// (resource, version) pairs emitted more than once.
func (e *e2e) check() (missing []e2eWrite, dups []string) {
	changes, _ := e.events()
	latest := map[string]time.Time{}
	count := map[string]int{}
	for _, c := range changes {
		k := c.DatastoreID + "/" + c.ResourceType + "/" + c.ID
		if c.LastUpdated.After(latest[k]) {
			latest[k] = c.LastUpdated.Time
		}
		count[k+"/"+c.VersionID]++
	}
	for k, n := range count {
		if n > 1 {
			dups = append(dups, fmt.Sprintf("%s ×%d", k, n))
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.writes {
		if l, ok := latest[w.DS+"/"+w.Type+"/"+w.ID]; !ok || l.Before(w.LastUpdated) {
			missing = append(missing, w)
		}
	}
	return missing, dups
}

// waitComplete polls until nothing is missing, or fails after timeout.
func (e *e2e) waitComplete(timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing, dups := e.check()
		if len(missing) == 0 {
			if len(dups) > 0 {
				e.t.Errorf("%d duplicates, e.g. %v", len(dups), dups[:min(5, len(dups))])
			}
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d of %d writes missing after %v, e.g. %+v", len(missing), len(e.writes), timeout, missing[0])
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// leaseOwners reads the lease table: shard → owner.
func (e *e2e) leaseOwners() map[string]string { return e.leaseAttr("AssignedTo") }

// leaseAttr reads the lease table: shard → the item's string attribute attr (absent: left
// out).
func (e *e2e) leaseAttr(attr string) map[string]string {
	e.t.Helper()
	out, err := e.ddb.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(e.application)})
	var notFound *ddbtypes.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return nil // the first worker has not made the table yet
	}
	if err != nil {
		e.t.Fatalf("scan lease table: %v", err)
	}
	m := map[string]string{}
	for _, item := range out.Items {
		shard, _ := item["ShardID"].(*ddbtypes.AttributeValueMemberS)
		v, _ := item[attr].(*ddbtypes.AttributeValueMemberS)
		if shard != nil && v != nil {
			m[shard.Value] = v.Value
		}
	}
	return m
}

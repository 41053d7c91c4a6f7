package replay

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
)

const ds = "095d2262da454bb7347488c930e009eb"

// fixtureDetail is the CloudTrail record inside a fixture of the cloudtrail package.
func fixtureDetail(t *testing.T, name string) (fixture map[string]any, detail json.RawMessage) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cloudtrail", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fixture); err != nil {
		t.Fatal(err)
	}
	return fixture, env.Detail
}

// record is a CloudTrail record of a HealthLake call; change edits it.
func record(t *testing.T, eventName, resourceType, eventTime string, change func(map[string]any)) map[string]any {
	t.Helper()
	_, raw := fixtureDetail(t, "create-patient.json")
	var r map[string]any
	json.Unmarshal(raw, &r)
	r["eventName"] = eventName
	r["eventTime"] = eventTime
	r["eventID"] = fmt.Sprintf("ev-%s-%s-%s", eventName, resourceType, strings.NewReplacer(":", "", "-", "").Replace(eventTime))
	r["requestParameters"].(map[string]any)["resourceType"] = resourceType
	status := map[string]float64{"CreateResource": 201, "UpdateResource": 200, "DeleteResource": 204, "ReadResource": 200}[eventName]
	r["responseElements"] = map[string]any{"statusCode": status}
	if change != nil {
		change(r)
	}
	return r
}

func writeLog(t *testing.T, path string, gz bool, log any) {
	t.Helper()
	b, err := json.Marshal(log)
	if err != nil {
		t.Fatal(err)
	}
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		b = buf.Bytes()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type fakeSink struct {
	mu    sync.Mutex
	calls [][]types.PutRecordsRequestEntry
}

func (s *fakeSink) Put(_ context.Context, rs []types.PutRecordsRequestEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, slices.Clone(rs))
	return nil
}

func (s *fakeSink) records() []types.PutRecordsRequestEntry {
	var all []types.PutRecordsRequestEntry
	for _, c := range s.calls {
		all = append(all, c...)
	}
	return all
}

// logTree is an S3-like tree of CloudTrail files: two log files, a digest file, and a file
// that is no log.
func logTree(t *testing.T) string {
	dir := t.TempDir()
	day := filepath.Join(dir, "AWSLogs", "123456789012", "CloudTrail", "us-west-2", "2026", "11", "20")
	writeLog(t, filepath.Join(day, "123456789012_CloudTrail_us-west-2_20261120T0915Z_a.json.gz"), true, map[string]any{"Records": []any{
		record(t, "CreateResource", "Patient", "2026-11-20T09:15:02Z", nil),
		record(t, "UpdateResource", "Observation", "2026-11-20T09:15:03Z", nil),
		record(t, "DeleteResource", "Encounter", "2026-11-20T09:15:04Z", nil),
		record(t, "CreateResource", "Patient", "2026-11-20T09:15:05Z", func(r map[string]any) { // failed
			r["errorCode"] = "ValidationException"
			r["responseElements"] = nil
		}),
		record(t, "CreateResource", "Patient", "2026-11-20T09:15:06Z", func(r map[string]any) { // failed: 400
			r["responseElements"] = map[string]any{"statusCode": 400}
		}),
		record(t, "ReadResource", "Patient", "2026-11-20T09:15:07Z", nil), // a read
		map[string]any{"eventSource": "s3.amazonaws.com", "eventName": "PutObject", "eventTime": "2026-11-20T09:15:08Z"},
		record(t, "CreateResource", "Patient", "2026-11-20T10:00:00Z", nil), // at To: out of range
		record(t, "CreateResource", "Patient", "yesterday", nil),            // malformed
		record(t, "CreateResource", "Patient", "2026-11-20T09:15:09Z", func(r map[string]any) { // no region
			delete(r, "awsRegion")
		}),
	}})
	writeLog(t, filepath.Join(day, "123456789012_CloudTrail_us-west-2_20261120T0920Z_b.json"), false, map[string]any{"Records": []any{
		record(t, "CreateResource", "Condition", "2026-11-20T09:20:00Z", func(r map[string]any) { // account from userIdentity
			delete(r, "recipientAccountId")
			r["userIdentity"].(map[string]any)["accountId"] = "210987654321"
		}),
		record(t, "CreateResource", "Condition", "2026-11-20T09:09:59Z", nil), // before From
	}})
	writeLog(t, filepath.Join(dir, "AWSLogs", "123456789012", "CloudTrail-Digest", "us-west-2", "2026", "11", "20", "digest.json.gz"), true,
		map[string]any{"awsAccountId": "123456789012", "digestStartTime": "2026-11-20T09:00:00Z", "logFiles": []any{}})
	os.WriteFile(filepath.Join(dir, "README.txt"), []byte("not a log"), 0o644)
	return dir
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestReplay(t *testing.T) {
	dir := logTree(t)
	files, err := Files([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("files %v, want the two logs and the digest", files)
	}
	opts := Options{From: time.Date(2026, 11, 20, 9, 10, 0, 0, time.UTC), To: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)}
	sink := &fakeSink{}
	var progress []string
	stats, err := Run(context.Background(), files, sink, opts, func(done, total int) { progress = append(progress, fmt.Sprint(done, "/", total)) })
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Files: 2, NotLogFiles: 1, Records: 12, Put: 4, Ignored: 2, Failed: 2, OutOfRange: 2, Malformed: 2,
		PutByName: map[string]int{"CreateResource": 2, "UpdateResource": 1, "DeleteResource": 1}}
	if !reflect.DeepEqual(stats, want) {
		t.Errorf("stats %+v\nwant  %+v", stats, want)
	}
	if strings.Join(progress, " ") != "1/3 2/3 3/3" {
		t.Errorf("progress %v", progress)
	}

	v, _ := cloudtrail.NewValidator(nil)
	var got []string
	for _, r := range sink.records() {
		d := v.Decide(r.Data)
		if d.Outcome != cloudtrail.Act {
			t.Fatalf("replayed record: %s %s %s", d.Outcome, d.Reason, d.Detail)
		}
		var env struct {
			ID string `json:"id"`
		}
		json.Unmarshal(r.Data, &env)
		if !uuidRE.MatchString(env.ID) || aws.ToString(r.PartitionKey) != env.ID {
			t.Errorf("envelope id %q, partition key %q", env.ID, aws.ToString(r.PartitionKey))
		}
		c := d.Change
		got = append(got, fmt.Sprintf("%s %s %s %s %s %s %s", c.Operation, c.DatastoreID, c.ResourceType,
			c.EventTime.Format(time.RFC3339), c.Region, c.Account, c.EventID))
	}
	wantChanges := []string{
		"create " + ds + " Patient 2026-11-20T09:15:02Z us-west-2 123456789012 ev-CreateResource-Patient-20261120T091502Z",
		"update " + ds + " Observation 2026-11-20T09:15:03Z us-west-2 123456789012 ev-UpdateResource-Observation-20261120T091503Z",
		"delete " + ds + " Encounter 2026-11-20T09:15:04Z us-west-2 123456789012 ev-DeleteResource-Encounter-20261120T091504Z",
		"create " + ds + " Condition 2026-11-20T09:20:00Z us-west-2 210987654321 ev-CreateResource-Condition-20261120T092000Z",
	}
	if strings.Join(got, "\n") != strings.Join(wantChanges, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantChanges, "\n"))
	}

	// Open ends: everything that succeeded.
	stats, err = Run(context.Background(), files, &fakeSink{}, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Put != 6 || stats.OutOfRange != 0 {
		t.Errorf("unbounded: %+v", stats)
	}
}

func TestDryRun(t *testing.T) {
	files, err := Files([]string{logTree(t)})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := Run(context.Background(), files, nil, Options{DryRun: true, Rate: 0.001}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Put != 6 || stats.Records != 12 {
		t.Errorf("dry run %+v", stats)
	}
	if _, err := Run(context.Background(), files, nil, Options{}, nil); err == nil {
		t.Error("no sink and no dry run: no error")
	}
}

// The envelope around a fixture's CloudTrail record is the fixture itself, but for the new
// event id: same fields, same values, the record byte for byte.
func TestEnvelopeMatchesFixtures(t *testing.T) {
	for _, name := range []string{
		"create-patient.json", "update-observation.json", "delete-encounter.json", "patch-observation.json",
		"update-conditional.json", "bundle-batch.json", "create-bundle-type.json", "update-without-resourcetype.json",
		"unknown-write.json",
	} {
		t.Run(name, func(t *testing.T) {
			fixture, detail := fixtureDetail(t, name)
			// Written by hand: json.Marshal would compact the record.
			path := filepath.Join(t.TempDir(), "log.json")
			if err := os.WriteFile(path, []byte(`{"Records": [`+string(detail)+`]}`), 0o644); err != nil {
				t.Fatal(err)
			}
			sink := &fakeSink{}
			if _, err := Run(context.Background(), []string{path}, sink, Options{}, nil); err != nil {
				t.Fatal(err)
			}
			recs := sink.records()
			if len(recs) != 1 {
				t.Fatalf("%d records", len(recs))
			}
			if !bytes.Contains(recs[0].Data, []byte(`"detail":`+string(detail)+`}`)) {
				t.Error("the CloudTrail record is not in the envelope byte for byte")
			}
			var got map[string]any
			if err := json.Unmarshal(recs[0].Data, &got); err != nil {
				t.Fatal(err)
			}
			if !uuidRE.MatchString(got["id"].(string)) {
				t.Errorf("id %v", got["id"])
			}
			if k1, k2 := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(fixture)); !slices.Equal(k1, k2) {
				t.Errorf("fields %v, fixture has %v", k1, k2)
			}
			got["id"] = fixture["id"]
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(fixture)
			if !bytes.Equal(a, b) {
				t.Errorf("envelope differs from the fixture:\n%s\n%s", a, b)
			}
		})
	}
}

func TestRateBound(t *testing.T) {
	var recs []any
	base := time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	for i := range 1000 {
		recs = append(recs, record(t, "UpdateResource", "Observation", base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), nil))
	}
	path := filepath.Join(t.TempDir(), "many.json.gz")
	writeLog(t, path, true, map[string]any{"Records": recs})

	clk := clocktest.NewAuto(base)
	var at []time.Duration
	sink := &timedSink{now: clk.Now, start: base, at: &at}
	stats, err := Run(context.Background(), []string{path}, sink, Options{Rate: 100, Clock: clk}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// 100/s: batches of 10 (a tenth of a second's worth), the k-th at k × 100 ms.
	if stats.Put != 1000 || len(at) != 100 || sink.max != 10 {
		t.Fatalf("put %d in %d calls of up to %d", stats.Put, len(at), sink.max)
	}
	for k, d := range at {
		if d != time.Duration(k)*100*time.Millisecond {
			t.Fatalf("call %d at %v, want %v", k, d, time.Duration(k)*100*time.Millisecond)
		}
	}
	for _, r := range []float64{-1, -0.5} {
		if _, err := Run(context.Background(), nil, sink, Options{Rate: r}, nil); err == nil {
			t.Errorf("rate %v accepted", r)
		}
	}
	if _, err := Run(context.Background(), nil, sink, Options{From: base, To: base}, nil); err == nil {
		t.Error("from = to accepted")
	}
}

type timedSink struct {
	now   func() time.Time
	start time.Time
	at    *[]time.Duration
	max   int
}

func (s *timedSink) Put(_ context.Context, rs []types.PutRecordsRequestEntry) error {
	*s.at = append(*s.at, s.now().Sub(s.start))
	s.max = max(s.max, len(rs))
	return nil
}

func TestFiles(t *testing.T) {
	dir := logTree(t)
	day := filepath.Join(dir, "AWSLogs", "123456789012", "CloudTrail", "us-west-2", "2026", "11", "20")
	got, err := Files([]string{filepath.Join(day, "*.json*"), filepath.Join(dir, "README.txt"), filepath.Join(day, "*_b.json")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !strings.HasSuffix(got[0], "_a.json.gz") || !strings.HasSuffix(got[1], "_b.json") || !strings.HasSuffix(got[2], "README.txt") {
		t.Errorf("files %v", got)
	}
	for _, bad := range [][]string{
		{filepath.Join(dir, "nothing-*.gz")},
		{filepath.Join(dir, "missing.json")},
		{t.TempDir()}, // an empty directory
		{"[x"},
	} {
		if _, err := Files(bad); err == nil {
			t.Errorf("Files(%v): no error", bad)
		}
	}
}

func TestUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "a.json")
	os.WriteFile(notJSON, []byte("hello"), 0o644)
	truncated := filepath.Join(dir, "b.json.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"Records":[{"eventSource":"healthlake.amazonaws.com"`))
	zw.Close()
	os.WriteFile(truncated, buf.Bytes()[:buf.Len()-4], 0o644)
	for _, f := range []string{notJSON, truncated} {
		_, err := Run(context.Background(), []string{f}, &fakeSink{}, Options{}, nil)
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("%s: err = %v, want one naming the file", f, err)
		}
	}
}

// Replay keeps exactly what the consumer acts on. Every fixture of the cloudtrail package is
// replayed twice: its CloudTrail record inside a log file (fixtures that are CloudTrail
// events), and the fixture itself as an EventBridge events file (every fixture: import events
// reach EventBridge only that way). Each is put if and only if Decide acts on the fixture, and
// otherwise counted as the Decision says: a skip as Ignored (Failed for a failed call), a
// reject as Malformed.
func TestReplayKeepsWhatTheConsumerActsOn(t *testing.T) {
	dir := filepath.Join("..", "cloudtrail", "testdata")
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(names) < 20 {
		t.Fatalf("fixtures: %v %v", names, err)
	}
	v, _ := cloudtrail.NewValidator(nil)
	logDir := t.TempDir()
	seen := map[string]bool{}
	for _, path := range names {
		name := filepath.Base(path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := v.Decide(b)
		acts := want.Outcome == cloudtrail.Act
		seen[want.Change.EventName] = seen[want.Change.EventName] || acts
		if want.Reason == cloudtrail.Undecodable {
			continue // no JSON value to read: TestUnreadableFile
		}

		// As an events file: put unchanged, or not at all.
		sink := &fakeSink{}
		st, err := Run(context.Background(), []string{path}, sink, Options{}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		recs := sink.records()
		if acts != (st.Put == 1 && len(recs) == 1) || st.Records != 1 {
			t.Errorf("%s as an event (%s %s): stats %+v", name, want.Outcome, want.Reason, st)
		}
		if got, w := counted(st), countFor(want); got != w {
			t.Errorf("%s as an event (%s %s): counted %s, want %s", name, want.Outcome, want.Reason, got, w)
		}
		if acts && (!bytes.Equal(recs[0].Data, bytes.TrimSpace(b)) || aws.ToString(recs[0].PartitionKey) != eventID(b) || st.PutByName[want.Change.EventName] != 1) {
			t.Errorf("%s: put %q with key %q, stats %+v", name, recs[0].Data, aws.ToString(recs[0].PartitionKey), st)
		}

		// Its CloudTrail record in a log file: wrapped again, decided the same.
		var env struct {
			DetailType string          `json:"detail-type"`
			Detail     json.RawMessage `json:"detail"`
		}
		if json.Unmarshal(b, &env) != nil || env.DetailType != "AWS API Call via CloudTrail" {
			continue
		}
		log := filepath.Join(logDir, name)
		os.WriteFile(log, []byte(`{"Records": [`+string(env.Detail)+`]}`), 0o644)
		sink = &fakeSink{}
		if st, err = Run(context.Background(), []string{log}, sink, Options{}, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if acts != (st.Put == 1) {
			t.Errorf("%s as a log record (%s %s): stats %+v", name, want.Outcome, want.Reason, st)
		}
		if got, w := counted(st), countFor(want); got != w {
			t.Errorf("%s as a log record (%s %s): counted %s, want %s", name, want.Outcome, want.Reason, got, w)
		}
		if acts {
			got := v.Decide(sink.records()[0].Data)
			got.Change.EventID, want.Change.EventID = "", ""
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: replayed record decided %+v, fixture %+v", name, got, want)
			}
		}
	}
	for _, n := range []string{"CreateResource", "UpdateResource", "PatchResource", "DeleteResource", "ProcessBundle",
		"EraseResource", cloudtrail.DetailTypeImportJobCompleted, cloudtrail.DetailTypeImportJobCompletedWithErrors} {
		if !seen[n] {
			t.Errorf("no fixture replayed with event name %q", n)
		}
	}
}

// An events file may hold many events, one per line, gzipped or not; an event the consumer
// rejects is counted, not put, and a broken line is an error naming the file.
func TestEventsFile(t *testing.T) {
	var lines []string
	for _, name := range []string{"import-completed.json", "reject-bad-job-id.json", "ignore-import-in-progress.json", "bundle-batch.json"} {
		b, err := os.ReadFile(filepath.Join("..", "cloudtrail", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		json.Compact(&buf, b)
		lines = append(lines, buf.String())
	}
	path := filepath.Join(t.TempDir(), "dlq.jsonl.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(strings.Join(lines, "\n") + "\n"))
	zw.Close()
	os.WriteFile(path, buf.Bytes(), 0o644)
	files, err := Files([]string{filepath.Dir(path)})
	if err != nil || len(files) != 1 {
		t.Fatalf("files %v: %v", files, err)
	}
	st, err := Run(context.Background(), files, &fakeSink{}, Options{
		From: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC), Datastores: []string{ds},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Files: 1, Records: 4, Put: 2, Ignored: 1, Malformed: 1,
		PutByName: map[string]int{cloudtrail.DetailTypeImportJobCompleted: 1, "ProcessBundle": 1}}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("stats %+v\nwant  %+v", st, want)
	}
	// Another allow-list: the consumer would reject them all.
	st, _ = Run(context.Background(), files, &fakeSink{}, Options{Datastores: []string{strings.Repeat("a", 32)}}, nil)
	if st.Put != 0 || st.Malformed != 3 {
		t.Errorf("other datastores: %+v", st)
	}
	broken := filepath.Join(t.TempDir(), "broken.jsonl")
	os.WriteFile(broken, []byte(lines[0]+"\n{\"id\": "), 0o644)
	if _, err := Run(context.Background(), []string{broken}, &fakeSink{}, Options{}, nil); err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("broken events file: %v", err)
	}
}

// countFor is the Stats counter a record with Decision d must land in: what the consumer does
// with it, in replay's words.
func countFor(d cloudtrail.Decision) string {
	switch {
	case d.Outcome == cloudtrail.Act:
		return "Put"
	case d.Outcome == cloudtrail.Skip && d.Reason == cloudtrail.FailedCall:
		return "Failed"
	case d.Outcome == cloudtrail.Skip:
		return "Ignored"
	case d.Outcome == cloudtrail.Reject:
		return "Malformed"
	}
	return "no outcome"
}

// counted names the one counter of st (a replay of one record, open range) that is 1.
func counted(st Stats) string {
	var names []string
	for name, n := range map[string]int{"Put": st.Put, "Failed": st.Failed, "Ignored": st.Ignored, "Malformed": st.Malformed, "OutOfRange": st.OutOfRange} {
		if n == 1 {
			names = append(names, name)
		} else if n != 0 {
			return fmt.Sprintf("%s=%d", name, n)
		}
	}
	slices.Sort(names)
	return strings.Join(names, "+")
}

package event_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const datastore = "0123456789abcdef0123456789abcdef"

var (
	lastUpdated = time.Date(2026, 3, 4, 5, 6, 7, 89_000_000, time.FixedZone("CET", 3600))
	from        = time.Date(2026, 3, 4, 4, 6, 0, 0, time.UTC)
	to          = time.Date(2026, 3, 4, 4, 6, 13, 0, time.UTC)
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func builder(t testing.TB, o event.Options) event.Builder {
	t.Helper()
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = "123456789012"
	}
	b, err := event.NewBuilder(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func change(action event.Operation, version string, resource string, ids ...string) event.Change {
	c := event.Change{
		DatastoreID: datastore, ResourceType: "Patient", ID: "pat-1", VersionID: version,
		LastUpdated: lastUpdated, Action: action,
		Trigger:     event.Trigger{EventIDs: ids, From: from, To: to},
		TraceParent: traceparent,
	}
	if resource != "" {
		c.Resource = json.RawMessage(resource)
	}
	return c
}

// patient has whitespace (compacted in the event) and characters json.Marshal would
// HTML-escape (kept as they are).
const patient = `{
  "resourceType": "Patient", "id": "pat-1",
  "meta": {"versionId": "1", "lastUpdated": "2026-03-04T04:06:07.089Z"},
  "name": [{"family": "Smith & <Jones>", "given": ["Zoë"]}]
}`

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("ct-%02d", i)
	}
	return out
}

// bigPatient is a valid Patient of about n bytes.
func bigPatient(n int) string {
	return `{"resourceType":"Patient","id":"pat-1","text":{"status":"generated","div":"` + strings.Repeat("a", n) + `"}}`
}

// golden renders an entry for comparison: its fields, its EntrySize, and Detail as JSON.
func golden(t *testing.T, e types.PutEventsRequestEntry) []byte {
	t.Helper()
	var tm string
	if e.Time != nil {
		tm = e.Time.Format(time.RFC3339Nano)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // show the detail's bytes as they are
	err := enc.Encode(struct {
		Source, DetailType, EventBusName string
		Resources                        []string
		Time                             string
		EntrySize                        int
		Detail                           json.RawMessage
	}{aws.ToString(e.Source), aws.ToString(e.DetailType), aws.ToString(e.EventBusName), e.Resources, tm,
		bus.EntrySize(e), json.RawMessage(aws.ToString(e.Detail))})
	if err != nil {
		t.Fatalf("entry does not render: %v", err)
	}
	return out.Bytes()
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

func TestEntryGolden(t *testing.T) {
	full := builder(t, event.Options{BusName: "healthlake-cdc"})
	idOnly := builder(t, event.Options{BusName: "healthlake-cdc", Content: event.IDOnly})
	for _, tc := range []struct {
		name string
		b    event.Builder
		c    event.Change
	}{
		{"create", full, change(event.Create, "1", patient, "ct-a", "ct-b")},
		{"update", full, change(event.Update, "2", patient, ids(12)...)},
		{"delete", full, change(event.Delete, "3", "", "ct-del")},
		{"id-only", idOnly, change(event.Update, "2", patient, "ct-a")},
		{"size-omitted", full, change(event.Update, "4", bigPatient(300*1024), "ct-a")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := tc.b.Entry(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid([]byte(aws.ToString(e.Detail))) {
				t.Fatalf("Detail is not JSON: %s", aws.ToString(e.Detail))
			}
			if n := bus.EntrySize(e); n > bus.MaxRequestBytes {
				t.Errorf("entry is %d bytes, over the PutEvents limit", n)
			}
			checkGolden(t, tc.name, golden(t, e))
		})
	}
}

func TestResourceIsEmbeddedAsJSON(t *testing.T) {
	e, err := builder(t, event.Options{}).Entry(change(event.Create, "1", patient))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Resource map[string]any
	}
	if err := json.Unmarshal([]byte(*e.Detail), &d); err != nil {
		t.Fatalf("resource is not an object in the detail: %v", err)
	}
	if d.Resource["resourceType"] != "Patient" {
		t.Errorf("resource = %v", d.Resource)
	}
	// Bytes kept as sent (no \u0026 for &), whitespace compacted.
	if !strings.Contains(*e.Detail, `"family":"Smith & <Jones>"`) {
		t.Errorf("resource bytes changed: %s", *e.Detail)
	}
}

// The resource stays up to the limit and goes one byte past it.
func TestSizeLimitBoundary(t *testing.T) {
	b := builder(t, event.Options{})
	base, err := b.Entry(change(event.Update, "2", bigPatient(0)))
	if err != nil {
		t.Fatal(err)
	}
	fill := bus.MaxRequestBytes - bus.EntrySize(base) // bytes of padding that reach the limit
	for _, tc := range []struct {
		pad      int
		embedded bool
	}{{fill, true}, {fill + 1, false}} {
		e, err := b.Entry(change(event.Update, "2", bigPatient(tc.pad)))
		if err != nil {
			t.Fatal(err)
		}
		embedded := strings.Contains(*e.Detail, `"resource":`)
		if embedded != tc.embedded {
			t.Errorf("pad %d (entry %d bytes with it): embedded=%v, want %v", tc.pad, bus.EntrySize(base)+tc.pad, embedded, tc.embedded)
		}
		if !embedded && !strings.Contains(*e.Detail, `"contentOmitted":"size"`) {
			t.Errorf("pad %d: no contentOmitted size: %.300s", tc.pad, *e.Detail)
		}
	}
}

func TestTriggerIsBounded(t *testing.T) {
	b := builder(t, event.Options{})
	for _, tc := range []struct {
		n       int
		wantIDs int
	}{{0, 0}, {1, 1}, {10, 10}, {11, 10}, {10000, 10}} {
		e, err := b.Entry(change(event.Update, "2", patient, ids(tc.n)...))
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Trigger struct {
				EventIDs   []string `json:"eventIds"`
				EventCount int      `json:"eventCount"`
				From, To   string
			}
		}
		if err := json.Unmarshal([]byte(*e.Detail), &d); err != nil {
			t.Fatal(err)
		}
		if d.Trigger.EventIDs == nil || len(d.Trigger.EventIDs) != tc.wantIDs || d.Trigger.EventCount != tc.n {
			t.Errorf("%d events: ids %v count %d; want %d ids (first ones), count %d", tc.n, d.Trigger.EventIDs, d.Trigger.EventCount, tc.wantIDs, tc.n)
		}
		if tc.n > 0 && d.Trigger.EventIDs[0] != "ct-00" {
			t.Errorf("%d events: ids start with %s, want the first", tc.n, d.Trigger.EventIDs[0])
		}
		if d.Trigger.From != "2026-03-04T04:06:00.000Z" || d.Trigger.To != "2026-03-04T04:06:13.000Z" {
			t.Errorf("range %s – %s", d.Trigger.From, d.Trigger.To)
		}
	}
}

func TestDatastoreARN(t *testing.T) {
	for _, tc := range []struct{ region, want string }{
		{"us-east-1", "arn:aws:healthlake:us-east-1:123456789012:datastore/fhir/" + datastore},
		{"eu-west-2", "arn:aws:healthlake:eu-west-2:123456789012:datastore/fhir/" + datastore},
		{"us-gov-west-1", "arn:aws-us-gov:healthlake:us-gov-west-1:123456789012:datastore/fhir/" + datastore},
		{"cn-north-1", "arn:aws-cn:healthlake:cn-north-1:123456789012:datastore/fhir/" + datastore},
	} {
		b := builder(t, event.Options{Region: tc.region})
		if got := event.DatastoreARN(tc.region, "123456789012", datastore); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.region, got, tc.want)
		}
		e, err := b.Entry(change(event.Create, "1", patient))
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Resources) != 1 || e.Resources[0] != tc.want {
			t.Errorf("%s: Resources %v", tc.region, e.Resources)
		}
	}
}

// TestEntryRegionAccountFromChange: the change's own region and account (from its CloudTrail
// records) win over the Builder's, and an entry with neither is refused.
func TestEntryRegionAccountFromChange(t *testing.T) {
	c := change(event.Create, "1", patient)
	c.Region, c.Account = "eu-west-1", "210987654321"
	e, err := builder(t, event.Options{}).Entry(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:healthlake:eu-west-1:210987654321:datastore/fhir/" + datastore; e.Resources[0] != want {
		t.Fatalf("Resources %v, want %s", e.Resources, want)
	}
	bare, err := event.NewBuilder(event.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bare.Entry(change(event.Create, "1", patient)); err == nil {
		t.Fatal("entry without region and account: want an error")
	}
}

func TestEntryDefaults(t *testing.T) {
	e, err := builder(t, event.Options{}).Entry(change(event.Create, "1", patient))
	if err != nil {
		t.Fatal(err)
	}
	if *e.Source != "healthlake.cdc" || e.EventBusName != nil || e.TraceHeader != nil {
		t.Errorf("Source %q, EventBusName %v, TraceHeader %v; want healthlake.cdc, default bus, none", *e.Source, e.EventBusName, e.TraceHeader)
	}
	if !e.Time.Equal(lastUpdated) || e.Time.Location() != time.UTC {
		t.Errorf("Time %v, want %v in UTC", e.Time, lastUpdated)
	}
	e, err = builder(t, event.Options{Source: "my.cdc", BusName: "arn:aws:events:us-east-1:123456789012:event-bus/cdc"}).Entry(change(event.Create, "1", patient))
	if err != nil {
		t.Fatal(err)
	}
	if *e.Source != "my.cdc" || *e.EventBusName != "arn:aws:events:us-east-1:123456789012:event-bus/cdc" {
		t.Errorf("Source %q, EventBusName %q", *e.Source, *e.EventBusName)
	}
}

func TestEntryErrors(t *testing.T) {
	b := builder(t, event.Options{})
	good := change(event.Update, "2", patient)
	for name, mutate := range map[string]func(*event.Change){
		"no id":                 func(c *event.Change) { c.ID = "" },
		"no versionId":          func(c *event.Change) { c.VersionID = "" },
		"no datastore":          func(c *event.Change) { c.DatastoreID = "" },
		"no resourceType":       func(c *event.Change) { c.ResourceType = "" },
		"no lastUpdated":        func(c *event.Change) { c.LastUpdated = time.Time{} },
		"no resource":           func(c *event.Change) { c.Resource = nil },
		"resource not JSON":     func(c *event.Change) { c.Resource = json.RawMessage(`{"id":`) },
		"unknown action":        func(c *event.Change) { c.Action = "upsert" },
		"no action":             func(c *event.Change) { c.Action = "" },
		"mixed is no action":    func(c *event.Change) { c.Action = event.Mixed },
		"import is no action":   func(c *event.Change) { c.Action = event.Import },
		"whitespace resource":   func(c *event.Change) { c.Resource = json.RawMessage("  ") },
		"resource two values":   func(c *event.Change) { c.Resource = json.RawMessage(`{} {}`) },
		"resource not finished": func(c *event.Change) { c.Resource = json.RawMessage(`{"a":[1,2}`) },
	} {
		c := good
		mutate(&c)
		if e, err := b.Entry(c); err == nil {
			t.Errorf("%s: no error; entry %s", name, aws.ToString(e.Detail))
		}
	}
	// What a delete and an id-only change may leave out.
	del := change(event.Delete, "3", "")
	if _, err := b.Entry(del); err != nil {
		t.Errorf("delete without resource: %v", err)
	}
	del.VersionID = ""
	if e, err := b.Entry(del); err != nil || !strings.Contains(*e.Detail, `"versionId":""`) {
		t.Errorf("delete without version: %v", err)
	}
	noRes := good
	noRes.Resource = nil
	if _, err := builder(t, event.Options{Content: event.IDOnly}).Entry(noRes); err != nil {
		t.Errorf("id-only without resource: %v", err)
	}
	if _, err := (event.Builder{}).Entry(good); err == nil {
		t.Error("zero Builder: no error")
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		o  event.Options
		ok bool
	}{
		{event.Options{Region: "us-east-1", Account: "123456789012"}, true},
		{event.Options{Region: "us-east-1", Account: "123456789012", Content: event.IDOnly}, true},
		{event.Options{Region: "us-east-1", Account: "123456789012", Content: "full-resource"}, true},
		{event.Options{Region: "us-east-1", Account: "123456789012", Content: "none"}, false},
		{event.Options{Account: "123456789012"}, true}, // region may come with each change
		{event.Options{}, true},
		{event.Options{Region: "us-east-1:x", Account: "123456789012"}, false},
		{event.Options{Region: "us-east-1", Account: "12345678901"}, false},
		{event.Options{Region: "us-east-1", Account: "12345678901x"}, false},
	} {
		if _, err := event.NewBuilder(tc.o); (err == nil) != tc.ok {
			t.Errorf("%+v: err %v, want ok=%v", tc.o, err, tc.ok)
		}
	}
}

func TestRejected(t *testing.T) {
	b := builder(t, event.Options{BusName: "healthlake-cdc"})
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	e := b.Rejected("bad-datastore-id", "detail.requestParameters.datastoreId is not 32 lower-case hex",
		"shardId-000000000001", "49650000000000000000000000000000000000000000000000000001", at)
	want := `{"reason":"bad-datastore-id","detail":"detail.requestParameters.datastoreId is not 32 lower-case hex","shardId":"shardId-000000000001","sequenceNumber":"49650000000000000000000000000000000000000000000000000001"}`
	if *e.Detail != want {
		t.Errorf("Detail\n got %s\nwant %s", *e.Detail, want)
	}
	if *e.DetailType != "HealthLake CDC Record Rejected" || *e.Source != "healthlake.cdc" ||
		*e.EventBusName != "healthlake-cdc" || !e.Time.Equal(at) || len(e.Resources) != 0 {
		t.Errorf("entry %+v", e)
	}

	long := strings.Repeat("é", 1000) // 2000 bytes
	e = b.Rejected("undecodable", long, "s", "1", at)
	var d struct{ Detail string }
	if err := json.Unmarshal([]byte(*e.Detail), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Detail) != event.MaxRejectedDetailBytes || !strings.HasPrefix(long, d.Detail) {
		t.Errorf("detail cut to %d bytes, want %d on a rune boundary", len(d.Detail), event.MaxRejectedDetailBytes)
	}
	e = b.Rejected("undecodable", "x"+long, "s", "1", time.Time{})
	if err := json.Unmarshal([]byte(*e.Detail), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Detail) != event.MaxRejectedDetailBytes-1 || e.Time != nil {
		t.Errorf("odd cut: %d bytes (want %d, no split rune), Time %v", len(d.Detail), event.MaxRejectedDetailBytes-1, e.Time)
	}
}

// BenchmarkEntry builds the event of a 2 KB resource.
func BenchmarkEntry(b *testing.B) {
	bld := builder(b, event.Options{})
	c := change(event.Update, "2", bigPatient(2048), ids(3)...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bld.Entry(c); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRangeFailed(t *testing.T) {
	b, err := event.NewBuilder(event.Options{Source: "healthlake.cdc", BusName: "bus"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 9, 20, 0, 0, time.UTC)
	e := b.RangeFailed(event.RangeFailed{
		DatastoreID: "095d2262da454bb7347488c930e009eb", ResourceType: "Observation",
		From: "2026-11-20T09:15:01Z", To: "2026-11-20T09:16:01Z", Reason: "forbidden",
		Detail: strings.Repeat("x", 5000), Attempts: 5,
	}, at)
	if *e.DetailType != event.DetailTypeRangeFailed || *e.Source != "healthlake.cdc" || *e.EventBusName != "bus" || !e.Time.Equal(at) {
		t.Fatalf("entry %+v", e)
	}
	var d event.RangeFailed
	if err := json.Unmarshal([]byte(*e.Detail), &d); err != nil {
		t.Fatal(err)
	}
	if d.Reason != "forbidden" || d.Attempts != 5 || d.From != "2026-11-20T09:15:01Z" || len(d.Detail) != event.MaxRejectedDetailBytes {
		t.Errorf("detail %+v (detail text %d bytes)", d, len(d.Detail))
	}
}

// Timestamp keeps milliseconds even when they are zero (time.Time's encoding would drop them),
// writes UTC, and reads back what it wrote; "" is the zero time both ways.
func TestTimestampJSON(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600))
	b, err := json.Marshal(event.Timestamp{Time: at})
	if err != nil || string(b) != `"2026-03-04T04:06:07.000Z"` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var back event.Timestamp
	if err := json.Unmarshal(b, &back); err != nil || !back.Equal(at) {
		t.Fatalf("unmarshal %s: %v %v", b, back, err)
	}
	if b, _ := json.Marshal(event.Timestamp{}); string(b) != `""` {
		t.Errorf("zero time: %s, want \"\"", b)
	}
	back = event.Timestamp{Time: at}
	if err := json.Unmarshal([]byte(`""`), &back); err != nil || !back.IsZero() {
		t.Errorf(`"" decodes to %v %v, want the zero time`, back, err)
	}
	if err := json.Unmarshal([]byte(`"yesterday"`), &back); err == nil {
		t.Error(`"yesterday" decoded without an error`)
	}
}

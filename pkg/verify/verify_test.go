package verify

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/recorded"
)

const (
	dsA = "0123456789abcdef0123456789abcdef"
	dsB = "fedcba9876543210fedcba9876543210"
)

var t0 = time.Date(2026, 11, 20, 9, 15, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func manifest(ws ...Write) string {
	var b strings.Builder
	for _, w := range ws {
		line, _ := json.Marshal(w)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func write(op event.Operation, ds, typ, id, vid string, lastUpdated time.Time) Write {
	return Write{DatastoreID: ds, ResourceType: typ, ID: id, VersionID: vid, LastUpdated: lastUpdated, Operation: op, EventID: "ev-" + id}
}

// ev is one recorder line; detail fields follow the output contract.
type ev struct {
	source, action, ds, typ, id, vid string
	lastUpdated, received            time.Time
}

func events(es ...ev) string {
	var b strings.Builder
	for _, e := range es {
		src := e.source
		if src == "" {
			src = DefaultSource
		}
		dt := map[string]string{"create": event.DetailTypeCreated, "update": event.DetailTypeUpdated, "delete": event.DetailTypeDeleted}[e.action]
		detail, _ := json.Marshal(event.ChangeDetail{
			DatastoreID: e.ds, ResourceType: e.typ, ID: e.id, VersionID: e.vid,
			LastUpdated: event.Timestamp{Time: e.lastUpdated}, Action: event.Operation(e.action),
			Resource: json.RawMessage(fmt.Sprintf(`{"resourceType":%q,"id":%q}`, e.typ, e.id)),
			Trigger:  event.TriggerDetail{EventIDs: []string{}},
		})
		line, _ := json.Marshal(recorded.Line{
			Received: e.received, EventID: "eb-1", EventBusName: "bus",
			Source: src, DetailType: dt, Time: e.lastUpdated, Resources: []string{}, Detail: detail,
		})
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func rejectedLine(source, reason string) string {
	detail, _ := json.Marshal(event.Rejected{Reason: reason, Detail: "x", ShardID: "shardId-000000000000", SequenceNumber: "1"})
	line, _ := json.Marshal(recorded.Line{Received: t0, Source: source, DetailType: event.DetailTypeRejected, Resources: []string{}, Detail: detail})
	return string(line) + "\n"
}

func run(t *testing.T, m, e string, o Options) Report {
	t.Helper()
	r, err := Verify(strings.NewReader(m), strings.NewReader(e), o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMissingWrite(t *testing.T) {
	m := manifest(
		write("create", dsA, "Patient", "p1", "v1", at(100)),
		write("create", dsA, "Patient", "p2", "v1", at(200)),
	)
	e := events(ev{action: "create", ds: dsA, typ: "Patient", id: "p1", vid: "v1", lastUpdated: at(100), received: at(1100)})
	r := run(t, m, e, Options{})
	if r.Writes != 2 || r.ResourcesChanged != 2 || r.EventsEmitted != 1 || r.Missing != 1 || r.OK() {
		t.Fatalf("report %+v", r)
	}
	want := Example{DatastoreID: dsA, ResourceType: "Patient", ID: "p2", VersionID: "v1", Operation: "create", LastUpdated: at(200), Why: "no event for this resource"}
	if len(r.MissingExamples) != 1 || r.MissingExamples[0] != want {
		t.Errorf("examples %+v, want %+v", r.MissingExamples, want)
	}
}

func TestEventForAnOlderVersionDoesNotCover(t *testing.T) {
	m := manifest(
		write("create", dsA, "Observation", "o1", "v1", at(100)),
		write("update", dsA, "Observation", "o1", "v2", at(300)),
	)
	e := events(ev{action: "create", ds: dsA, typ: "Observation", id: "o1", vid: "v1", lastUpdated: at(100), received: at(500)})
	r := run(t, m, e, Options{})
	if r.Missing != 1 || r.MissingExamples[0].VersionID != "v2" {
		t.Fatalf("report %+v", r)
	}
	if got := r.MissingExamples[0].Why; !strings.Contains(got, "before this write") {
		t.Errorf("why = %q", got)
	}
}

func TestCoveredByLaterVersion(t *testing.T) {
	// Three quick updates; the consumer's search saw only the last version.
	m := manifest(
		write("create", dsA, "Observation", "o1", "v1", at(100)),
		write("update", dsA, "Observation", "o1", "v2", at(200)),
		write("update", dsA, "Observation", "o1", "v3", at(300)),
	)
	e := events(ev{action: "update", ds: dsA, typ: "Observation", id: "o1", vid: "v3", lastUpdated: at(300), received: at(2300)})
	r := run(t, m, e, Options{})
	if r.Missing != 0 || !r.OK() || r.ResourcesChanged != 1 {
		t.Fatalf("report %+v", r)
	}
	// Latency from each write to the one event: 2.2s, 2.1s, 2.0s.
	want := Latency{Count: 3, P50: 2100 * time.Millisecond, P95: 2200 * time.Millisecond, P99: 2200 * time.Millisecond, Max: 2200 * time.Millisecond}
	if r.Latency != want {
		t.Errorf("latency %+v, want %+v", r.Latency, want)
	}
}

func TestLatencyFromFirstCoveringEvent(t *testing.T) {
	m := manifest(write("create", dsA, "Patient", "p1", "v1", at(0)))
	e := events(
		// A re-emission received later, written first in the file.
		ev{action: "update", ds: dsA, typ: "Patient", id: "p1", vid: "v2", lastUpdated: at(5000), received: at(9000)},
		ev{action: "create", ds: dsA, typ: "Patient", id: "p1", vid: "v1", lastUpdated: at(0), received: at(1500)},
	)
	r := run(t, m, e, Options{})
	if r.Latency.Count != 1 || r.Latency.Max != 1500*time.Millisecond {
		t.Errorf("latency %+v, want 1.5s", r.Latency)
	}
}

func TestDuplicate(t *testing.T) {
	m := manifest(write("create", dsA, "Patient", "p1", "v1", at(100)))
	one := ev{action: "create", ds: dsA, typ: "Patient", id: "p1", vid: "v1", lastUpdated: at(100), received: at(900)}
	again := one
	again.received = at(1900)
	other := one
	other.action, other.vid = "update", "v2" // another version: no duplicate
	r := run(t, m, events(one, again, again, other), Options{})
	if r.Duplicates != 2 || r.EventsEmitted != 4 || r.Missing != 0 {
		t.Fatalf("report %+v", r)
	}
}

func TestDeletes(t *testing.T) {
	m := manifest(
		write("create", dsA, "Encounter", "e1", "v1", at(100)),
		write("delete", dsA, "Encounter", "e1", "", at(400)),
		write("create", dsA, "Encounter", "e2", "v1", at(500)),
		write("delete", dsA, "Encounter", "e2", "", at(600)),
	)
	// e1: the create was never announced (the resource was gone before the search), but
	// its delete was: both covered. e2: announced create, unannounced delete.
	e := events(
		ev{action: "delete", ds: dsA, typ: "Encounter", id: "e1", lastUpdated: at(399), received: at(3000)},
		ev{action: "create", ds: dsA, typ: "Encounter", id: "e2", vid: "v1", lastUpdated: at(500), received: at(1000)},
	)
	r := run(t, m, e, Options{})
	if r.Deletes != 2 || r.DeletesAnnounced != 1 || r.Missing != 0 {
		t.Fatalf("without ExpectDeletes: %+v", r)
	}
	if r.Latency.Count != 3 { // e1 create, e1 delete, e2 create
		t.Errorf("latency count %d, want 3", r.Latency.Count)
	}
	r = run(t, m, e, Options{ExpectDeletes: true})
	if r.Missing != 1 || r.MissingExamples[0].ID != "e2" || r.MissingExamples[0].Operation != "delete" {
		t.Fatalf("with ExpectDeletes: %+v", r)
	}
	if got := r.MissingExamples[0].Why; got != "no delete event for this resource" {
		t.Errorf("why = %q", got)
	}
}

func TestFilters(t *testing.T) {
	m := manifest(write("create", dsA, "Patient", "p1", "v1", at(100)))
	e := events(
		ev{source: "someone.else", action: "create", ds: dsA, typ: "Patient", id: "p1", vid: "v1", lastUpdated: at(100), received: at(200)},
		ev{action: "create", ds: dsB, typ: "Patient", id: "p9", vid: "v1", lastUpdated: at(100), received: at(200)},
		ev{action: "create", ds: dsA, typ: "Patient", id: "p8", vid: "v1", lastUpdated: at(100), received: at(200)},
	) + rejectedLine(DefaultSource, "undecodable") + rejectedLine(DefaultSource, "undecodable") +
		rejectedLine(DefaultSource, "bad-datastore-id") + rejectedLine("someone.else", "undecodable") +
		"not json\n" + `{"received":"2026-11-20T09:15:00Z","source":"healthlake.cdc","detailType":"FHIR Resource Created","detail":{"id":` + "\n"

	r := run(t, m, e, Options{})
	if r.Missing != 1 { // the other source's event does not count
		t.Errorf("missing %d, want 1", r.Missing)
	}
	if r.EventsEmitted != 2 || r.EventsForeign != 2 {
		t.Errorf("emitted %d foreign %d, want 2 and 2", r.EventsEmitted, r.EventsForeign)
	}
	if want := map[string]int{"undecodable": 2, "bad-datastore-id": 1}; fmt.Sprint(r.Rejected) != fmt.Sprint(want) {
		t.Errorf("rejected %v, want %v", r.Rejected, want)
	}
	if r.BadEventLines != 2 {
		t.Errorf("bad lines %d, want 2", r.BadEventLines)
	}

	r = run(t, m, e, Options{ManifestDatastoresOnly: true})
	if r.EventsEmitted != 1 || r.EventsForeign != 1 {
		t.Errorf("only manifest datastores: emitted %d foreign %d, want 1 and 1", r.EventsEmitted, r.EventsForeign)
	}

	r = run(t, m, e, Options{Source: "someone.else"})
	if r.Missing != 0 || r.Rejected["undecodable"] != 1 {
		t.Errorf("source someone.else: %+v", r)
	}
}

func TestMaxExamples(t *testing.T) {
	var ws []Write
	for i := range 20 {
		ws = append(ws, write("create", dsA, "Patient", fmt.Sprint("p", i), "v1", at(i)))
	}
	r := run(t, manifest(ws...), "", Options{MaxExamples: 3})
	if r.Missing != 20 || len(r.MissingExamples) != 3 {
		t.Errorf("missing %d examples %d, want 20 and 3", r.Missing, len(r.MissingExamples))
	}
	if r = run(t, manifest(ws...), "", Options{}); len(r.MissingExamples) != DefaultMaxExamples {
		t.Errorf("default examples %d", len(r.MissingExamples))
	}
}

func TestBadManifest(t *testing.T) {
	for name, m := range map[string]string{
		"not json":       "{\n",
		"no id":          `{"datastoreId":"` + dsA + `","resourceType":"Patient","lastUpdated":"2026-11-20T09:15:00Z","operation":"create"}` + "\n",
		"bad operation":  `{"datastoreId":"` + dsA + `","resourceType":"Patient","id":"p","lastUpdated":"2026-11-20T09:15:00Z","operation":"patch"}` + "\n",
		"no lastUpdated": `{"datastoreId":"` + dsA + `","resourceType":"Patient","id":"p","operation":"create"}` + "\n",
	} {
		if _, err := Verify(strings.NewReader(m), strings.NewReader(""), Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPercentileNearestRank(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var ds []time.Duration
		for _, v := range vs {
			ds = append(ds, time.Duration(v)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		values []time.Duration
		p      int
		want   time.Duration
	}{
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 95, 95 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
		{ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 50, 50 * time.Millisecond},  // rank ceil(5) = 5
		{ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 95, 100 * time.Millisecond}, // rank ceil(9.5) = 10
		{ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 1, 10 * time.Millisecond},   // rank ceil(0.1) = 1
		{ms(15, 20, 35, 40, 50), 30, 20 * time.Millisecond},                       // the classic example: rank ceil(1.5) = 2
		{ms(15, 20, 35, 40, 50), 40, 20 * time.Millisecond},                       // rank 2 exactly
		{ms(15, 20, 35, 40, 50), 50, 35 * time.Millisecond},                       // rank ceil(2.5) = 3
		{ms(7), 99, 7 * time.Millisecond},
		{nil, 50, 0},
	} {
		if got := Percentile(tc.values, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %d) = %v, want %v", tc.values, tc.p, got, tc.want)
		}
	}

	// Summarize sorts a copy.
	in := ms(300, 100, 200, 400)
	got := Summarize(in)
	want := Latency{Count: 4, P50: 200 * time.Millisecond, P95: 400 * time.Millisecond, P99: 400 * time.Millisecond, Max: 400 * time.Millisecond}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if in[0] != 300*time.Millisecond {
		t.Error("Summarize modified its input")
	}
}

func TestReportJSONAndTable(t *testing.T) {
	m := manifest(
		write("create", dsA, "Patient", "p1", "v1", at(0)),
		write("create", dsA, "Patient", "p2", "v1", at(0)),
		write("delete", dsA, "Patient", "p1", "", at(10)),
	)
	e := events(ev{action: "create", ds: dsA, typ: "Patient", id: "p1", vid: "v1", lastUpdated: at(0), received: at(1234)}) +
		rejectedLine(DefaultSource, "undecodable")
	r := run(t, m, e, Options{})

	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back["missing"] != 1.0 || back["latency"].(map[string]any)["p50Ms"] != 1234.0 {
		t.Errorf("json %s", b)
	}

	table := r.Table()
	for _, want := range []string{
		"writes                   3\n",
		"deletes                  1 (0 announced)\n",
		"missing                  1\n",
		"rejected                 1 (undecodable 1)\n",
		"latency p50/p95/p99/max  1.234s / 1.234s / 1.234s / 1.234s\n",
		"missing: " + dsA + " Patient/p2 (create, lastUpdated 2026-11-20T09:15:00Z): no event for this resource\n",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "resourceType") {
		t.Error("table shows a resource body")
	}
}

func ExampleReport_Table() {
	m := `{"datastoreId":"0123456789abcdef0123456789abcdef","resourceType":"Patient","id":"p1","versionId":"1","lastUpdated":"2026-11-20T09:15:00.000Z","operation":"create","eventId":"e1"}`
	e := `{"received":"2026-11-20T09:15:02.500Z","source":"healthlake.cdc","detailType":"FHIR Resource Created","detail":{"datastoreId":"0123456789abcdef0123456789abcdef","resourceType":"Patient","id":"p1","versionId":"1","lastUpdated":"2026-11-20T09:15:00.000Z","action":"create"}}`
	r, err := Verify(strings.NewReader(m), strings.NewReader(e), Options{})
	if err != nil {
		panic(err)
	}
	fmt.Print(r.Table())
	// Output:
	// writes                   1
	// resources changed        1
	// deletes                  0 (0 announced)
	// events emitted           1
	// missing                  0
	// duplicates               0
	// rejected                 0
	// latency p50/p95/p99/max  2.5s / 2.5s / 2.5s / 2.5s
}

// Bundle entries, imports, patches and writes whose hint was dropped are verified like any
// write and reported apart, so a run shows which path lost changes.
func TestNewManifestEntries(t *testing.T) {
	const ds = "0123456789abcdef0123456789abcdef"
	line := func(id, via, method, dropped string) string {
		return `{"datastoreId":"` + ds + `","resourceType":"Patient","id":"` + id + `","versionId":"1","lastUpdated":"2026-11-20T09:15:00Z","operation":"create","via":"` +
			via + `","method":"` + method + `","bundle":1,"jobId":"","hintDropped":"` + dropped + `"}` + "\n"
	}
	manifest := line("a", "batch", "POST", "") + line("b", "batch", "PATCH", "gap") + line("c", "import", "", "") +
		line("d", "rest", "PATCH", "random") + line("e", "transaction", "PUT", "") +
		`{"datastoreId":"` + ds + `","resourceType":"Patient","id":"f","versionId":"1","lastUpdated":"2026-11-20T09:15:00Z","operation":"create"}` + "\n"
	events := `{"received":"2026-11-20T09:15:03Z","source":"healthlake.cdc","detailType":"FHIR Resource Created","detail":{"datastoreId":"` + ds +
		`","resourceType":"Patient","id":"a","versionId":"1","lastUpdated":"2026-11-20T09:15:00Z","action":"create"}}` + "\n"
	rep, err := Verify(strings.NewReader(manifest), strings.NewReader(events), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Missing != 5 || rep.HintsDropped != 2 || rep.MissingHintDropped != 2 || rep.MissingWithHint != 3 || rep.MissingPatches != 2 ||
		!reflect.DeepEqual(rep.ByVia, map[string]int{"batch": 2, "import": 1, "rest": 2, "transaction": 1}) ||
		!reflect.DeepEqual(rep.MissingByVia, map[string]int{"batch": 1, "import": 1, "rest": 2, "transaction": 1}) {
		t.Errorf("report %+v", rep)
	}
	table := rep.Table()
	for _, want := range []string{
		"written via              rest 2, batch 2, transaction 1, import 1\n",
		"hints dropped            2 (2 of their writes missing)\n",
		"missing                  5 (rest 2, batch 1, transaction 1, import 1; 2 patches; 3 with their hint, 2 with it dropped)\n",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if _, err := Verify(strings.NewReader(line("x", "fax", "", "")), strings.NewReader(""), Options{}); err == nil || !strings.Contains(err.Error(), `via "fax"`) {
		t.Errorf("unknown via: %v", err)
	}
}

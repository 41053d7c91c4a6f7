package cloudtrail

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

const (
	storeA = "095d2262da454bb7347488c930e009eb"
	storeB = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustValidator(t testing.TB, allow ...string) *Validator {
	t.Helper()
	v, err := NewValidator(allow)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDecideFixtures decides every file in testdata; a new fixture without an expectation
// fails the test, so none goes untested.
func TestDecideFixtures(t *testing.T) {
	at := func(s string) time.Time {
		return time.Date(2026, 11, 20, 9, 15, 0, 0, time.UTC).Add(mustDuration(t, s))
	}
	ct := func(eventID, typ string, op event.Operation, offset, name string) Decision {
		c := Change{
			EventID: eventID, DatastoreID: storeA, ResourceType: typ, Operation: op, EventTime: at(offset),
			Region: "us-west-2", Account: "123456789012", EventName: name,
		}
		c.AllTypes = op == event.Mixed
		return Decision{Outcome: Act, Change: c}
	}
	imp := func(eventID, offset, name, job, status string) Decision {
		return Decision{Outcome: Act, Change: Change{
			EventID: eventID, DatastoreID: storeA, Operation: event.Import, EventTime: at(offset),
			Region: "us-west-2", Account: "123456789012", EventName: name, AllTypes: true,
			JobID: job, JobStatus: status, JobSubmitTime: time.Date(2026, 11, 20, 8, 50, 50, 986e6, time.UTC),
		}}
	}
	unknown := ct("9c0d1e2f-3a4b-4c5d-a6e7-f8a9b0c1d2e3", "", event.Mixed, "9s", "EraseResource")
	unknown.Change.Unrecognised = true
	want := map[string]Decision{
		"create-patient.json":              ct("31feacd9-6646-4c4f-934b-83b0f6cf6188", "Patient", event.Create, "2s", "CreateResource"),
		"update-observation.json":          ct("8d1f0c55-2b0e-4a8e-9d7e-3f5c2a1b9e01", "Observation", event.Update, "3s", "UpdateResource"),
		"delete-encounter.json":            ct("1b2c3d4e-5f60-4718-9a0b-c1d2e3f40516", "Encounter", event.Delete, "4s", "DeleteResource"),
		"patch-observation.json":           ct("7c0e2a41-9b3d-4f6e-8a15-2d4c6b8e0f13", "Observation", event.Update, "5s", "PatchResource"),
		"bundle-batch.json":                ct("5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "", event.Mixed, "6s", "ProcessBundle"),
		"create-bundle-type.json":          ct("6f7a8b9c-0d1e-4f2a-b3c4-d5e6f7a8b9c0", "Bundle", event.Mixed, "7s", "CreateResource"),
		"update-conditional.json":          ct("8b9c0d1e-2f3a-4b4c-95d6-e7f8a9b0c1d2", "Patient", event.Update, "8s", "UpdateResource"),
		"update-without-resourcetype.json": ct("44bb55cc-66dd-47ee-88ff-99aabbccddee", "", event.Mixed, "10s", "UpdateResource"),
		"unknown-write.json":               unknown,
		"bulk-delete-observation.json":     ct("2c3d4e5f-6071-4829-ab1c-d2e3f4051627", "Observation", event.BulkDelete, "11s", "StartFHIRBulkDeleteJob"),
		"import-completed.json": imp("36c865ef-da41-76ef-c882-3ba8dad8656b", "-18s", DetailTypeImportJobCompleted,
			"08c60716d6321710893ff88410e902c2", JobStatusCompleted),
		"import-completed-with-errors.json": imp("b61387d7-bffe-4f01-8291-65dc4be52cc1", "-17s", DetailTypeImportJobCompletedWithErrors,
			"c145fbb27b192af392f8ce6e7838e34f", JobStatusCompletedWithErrors),
		"ignore-failed-create.json":      {Outcome: Skip, Reason: FailedCall},
		"ignore-read.json":               {Outcome: Skip, Reason: NotAMutation},
		"ignore-search.json":             {Outcome: Skip, Reason: NotAMutation},
		"ignore-management-call.json":    {Outcome: Skip, Reason: NotAMutation},
		"ignore-import-in-progress.json": {Outcome: Skip, Reason: NotAMutation},
		"ignore-export-completed.json":   {Outcome: Skip, Reason: NotAMutation},
		"ignore-unknown-event-type.json": {Outcome: Skip, Reason: UnknownEventType},
		"reject-bad-datastore.json":      {Outcome: Reject, Reason: BadDatastoreID},
		"reject-bad-resourcetype.json":   {Outcome: Reject, Reason: BadResourceType},
		"reject-bad-job-id.json":         {Outcome: Reject, Reason: BadJobID},
		"reject-missing-datastore.json":  {Outcome: Reject, Reason: MissingField},
		"not-json.bin":                   {Outcome: Reject, Reason: Undecodable},
		"truncated.json":                 {Outcome: Reject, Reason: Undecodable},
	}
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	v := mustValidator(t)
	seen := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || name == "README.md" || name == "burst-50.jsonl" { // burst: TestDecideBurst
			continue
		}
		seen++
		t.Run(name, func(t *testing.T) {
			w, ok := want[name]
			if !ok {
				t.Fatalf("no expectation for testdata/%s", name)
			}
			got := v.Decide(readTestdata(t, name))
			if got.Outcome != w.Outcome || got.Reason != w.Reason || got.Change != w.Change {
				t.Errorf("Decide = %+v\nwant     %+v", got, w)
			}
			if (got.Outcome == Act) != (got.Detail == "") {
				t.Errorf("Detail = %q for outcome %v", got.Detail, got.Outcome)
			}
		})
	}
	if seen != len(want) {
		t.Errorf("decided %d files, have expectations for %d", seen, len(want))
	}
}

func mustDuration(t testing.TB, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDecideBurst: 50 mutations over two datastores and two types, every one an Act.
func TestDecideBurst(t *testing.T) {
	v := mustValidator(t, storeA, storeB)
	type key struct{ store, typ string }
	counts := map[key]int{}
	ops := map[event.Operation]int{}
	ids := map[string]bool{}
	lines := bytes.Split(bytes.TrimSpace(readTestdata(t, "burst-50.jsonl")), []byte("\n"))
	if len(lines) != 50 {
		t.Fatalf("burst has %d lines, want 50", len(lines))
	}
	from := time.Date(2026, 11, 20, 9, 16, 0, 0, time.UTC)
	for i, line := range lines {
		d := v.Decide(line)
		if d.Outcome != Act {
			t.Fatalf("line %d: %+v, want act", i+1, d)
		}
		c := d.Change
		if c.EventTime.Before(from) || !c.EventTime.Before(from.Add(3*time.Second)) || c.EventTime.Location() != time.UTC {
			t.Errorf("line %d: EventTime %v outside the burst's three seconds", i+1, c.EventTime)
		}
		counts[key{c.DatastoreID, c.ResourceType}]++
		ops[c.Operation]++
		ids[c.EventID] = true
	}
	want := map[key]int{
		{storeA, "Observation"}: 20,
		{storeA, "Patient"}:     5,
		{storeB, "Observation"}: 20,
		{storeB, "Patient"}:     5,
	}
	if len(counts) != len(want) {
		t.Errorf("keys = %v, want %v", counts, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%v: %d events, want %d", k, counts[k], n)
		}
	}
	if ops[event.Create] != 17 || ops[event.Update] != 33 || len(ids) != 50 {
		t.Errorf("creates %d updates %d distinct ids %d; want 17, 33, 50", ops[event.Create], ops[event.Update], len(ids))
	}
}

// remove, as a patch value, deletes the key.
type remove struct{}

// patch returns base with the value at a dotted path replaced (or removed), re-encoded.
func patch(t testing.TB, base []byte, kv ...any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(base, &m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(kv); i += 2 {
		path := strings.Split(kv[i].(string), ".")
		obj := m
		for _, k := range path[:len(path)-1] {
			next, ok := obj[k].(map[string]any)
			if !ok {
				t.Fatalf("patch: %s is not an object", k)
			}
			obj = next
		}
		last := path[len(path)-1]
		if _, ok := kv[i+1].(remove); ok {
			delete(obj, last)
		} else {
			obj[last] = kv[i+1]
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	pSource     = "source"
	pDetailType = "detail-type"
	pDetail     = "detail"
	pEvSource   = "detail.eventSource"
	pEvName     = "detail.eventName"
	pEvID       = "detail.eventID"
	pEvTime     = "detail.eventTime"
	pErrCode    = "detail.errorCode"
	pParams     = "detail.requestParameters"
	pStore      = "detail.requestParameters.datastoreId"
	pType       = "detail.requestParameters.resourceType"
	pResponse   = "detail.responseElements"
	pStatus     = "detail.responseElements.statusCode"
	pAccount    = "account"
	pRegion     = "region"
	r5Only      = "ActorDefinition"
	readName    = "ReadResource"
	upperStore  = "095D2262DA454BB7347488C930E009EB"
)

func TestDecideCases(t *testing.T) {
	create := readTestdata(t, "create-patient.json")
	pad := func(n int) []byte { // create-patient, grown with trailing blanks to n bytes
		return append(append([]byte(nil), create...), bytes.Repeat([]byte(" "), n-len(create))...)
	}
	type tc struct {
		name    string
		data    []byte
		outcome Outcome
		reason  Reason
		check   func(t *testing.T, c Change)
	}
	act := func(name string, data []byte, check func(t *testing.T, c Change)) tc {
		return tc{name, data, Act, "", check}
	}
	skip := func(name string, data []byte, r Reason) tc { return tc{name, data, Skip, r, nil} }
	rej := func(name string, data []byte, r Reason) tc { return tc{name, data, Reject, r, nil} }
	p := func(kv ...any) []byte { return patch(t, create, kv...) }
	mixed := func(typ string) func(t *testing.T, c Change) {
		return func(t *testing.T, c Change) {
			if c.Operation != event.Mixed || !c.AllTypes || c.ResourceType != typ || c.Unrecognised {
				t.Errorf("Change = %+v, want mixed, all types, resource type %q", c, typ)
			}
		}
	}
	bulkDelete := func(typ string, all bool) func(t *testing.T, c Change) {
		return func(t *testing.T, c Change) {
			if c.Operation != event.BulkDelete || c.AllTypes != all || c.ResourceType != typ || c.Unrecognised {
				t.Errorf("Change = %+v, want bulk-delete of %q, all types %v", c, typ, all)
			}
		}
	}

	cases := []tc{
		// Not an EventBridge event at all.
		rej("null", []byte(`null`), Undecodable),
		rej("array", []byte(`[]`), Undecodable),
		rej("string", []byte(`"str"`), Undecodable),
		rej("number", []byte(`42`), Undecodable),
		rej("empty data", nil, Undecodable),
		rej("blank data", []byte(" \n\t"), Undecodable),
		rej("empty object", []byte(`{}`), MissingField),
		rej("two objects", append(append([]byte(nil), create...), create...), Undecodable),
		rej("too large", pad(MaxDataSize+1), TooLarge),
		act("exactly the size limit", pad(MaxDataSize), nil),
		act("leading blanks", append([]byte("\r\n \t"), create...), nil),

		// Skips, decided before any validation of the mutation fields.
		skip("other source", p(pSource, "aws.s3"), NotHealthLake),
		skip("other source, odd detail", p(pSource, "aws.s3", pDetail, 7), NotHealthLake),
		skip("other event source", p(pEvSource, "s3.amazonaws.com"), NotHealthLake),
		skip("no event source", p(pEvSource, remove{}), NotHealthLake),
		skip("read", p(pEvName, readName), NotAMutation),
		skip("GetCapabilities", p(pEvName, "GetCapabilities"), NotAMutation),
		skip("SearchWithPost", p(pEvName, "SearchWithPost"), NotAMutation),
		rej("no event name", p(pEvName, remove{}), MissingField),
		rej("event name null", p(pEvName, nil), MissingField),
		rej("event name empty", p(pEvName, ""), BadField),
		skip("read with bad datastore", p(pEvName, readName, pStore, "../../admin"), NotAMutation),
		skip("read with numeric resource type", p(pEvName, readName, pType, 12), NotAMutation),
		skip("search with params not an object", p(pEvName, "SearchWithGet", pParams, "x"), NotAMutation),
		skip("errorCode present", p(pErrCode, "ThrottlingException"), FailedCall),
		skip("errorCode present, status 201", p(pErrCode, "InternalServerException", pStatus, 201), FailedCall),
		skip("errorCode of another type", p(pErrCode, 500), FailedCall),
		skip("errorCode empty string", p(pErrCode, ""), FailedCall),
		skip("failed call with bad resource type", p(pErrCode, "ValidationException", pType, "patient"), FailedCall),
		skip("status 500", p(pStatus, 500), FailedCall),
		skip("status 404", p(pStatus, 404), FailedCall),
		skip("status 302", p(pStatus, 302), FailedCall),
		skip("responseElements null", p(pResponse, nil), FailedCall),
		skip("responseElements absent", p(pResponse, remove{}), FailedCall),
		act("errorCode null", p(pErrCode, nil), nil),
		act("status 200", p(pStatus, 200), nil),
		act("status 299", p(pStatus, 299), nil),

		// Required fields: absent or null, and of the wrong JSON type.
		rej("no source", p(pSource, remove{}), MissingField),
		rej("source null", p(pSource, nil), MissingField),
		rej("source a number", p(pSource, 1), BadFieldType),
		rej("no detail", p(pDetail, remove{}), MissingField),
		rej("detail null", p(pDetail, nil), MissingField),
		rej("detail an array", p(pDetail, []int{1}), BadFieldType),
		rej("detail a string", p(pDetail, "x"), BadFieldType),
		rej("eventSource a number", p(pEvSource, 1), BadFieldType),
		rej("eventName an object", p(pEvName, map[string]any{}), BadFieldType),
		rej("responseElements a string", p(pResponse, "ok"), BadFieldType),
		rej("no statusCode", p(pStatus, remove{}), MissingField),
		rej("statusCode a string", p(pStatus, "201"), BadFieldType),
		rej("statusCode a bool", p(pStatus, true), BadFieldType),
		rej("statusCode fractional", p(pStatus, 200.5), BadField),
		rej("statusCode negative", p(pStatus, -201), BadField),
		rej("statusCode 2001", p(pStatus, 2001), BadField),
		rej("statusCode 20", p(pStatus, 20), BadField),
		rej("statusCode 600", p(pStatus, 600), BadField),
		rej("no eventID", p(pEvID, remove{}), MissingField),
		rej("no eventTime", p(pEvTime, nil), MissingField),
		rej("no requestParameters", p(pParams, remove{}), MissingField),
		rej("requestParameters null", p(pParams, nil), MissingField),
		rej("requestParameters a string", p(pParams, "x"), BadFieldType),
		rej("no datastoreId", p(pStore, remove{}), MissingField),
		rej("datastoreId a number", p(pStore, 12345), BadFieldType),
		rej("datastoreId an array", p(pStore, []string{storeA}), BadFieldType),
		rej("resourceType a number", p(pType, 1), BadFieldType),
		rej("eventID a number", p(pEvID, 1), BadFieldType),
		rej("eventTime a number", p(pEvTime, 1763630102), BadFieldType),
		rej("no account", p(pAccount, remove{}), MissingField),
		rej("region a number", p(pRegion, 2), BadFieldType),

		// Values.
		rej("eventTime garbage", p(pEvTime, "yesterday"), BadEventTime),
		rej("eventTime without zone", p(pEvTime, "2026-11-20T09:15:02"), BadEventTime),
		rej("eventTime with a space", p(pEvTime, "2026-11-20 09:15:02Z"), BadEventTime),
		rej("eventTime empty", p(pEvTime, ""), BadEventTime),
		rej("eventTime year 1", p(pEvTime, "0001-01-01T00:00:00Z"), BadEventTime),
		rej("eventTime year 1999", p(pEvTime, "1999-12-31T23:59:59Z"), BadEventTime),
		rej("eventTime year 9999", p(pEvTime, "9999-01-01T00:00:00Z"), BadEventTime),
		rej("eventTime year 1999 in UTC", p(pEvTime, "2000-01-01T00:30:00+01:00"), BadEventTime),
		act("eventTime year 2000", p(pEvTime, "2000-01-01T00:00:00Z"), nil),
		act("eventTime year 9998", p(pEvTime, "9998-12-31T23:59:59Z"), nil),
		act("eventTime with offset", p(pEvTime, "2026-11-20T11:15:02+02:00"), func(t *testing.T, c Change) {
			if want := time.Date(2026, 11, 20, 9, 15, 2, 0, time.UTC); c.EventTime != want {
				t.Errorf("EventTime = %v, want %v", c.EventTime, want)
			}
		}),
		act("eventTime with fraction", p(pEvTime, "2026-11-20T09:15:02.999Z"), func(t *testing.T, c Change) {
			if want := time.Date(2026, 11, 20, 9, 15, 2, 0, time.UTC); c.EventTime != want {
				t.Errorf("EventTime = %v, want %v (floored)", c.EventTime, want)
			}
		}),
		rej("datastoreId upper-case hex", p(pStore, upperStore), BadDatastoreID),
		rej("datastoreId 31 chars", p(pStore, storeA[:31]), BadDatastoreID),
		rej("datastoreId 33 chars", p(pStore, storeA+"0"), BadDatastoreID),
		rej("datastoreId not hex", p(pStore, "g95d2262da454bb7347488c930e009eb"), BadDatastoreID),
		rej("datastoreId empty", p(pStore, ""), BadDatastoreID),
		rej("datastoreId with a slash", p(pStore, storeA[:31]+"/"), BadDatastoreID),
		rej("datastoreId with trailing newline", p(pStore, storeA+"\n"), BadDatastoreID),
		rej("resourceType lower case", p(pType, "patient"), BadResourceType),
		rej("resourceType Resource", p(pType, "Resource"), BadResourceType),
		rej("resourceType DomainResource", p(pType, "DomainResource"), BadResourceType),
		rej("resourceType R5 only", p(pType, r5Only), BadResourceType),
		rej("resourceType R5 Permission", p(pType, "Permission"), BadResourceType),
		rej("resourceType R4B SubscriptionStatus", p(pType, "SubscriptionStatus"), BadResourceType),
		rej("resourceType with a space", p(pType, "Patient "), BadResourceType),
		rej("resourceType with a query", p(pType, "Patient?_id=1"), BadResourceType),
		rej("resourceType empty", p(pType, ""), BadResourceType),
		rej("eventID too long", p(pEvID, strings.Repeat("a", 65)), BadField),
		rej("eventID with a slash", p(pEvID, "31feacd9/6646"), BadField),
		rej("eventID empty", p(pEvID, ""), BadField),
		rej("account short", p(pAccount, "12345678901"), BadField),
		rej("account not digits", p(pAccount, "12345678901x"), BadField),
		rej("region with a dot", p(pRegion, "us-west-2.evil.example"), BadField),
		rej("region empty", p(pRegion, ""), BadField),
		act("escaped resourceType", bytes.Replace(create, []byte(`"Patient"`), []byte(`"Pat\u0069ent"`), 1), func(t *testing.T, c Change) {
			if c.ResourceType != "Patient" {
				t.Errorf("ResourceType = %q, want Patient", c.ResourceType)
			}
		}),
		rej("escaped slash in resourceType", bytes.Replace(create, []byte(`"Patient"`), []byte(`"Patient\/x"`), 1), BadResourceType),
		act("DeleteResource", p(pEvName, "DeleteResource", pStatus, 204), func(t *testing.T, c Change) {
			if c.Operation != event.Delete {
				t.Errorf("Operation = %v, want delete", c.Operation)
			}
		}),
		act("R4 type Bundle", p(pType, "Bundle"), mixed("Bundle")),
		act("no resourceType", p(pType, remove{}), mixed("")),
		act("resourceType null", p(pType, nil), mixed("")),
		act("delete without resourceType", p(pEvName, "DeleteResource", pType, remove{}), mixed("")),
		act("ProcessBundle", p(pEvName, "ProcessBundle", pType, remove{}), mixed("")),
		act("bulk delete of a type", p(pEvName, "StartFHIRBulkDeleteJob", pStatus, 202), bulkDelete("Patient", false)),
		act("bulk delete without resourceType", p(pEvName, "StartFHIRBulkDeleteJob", pType, remove{}), bulkDelete("", true)),
		act("bulk delete of Bundle", p(pEvName, "StartFHIRBulkDeleteJob", pType, "Bundle"), bulkDelete("Bundle", false)),
		skip("failed bulk delete", p(pEvName, "StartFHIRBulkDeleteJob", pStatus, 400), FailedCall),
		act("ProcessBundle naming a type", p(pEvName, "ProcessBundle"), mixed("")),
		act("ProcessBundle naming Bundle", p(pEvName, "ProcessBundle", pType, "Bundle"), mixed("Bundle")),
		act("Transaction", p(pEvName, "Transaction", pType, remove{}), mixed("")),
		rej("ProcessBundle with a bad type", p(pEvName, "ProcessBundle", pType, "patient"), BadResourceType),
		rej("ProcessBundle with a numeric type", p(pEvName, "ProcessBundle", pType, 3), BadFieldType),
		rej("ProcessBundle without datastore", p(pEvName, "ProcessBundle", pStore, remove{}), MissingField),
		rej("ProcessBundle without requestParameters", p(pEvName, "ProcessBundle", pParams, remove{}), MissingField),
		rej("no resourceType, bad datastore", p(pType, remove{}, pStore, upperStore), BadDatastoreID),
		act("PatchResource", p(pEvName, "PatchResource", pStatus, 200), func(t *testing.T, c Change) {
			if c.Operation != event.Update || c.EventName != "PatchResource" || c.AllTypes || c.ResourceType != "Patient" {
				t.Errorf("Change = %+v, want an update of Patient", c)
			}
		}),

		// detail-type.
		act("no detail-type", p(pDetailType, remove{}), nil),
		act("detail-type null", p(pDetailType, nil), nil),
		act("escaped detail-type", bytes.Replace(create, []byte(`"AWS API Call via CloudTrail"`), []byte(`"AWS API Call via CloudTra\u0069l"`), 1), nil),
		rej("detail-type a number", p(pDetailType, 1), BadFieldType),
		skip("detail-type of another kind", p(pDetailType, "AWS Service Event via CloudTrail"), UnknownEventType),
		skip("detail-type of another source", p(pSource, "aws.s3", pDetailType, 1), NotHealthLake),
		skip("detail-type Data Store Deleted", p(pDetailType, "Data Store Deleted"), NotAMutation),
		skip("detail-type Import Job Failed", p(pDetailType, "Import Job Failed"), NotAMutation),
		rej("detail-type Import Job Completed on an API call", p(pDetailType, "Import Job Completed"), MissingField),
		act("R4 type MedicinalProductIngredient", p(pType, "MedicinalProductIngredient"), nil),
	}
	v := mustValidator(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := v.Decide(c.data)
			if d.Outcome != c.outcome || d.Reason != c.reason {
				t.Fatalf("Decide = %v %q (%s), want %v %q", d.Outcome, d.Reason, d.Detail, c.outcome, c.reason)
			}
			if d.Outcome == Act {
				if d.Detail != "" {
					t.Errorf("Detail = %q for an act", d.Detail)
				}
				if c.check != nil {
					c.check(t, d.Change)
				}
				return
			}
			if d.Detail == "" {
				t.Error("empty Detail")
			}
			if d.Change != (Change{}) {
				t.Errorf("Change = %+v, want zero for %v", d.Change, d.Outcome)
			}
		})
	}
}

// TestDetailEchoesNoValue: a Detail describes; it never repeats what the record said.
func TestDetailEchoesNoValue(t *testing.T) {
	create := readTestdata(t, "create-patient.json")
	v := mustValidator(t, storeB)
	const secret = "Jane-Doe-1970"
	for _, path := range []string{pSource, pEvSource, pEvName, pEvID, pEvTime, pStore, pType, pAccount, pRegion} {
		d := v.Decide(patch(t, create, path, secret))
		if d.Outcome == Act {
			t.Fatalf("%s = %q: act", path, secret)
		}
		if strings.Contains(d.Detail, secret) || strings.Contains(d.Detail, storeA) {
			t.Errorf("%s: Detail %q echoes a value", path, d.Detail)
		}
	}
}

func TestAllowList(t *testing.T) {
	create := readTestdata(t, "create-patient.json") // datastore storeA
	for _, c := range []struct {
		name  string
		allow []string
		want  Outcome
		r     Reason
	}{
		{"empty list allows any", nil, Act, ""},
		{"hit", []string{storeB, storeA}, Act, ""},
		{"duplicate entries", []string{storeA, storeA}, Act, ""},
		{"miss", []string{storeB}, Reject, DatastoreNotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := mustValidator(t, c.allow...).Decide(create)
			if d.Outcome != c.want || d.Reason != c.r {
				t.Errorf("Decide = %v %q, want %v %q", d.Outcome, d.Reason, c.want, c.r)
			}
		})
	}
	// A malformed datastore id is reported as malformed, allow-list or not.
	d := mustValidator(t, storeA).Decide(patch(t, create, pStore, upperStore))
	if d.Reason != BadDatastoreID {
		t.Errorf("upper-case id against an allow-list: %q, want %q", d.Reason, BadDatastoreID)
	}
	// The zero Validator allows any datastore.
	if d := new(Validator).Decide(create); d.Outcome != Act {
		t.Errorf("zero Validator: %+v", d)
	}
}

func TestNewValidatorRejectsBadEntries(t *testing.T) {
	for _, bad := range []string{"", upperStore, storeA[:31], storeA + "0", " " + storeA[1:], "x95d2262da454bb7347488c930e009eb"} {
		if _, err := NewValidator([]string{storeA, bad}); err == nil {
			t.Errorf("NewValidator accepted %q", bad)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Act.String(), "act"}, {Skip.String(), "skip"}, {Reject.String(), "reject"}, {Outcome(0).String(), "Outcome(0)"},
	} {
		if c.got != c.want {
			t.Errorf("String() = %q, want %q", c.got, c.want)
		}
	}
}

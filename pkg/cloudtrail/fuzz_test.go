package cloudtrail

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

var (
	datastoreIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	knownReasons       = []Reason{
		NotHealthLake, NotAMutation, FailedCall, TooLarge, Undecodable, MissingField, BadFieldType,
		BadField, BadEventTime, BadDatastoreID, BadResourceType, DatastoreNotAllowed, UnknownEventType, BadJobID,
	}
)

// FuzzDecide: whatever the data, Decide returns one of the three outcomes, and nothing that
// should have been rejected survives into an Act: ids, types and names that reach a URL, a
// request or a metric label are in their shapes, and the Change is consistent (all-types with
// Mixed and Import only, job fields with Import only). The seeds are every file in testdata, each
// line of the burst, and some hand-made breakages of a good record.
func FuzzDecide(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b := readTestdata(f, e.Name())
		f.Add(b)
		if strings.HasSuffix(e.Name(), ".jsonl") {
			for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
				f.Add(line)
			}
		}
	}
	create := readTestdata(f, "create-patient.json")
	for _, n := range []int{1, 10, 200, 1000, len(create) - 2} {
		f.Add(create[:n])
	}
	for _, kv := range [][]any{
		{pStore, upperStore}, {pStore, 1}, {pType, "patient"}, {pType, "Patient/../x"}, {pType, nil},
		{pEvName, "DeleteResource", pStatus, 204}, {pStatus, 500}, {pStatus, "201"}, {pStatus, 200.0001},
		{pErrCode, "X"}, {pResponse, nil}, {pDetail, []int{}}, {pEvTime, "2026-13-40T99:99:99Z"},
		{pEvTime, "2026-11-20T09:15:02.123456789-23:59"}, {pParams, "s"}, {pSource, "aws.s3"},
		{pEvID, strings.Repeat("9", 64)}, {pRegion, "us-west-2/x"}, {pAccount, 123456789012},
	} {
		f.Add(patch(f, create, kv...))
	}
	completed := readTestdata(f, "import-completed.json")
	for _, kv := range [][]any{
		{pJobID, strings.ToUpper(jobA)}, {pJobID, 7}, {pJobStatus, "FAILED"}, {pJobStatus, "COMPLETED"},
		{pSubmitTime, "x"}, {pSubmitTime, remove{}}, {pDetailDS, "../x"}, {pTime, "2026-11-20T09:14:42.5+01:00"},
		{pID, remove{}}, {pDetailType, "Import Job Completed With Errors"}, {pDetailType, "Import Job In Progress"},
		{pDetailType, 3}, {pDetail, []int{}},
	} {
		f.Add(patch(f, completed, kv...))
	}
	for _, kv := range [][]any{
		{pEvName, "ProcessBundle", pType, remove{}}, {pEvName, "PatchResource"}, {pEvName, "EraseResource"},
		{pEvName, "Create2Resource"}, {pEvName, ""}, {pEvName, "SearchAnything"}, {pEvName, "StartFHIRImportJob"},
		{pType, remove{}}, {pType, "Bundle"}, {pDetailType, remove{}}, {pDetailType, "Import Job Completed"},
	} {
		f.Add(patch(f, create, kv...))
	}
	for _, s := range []string{``, `null`, `[]`, `"str"`, `{}`, `{"source":"aws.healthlake","detail":{}}`, "{\"source\":\"aws.healthlake\"\x00}"} {
		f.Add([]byte(s))
	}

	open := mustValidator(f)
	allow := []string{storeA, storeB}
	restricted := mustValidator(f, allow...)
	types := ResourceTypes()

	f.Fuzz(func(t *testing.T, data []byte) {
		d := open.Decide(data)
		if again := open.Decide(data); again != d {
			t.Fatalf("Decide is not deterministic: %+v then %+v", d, again)
		}
		r := restricted.Decide(data)

		for _, d := range []Decision{d, r} {
			switch d.Outcome {
			case Act:
				checkAct(t, d, types)
				if !json.Valid(data) {
					t.Fatalf("act on invalid JSON: %+v", d)
				}
			case Skip, Reject:
				if !slices.Contains(knownReasons, d.Reason) || d.Detail == "" {
					t.Fatalf("%v with reason %q detail %q", d.Outcome, d.Reason, d.Detail)
				}
				if d.Change != (Change{}) {
					t.Fatalf("%v with a Change: %+v", d.Outcome, d.Change)
				}
			default:
				t.Fatalf("outcome %v", d.Outcome)
			}
		}

		// The allow-list only ever turns an Act into a datastore-not-allowed Reject.
		switch {
		case r.Outcome == Act:
			if d != r || !slices.Contains(allow, r.Change.DatastoreID) {
				t.Fatalf("restricted %+v, open %+v", r, d)
			}
		case d.Outcome == Act:
			if r.Reason != DatastoreNotAllowed || slices.Contains(allow, d.Change.DatastoreID) {
				t.Fatalf("restricted %+v, open %+v", r, d)
			}
		case d != r:
			t.Fatalf("restricted %+v, open %+v", r, d)
		}

		// Undecodable means exactly: not a single valid JSON object.
		if len(data) > MaxDataSize {
			return
		}
		isObj := json.Valid(data) && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
		if (d.Reason == Undecodable) == isObj {
			t.Fatalf("reason %q for data that is a JSON object: %v", d.Reason, isObj)
		}
	})
}

func checkAct(t *testing.T, d Decision, types []string) {
	t.Helper()
	c := d.Change
	if d.Reason != "" || d.Detail != "" {
		t.Fatalf("act with reason %q detail %q", d.Reason, d.Detail)
	}
	if !datastoreIDPattern.MatchString(c.DatastoreID) {
		t.Fatalf("act with datastore id %q", c.DatastoreID)
	}
	if c.AllTypes {
		// Every type: no type, or the Bundle type a Mixed record named.
		if (c.ResourceType != "" && (c.ResourceType != "Bundle" || c.Operation != event.Mixed)) ||
			(c.Operation != event.Mixed && c.Operation != event.Import && c.Operation != event.BulkDelete) {
			t.Fatalf("all-types act with %v and resource type %q", c.Operation, c.ResourceType)
		}
	} else if _, ok := slices.BinarySearch(types, c.ResourceType); !ok || (c.ResourceType == "Bundle" && c.Operation != event.BulkDelete) {
		// A one-type act of Bundle is a bulk delete of stored Bundles; any other is Mixed.
		t.Fatalf("act with resource type %q", c.ResourceType)
	}
	if c.Unrecognised && c.Operation != event.Mixed {
		t.Fatalf("unrecognised act with %v", c.Operation)
	}
	if !isLabel(c.EventName, c.Operation == event.Import) {
		t.Fatalf("act with event name %q, no label", c.EventName)
	}
	if c.Operation == event.Import {
		if !datastoreIDPattern.MatchString(c.JobID) || (c.JobStatus != JobStatusCompleted && c.JobStatus != JobStatusCompletedWithErrors) {
			t.Fatalf("import act with job %q status %q", c.JobID, c.JobStatus)
		}
		if !c.JobSubmitTime.IsZero() && c.JobSubmitTime.Location() != time.UTC {
			t.Fatalf("import act with submit time %v", c.JobSubmitTime)
		}
	} else if c.JobID != "" || c.JobStatus != "" || !c.JobSubmitTime.IsZero() {
		t.Fatalf("act with job fields: %+v", c)
	}
	for _, s := range []string{c.DatastoreID, c.ResourceType, c.JobID} {
		if strings.ContainsAny(s, "/?#%.") || strings.IndexFunc(s, unicode.IsSpace) >= 0 {
			t.Fatalf("act with %q, unsafe in a URL", s)
		}
	}
	allTypes := c.Operation == event.Mixed || c.Operation == event.Import || (c.Operation == event.BulkDelete && c.ResourceType == "")
	if !slices.Contains([]event.Operation{event.Create, event.Update, event.Delete, event.Mixed, event.Import, event.BulkDelete}, c.Operation) || allTypes != c.AllTypes {
		t.Fatalf("act with operation %v, all types %v", c.Operation, c.AllTypes)
	}
	if c.EventTime.Location() != time.UTC || c.EventTime.Nanosecond() != 0 || c.EventTime.IsZero() {
		t.Fatalf("act with event time %v", c.EventTime)
	}
	if c.EventID == "" || len(c.Account) != 12 || c.Region == "" {
		t.Fatalf("act with %+v", c)
	}
}

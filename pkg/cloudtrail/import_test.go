package cloudtrail

import (
	"strings"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

const (
	pID         = "id"
	pTime       = "time"
	pJobID      = "detail.jobId"
	pJobStatus  = "detail.jobStatus"
	pSubmitTime = "detail.submitTime"
	pDetailDS   = "detail.datastoreId"
	jobA        = "08c60716d6321710893ff88410e902c2"
)

// TestDecideImport: import events are validated as strictly as API calls.
func TestDecideImport(t *testing.T) {
	completed := readTestdata(t, "import-completed.json")
	p := func(kv ...any) []byte { return patch(t, completed, kv...) }
	type tc struct {
		name    string
		data    []byte
		outcome Outcome
		reason  Reason
	}
	cases := []tc{
		{"as documented", completed, Act, ""},
		{"with jobStatus agreeing", p(pJobStatus, "COMPLETED"), Act, ""},
		{"without submitTime", p(pSubmitTime, remove{}), Act, ""},
		{"submitTime null", p(pSubmitTime, nil), Act, ""},
		{"without inputDataConfig", p("detail.inputDataConfig", remove{}), Act, ""},
		{"jobStatus contradicting", p(pJobStatus, "FAILED"), Reject, BadField},
		{"jobStatus lower case", p(pJobStatus, "completed"), Reject, BadField},
		{"jobStatus a number", p(pJobStatus, 1), Reject, BadFieldType},
		{"no jobId", p(pJobID, remove{}), Reject, MissingField},
		{"jobId null", p(pJobID, nil), Reject, MissingField},
		{"jobId a number", p(pJobID, 8), Reject, BadFieldType},
		{"jobId upper case", p(pJobID, strings.ToUpper(jobA)), Reject, BadJobID},
		{"jobId 31 chars", p(pJobID, jobA[:31]), Reject, BadJobID},
		{"jobId 33 chars", p(pJobID, jobA+"0"), Reject, BadJobID},
		{"jobId empty", p(pJobID, ""), Reject, BadJobID},
		{"jobId with a space", p(pJobID, jobA[:31]+" "), Reject, BadJobID},
		{"no datastoreId", p(pDetailDS, remove{}), Reject, MissingField},
		{"datastoreId a number", p(pDetailDS, 5), Reject, BadFieldType},
		{"datastoreId upper case", p(pDetailDS, upperStore), Reject, BadDatastoreID},
		{"datastoreId with a slash", p(pDetailDS, storeA[:31]+"/"), Reject, BadDatastoreID},
		{"no id", p(pID, remove{}), Reject, MissingField},
		{"id a number", p(pID, 1), Reject, BadFieldType},
		{"id with a slash", p(pID, "36c865ef/da41"), Reject, BadField},
		{"no time", p(pTime, remove{}), Reject, MissingField},
		{"time garbage", p(pTime, "soon"), Reject, BadEventTime},
		{"time year 1999", p(pTime, "1999-12-31T23:59:59Z"), Reject, BadEventTime},
		{"submitTime garbage", p(pSubmitTime, "2026-11-20"), Reject, BadEventTime},
		{"submitTime a number", p(pSubmitTime, 1763628650), Reject, BadFieldType},
		{"submitTime year 9999", p(pSubmitTime, "9999-01-01T00:00:00Z"), Reject, BadEventTime},
		{"no detail", p(pDetail, remove{}), Reject, MissingField},
		{"detail null", p(pDetail, nil), Reject, MissingField},
		{"detail an array", p(pDetail, []int{1}), Reject, BadFieldType},
		{"detail a string", p(pDetail, "x"), Reject, BadFieldType},
		{"no account", p(pAccount, remove{}), Reject, MissingField},
		{"account short", p(pAccount, "12345"), Reject, BadField},
		{"region with a dot", p(pRegion, "us-west-2.evil"), Reject, BadField},
		{"other source", p(pSource, "aws.s3"), Skip, NotHealthLake},
		{"in progress", p(pDetailType, "Import Job In Progress"), Skip, NotAMutation},
		{"in progress, broken", p(pDetailType, "Import Job In Progress", pJobID, 1), Skip, NotAMutation},
		{"failed", p(pDetailType, "Import Job Failed"), Skip, NotAMutation},
		{"submitted", p(pDetailType, "Import Job Submitted"), Skip, NotAMutation},
		{"queued", p(pDetailType, "Import Job Queued"), Skip, NotAMutation},
		{"export completed", p(pDetailType, "Export Job Completed"), Skip, NotAMutation},
		{"export completed with errors", p(pDetailType, "Export Job Completed With Errors"), Skip, NotAMutation},
		{"datastore active", p(pDetailType, "Data Store Active"), Skip, NotAMutation},
		{"lower-case detail-type", p(pDetailType, "import job completed"), Skip, UnknownEventType},
		{"no detail-type", p(pDetailType, remove{}), Skip, NotHealthLake}, // read as an API call without eventSource
	}
	v := mustValidator(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := v.Decide(c.data)
			if d.Outcome != c.outcome || d.Reason != c.reason {
				t.Fatalf("Decide = %v %q (%s), want %v %q", d.Outcome, d.Reason, d.Detail, c.outcome, c.reason)
			}
			if (d.Outcome == Act) == (d.Detail != "") {
				t.Errorf("Detail %q for %v", d.Detail, d.Outcome)
			}
			if d.Outcome != Act {
				if d.Change != (Change{}) {
					t.Errorf("Change = %+v for %v", d.Change, d.Outcome)
				}
				return
			}
			ch := d.Change
			if ch.Operation != event.Import || !ch.AllTypes || ch.ResourceType != "" || ch.JobID != jobA || ch.JobStatus != JobStatusCompleted ||
				ch.EventName != "Import Job Completed" || ch.EventTime != time.Date(2026, 11, 20, 9, 14, 42, 0, time.UTC) {
				t.Errorf("Change = %+v", ch)
			}
		})
	}

	// The allow-list applies to imports as to API calls.
	if d := mustValidator(t, storeB).Decide(completed); d.Reason != DatastoreNotAllowed {
		t.Errorf("import outside the allow-list: %v %s", d.Outcome, d.Reason)
	}
	if d := mustValidator(t, storeA).Decide(completed); d.Outcome != Act {
		t.Errorf("import inside the allow-list: %v %s", d.Outcome, d.Reason)
	}
	// The submit time keeps its milliseconds; the event time is whole seconds.
	if d := v.Decide(p(pTime, "2026-11-20T09:14:42.750Z")); d.Change.EventTime != time.Date(2026, 11, 20, 9, 14, 42, 0, time.UTC) ||
		d.Change.JobSubmitTime != time.Date(2026, 11, 20, 8, 50, 50, 986e6, time.UTC) {
		t.Errorf("times: %+v", d.Change)
	}
}

// TestImportDetailEchoesNoValue: as for API calls, Details describe without repeating.
func TestImportDetailEchoesNoValue(t *testing.T) {
	completed := readTestdata(t, "import-completed.json")
	v := mustValidator(t, storeB)
	const secret = "Jane-Doe-1970"
	for _, path := range []string{pID, pTime, pJobID, pJobStatus, pSubmitTime, pDetailDS, pAccount, pRegion, pDetailType} {
		d := v.Decide(patch(t, completed, path, secret))
		if d.Outcome == Act {
			t.Fatalf("%s = %q: act", path, secret)
		}
		if strings.Contains(d.Detail, secret) || strings.Contains(d.Detail, storeA) || strings.Contains(d.Detail, jobA) {
			t.Errorf("%s: Detail %q echoes a value", path, d.Detail)
		}
	}
}

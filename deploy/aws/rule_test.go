package aws_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/aws/eventpattern"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
)

type record struct {
	name string
	data []byte
}

// records reads every fixture: the shared CloudTrail ones (one record per .json file, one per
// line of .jsonl) and ours in testdata/. Files that are not JSON (not-json.bin, truncated.json)
// are records EventBridge could never have produced, so no rule sees them.
func records(t *testing.T) []record {
	t.Helper()
	var out []record
	for _, dir := range []string{"../../pkg/cloudtrail/testdata", "testdata"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.json*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(f, ".jsonl") {
				sc := bufio.NewScanner(bytes.NewReader(data))
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				for i := 1; sc.Scan(); i++ {
					if len(bytes.TrimSpace(sc.Bytes())) > 0 {
						out = append(out, record{name: filepath.Base(f) + ":" + itoa(i), data: append([]byte(nil), sc.Bytes()...)})
					}
				}
				continue
			}
			if json.Valid(data) {
				out = append(out, record{name: filepath.Base(f), data: data})
			}
		}
	}
	if len(out) < 60 {
		t.Fatalf("only %d fixture records", len(out))
	}
	return out
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func rulePattern(t *testing.T, config string) *eventpattern.Pattern {
	t.Helper()
	_, raw := typed(t, config)
	props := asMap(asMap(raw["IngestRule"])["Properties"])
	p, err := eventpattern.CompileValue(props["EventPattern"])
	if err != nil {
		t.Fatalf("%s: the rule's pattern does not compile: %v", config, err)
	}
	return p
}

type envelope struct {
	DetailType string `json:"detail-type"`
	Detail     struct {
		EventName         string          `json:"eventName"`
		ErrorCode         *string         `json:"errorCode"`
		DatastoreID       string          `json:"datastoreId"`
		RequestParameters json.RawMessage `json:"requestParameters"`
	} `json:"detail"`
}

// The rule forwards every record the consumer acts on and the import completions, and none of
// the failed or read-only calls. Rejects may be forwarded: the consumer rejects and reports them.
func TestRuleForwardsWhatTheConsumerActsOn(t *testing.T) {
	v, err := cloudtrail.NewValidator(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := rulePattern(t, "defaults")
	var acts, imports, withheld int
	for _, r := range records(t) {
		d := v.Decide(r.data)
		got, err := p.Matches(r.data)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		var ev envelope
		_ = json.Unmarshal(r.data, &ev)
		switch {
		case strings.HasPrefix(ev.DetailType, "Import Job Completed"):
			imports++
			if !got {
				t.Errorf("%s: import completion not forwarded", r.name)
			}
		case d.Outcome == cloudtrail.Act:
			acts++
			if !got {
				t.Errorf("%s: the consumer acts on it, the rule does not forward it", r.name)
			}
		case d.Reason == cloudtrail.FailedCall || strings.HasPrefix(r.name, "ignore-") || ev.DetailType == "Import Job Failed":
			withheld++
			if got {
				t.Errorf("%s (%s %s): forwarded, but it is a failed, read-only or unwanted event", r.name, d.Reason, ev.Detail.EventName)
			}
		}
	}
	t.Logf("%d records acted on, %d import completions: forwarded; %d failed/read/unwanted: withheld", acts, imports, withheld)
	if acts < 50 || imports < 4 || withheld < 5 {
		t.Fatalf("acts %d imports %d withheld %d: fixtures missing", acts, imports, withheld)
	}
}

// With DatastoreIds, only those datastores' calls and imports are forwarded.
func TestRuleDatastoreFilter(t *testing.T) {
	p := rulePattern(t, "alternatives")
	allowed := map[string]bool{"095d2262da454bb7347488c930e009eb": true, "0123456789abcdef0123456789abcdef": true}
	v, _ := cloudtrail.NewValidator(nil)
	var in, out int
	for _, r := range records(t) {
		d := v.Decide(r.data)
		if d.Outcome != cloudtrail.Act {
			continue
		}
		got, _ := p.Matches(r.data)
		if got != allowed[d.Change.DatastoreID] {
			t.Errorf("%s: datastore allowed %v, forwarded %v", r.name, allowed[d.Change.DatastoreID], got)
		}
		if got {
			in++
		} else {
			out++
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("the fixtures exercise one side only: %d in, %d out", in, out)
	}
	other := []byte(strings.ReplaceAll(readFile(t, "testdata/import-job-completed.json"), "095d2262da454bb7347488c930e009eb", "ffffffffffffffffffffffffffffffff"))
	if got, _ := p.Matches(other); got {
		t.Error("an import of another datastore is forwarded")
	}
	if got, _ := p.Matches([]byte(readFile(t, "testdata/import-job-completed.json"))); !got {
		t.Error("an import of an allowed datastore is not forwarded")
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The example rule on the custom bus takes exactly the two operational reports.
func TestOpsRule(t *testing.T) {
	_, raw := typed(t, "defaults")
	p, err := eventpattern.CompileValue(asMap(asMap(raw["OpsRule"])["Properties"])["EventPattern"])
	if err != nil {
		t.Fatal(err)
	}
	for dt, want := range map[string]bool{
		"HealthLake CDC Record Rejected": true, "HealthLake CDC Range Failed": true,
		"FHIR Resource Created": false, "HealthLake CDC Watermark": false,
	} {
		ev := `{"source": "healthlake.cdc", "detail-type": "` + dt + `", "detail": {}}`
		if got, _ := p.Matches([]byte(ev)); got != want {
			t.Errorf("%s: forwarded %v, want %v", dt, got, want)
		}
	}
}

package stacktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/smithy-go"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// recorderStats is the part of GET /_recorder/stats these tests read.
type recorderStats struct {
	Out    string `json:"out"`
	Config struct {
		FailRate float64 `json:"failRate"`
	} `json:"config"`
}

// recorderAdmin calls the recorder's admin API and decodes its JSON answer into out.
func recorderAdmin(t *testing.T, method, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t, 10*time.Second), method, stack.URL(t, "EVENTBRIDGE")+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s %s %v", method, path, resp.Status, b, err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func stackEvents(source string, n int) []types.PutEventsRequestEntry {
	es := make([]types.PutEventsRequestEntry, n)
	for i := range es {
		es[i] = types.PutEventsRequestEntry{
			Source:     aws.String(source),
			DetailType: aws.String("FHIR Resource Updated"),
			Detail:     aws.String(fmt.Sprintf(`{"marker":%q,"n":%d}`, source, i)),
			Time:       aws.Time(time.Now()),
		}
	}
	return es
}

func TestEventBridgeRecorderPartialFailure(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	eb := stack.EventBridgeClient(t)
	source := fmt.Sprintf("stacktest.eventbridge.%d", time.Now().UnixNano())

	var stats recorderStats
	recorderAdmin(t, http.MethodGet, "/_recorder/stats", "", &stats)
	if stats.Config.FailRate != 0 {
		t.Fatalf("the recorder fails entries at random (failRate %v); this test needs failRate 0: POST /_recorder/reset", stats.Config.FailRate)
	}
	recorderAdmin(t, http.MethodPost, "/_recorder/config", `{"failNextIndexes":[3]}`, nil)

	out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: stackEvents(source, 10)})
	if err != nil {
		t.Fatalf("PutEvents: %v", err)
	}
	if out.FailedEntryCount != 1 || len(out.Entries) != 10 {
		t.Fatalf("FailedEntryCount %d with %d entries; want 1 of 10 (did another test call the recorder in between?)", out.FailedEntryCount, len(out.Entries))
	}
	var ids []string
	for i, e := range out.Entries {
		if i == 3 {
			if e.ErrorCode == nil || e.EventId != nil {
				t.Errorf("entry 3: %+v, want an ErrorCode and no EventId", e)
			}
			continue
		}
		if e.EventId == nil || e.ErrorCode != nil {
			t.Errorf("entry %d: %+v, want an EventId and no ErrorCode", i, e)
			continue
		}
		ids = append(ids, *e.EventId)
	}

	lines := stack.Recorded(t, source)
	var gotIDs []string
	var gotN []int
	for _, l := range lines {
		var d struct {
			Marker string `json:"marker"`
			N      int    `json:"n"`
		}
		if err := json.Unmarshal(l.Detail, &d); err != nil || d.Marker != source {
			t.Errorf("recorded detail %s is not the JSON object sent (%v)", l.Detail, err)
		}
		gotIDs = append(gotIDs, l.EventID)
		gotN = append(gotN, d.N)
	}
	slices.Sort(ids)
	slices.Sort(gotIDs)
	slices.Sort(gotN)
	if !slices.Equal(gotIDs, ids) {
		t.Errorf("recorded event ids %v, want the 9 accepted %v", gotIDs, ids)
	}
	if want := []int{0, 1, 2, 4, 5, 6, 7, 8, 9}; !slices.Equal(gotN, want) {
		t.Errorf("recorded entries n=%v, want %v", gotN, want)
	}
}

func TestEventBridgeRecorderRejectsElevenEntries(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	eb := stack.EventBridgeClient(t)
	source := fmt.Sprintf("stacktest.eventbridge.%d", time.Now().UnixNano())

	_, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: stackEvents(source, 11)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Fatalf("PutEvents with 11 entries: got %v, want a ValidationException", err)
	}

	var stats recorderStats
	recorderAdmin(t, http.MethodGet, "/_recorder/stats", "", &stats)
	if lines := stack.Recorded(t, source); len(lines) != 0 {
		t.Errorf("%d entries of a rejected call were recorded", len(lines))
	}
}

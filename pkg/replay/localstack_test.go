package replay

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kinesisput"
)

// A replay into kinesalite through the producer's sink: the stream holds exactly the records
// Run counted as put, each one the consumer acts on, keyed by its envelope id.
func TestReplayOnLocalStack(t *testing.T) {
	kc := stack.KinesisClient(t)
	stream := stack.CreateStream(t, kc, "replay-test", 2)
	sink, err := kinesisput.New(kc, stream, kinesisput.Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files([]string{logTree(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := Run(ctx, files, sink, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := cloudtrail.NewValidator(nil)
	var got []string
	for _, r := range stack.ReadStream(t, kc, stream) {
		d := v.Decide(r.Data)
		if d.Outcome != cloudtrail.Act || aws.ToString(r.PartitionKey) != eventID(r.Data) {
			t.Errorf("record on the stream: %s %s, key %q", d.Outcome, d.Reason, aws.ToString(r.PartitionKey))
		}
		got = append(got, d.Change.EventID)
	}
	slices.Sort(got)
	want := []string{
		"ev-CreateResource-Condition-20261120T090959Z", "ev-CreateResource-Condition-20261120T092000Z",
		"ev-CreateResource-Patient-20261120T091502Z", "ev-CreateResource-Patient-20261120T100000Z",
		"ev-DeleteResource-Encounter-20261120T091504Z", "ev-UpdateResource-Observation-20261120T091503Z",
	}
	if st.Put != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("put %d; stream holds %v, want %v", st.Put, got, want)
	}
}

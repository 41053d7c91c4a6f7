package simulate

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// decide is the consumer's verdict on a record the simulation put.
func decide(t testing.TB, data []byte) cloudtrail.Decision {
	t.Helper()
	v, err := cloudtrail.NewValidator(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v.Decide(data)
}

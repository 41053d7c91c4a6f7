package event_test

import (
	"testing"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

func TestActionFor(t *testing.T) {
	for _, tc := range []struct {
		version          string
		creates, updates bool
		want             event.Operation
	}{
		// Numeric versionIds (HealthLake) decide, whatever the window saw.
		{"1", false, true, event.Create},
		{"1", false, false, event.Create},
		{"2", true, false, event.Update},
		{"17", true, true, event.Update},
		{"18446744073709551615", true, false, event.Update},
		// Opaque versionIds (the local server's UUIDs): only creates in the window → create.
		{"0b7c6f3e-2d7a-4c55-9a53-8f1b2b0c6b1e", true, false, event.Create},
		{"0b7c6f3e-2d7a-4c55-9a53-8f1b2b0c6b1e", true, true, event.Update},
		{"0b7c6f3e-2d7a-4c55-9a53-8f1b2b0c6b1e", false, true, event.Update},
		{"0b7c6f3e-2d7a-4c55-9a53-8f1b2b0c6b1e", false, false, event.Update},
		// Not a HealthLake version number: the heuristic.
		{"0", true, false, event.Create},
		{"-1", false, true, event.Update},
		{"1.5", true, false, event.Create},
		{"", false, false, event.Update},
	} {
		if got := event.ActionFor(tc.version, tc.creates, tc.updates); got != tc.want {
			t.Errorf("ActionFor(%q, creates=%v, updates=%v) = %s, want %s", tc.version, tc.creates, tc.updates, got, tc.want)
		}
	}
}

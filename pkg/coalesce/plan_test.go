package coalesce

import (
	"strings"
	"testing"
	"time"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestRange(t *testing.T) {
	cfg := Config{Lead: 2 * time.Second, Lag: 5 * time.Second}
	tests := []struct {
		name             string
		cfg              Config
		min, max         string
		wantFrom, wantTo string
	}{
		{
			name: "one event: its whole second plus lead and lag",
			cfg:  cfg, min: "2026-11-20T09:15:03Z", max: "2026-11-20T09:15:03Z",
			wantFrom: "2026-11-20T09:15:01Z", wantTo: "2026-11-20T09:15:09Z",
		},
		{
			name: "a burst spanning seconds",
			cfg:  cfg, min: "2026-11-20T09:15:03Z", max: "2026-11-20T09:15:07Z",
			wantFrom: "2026-11-20T09:15:01Z", wantTo: "2026-11-20T09:15:13Z",
		},
		{
			// eventTime has whole seconds, but a caller may hand us more: floor, never round up,
			// or writes early in the second fall out of range.
			name: "sub-second times are floored",
			cfg:  cfg, min: "2026-11-20T09:15:03.999Z", max: "2026-11-20T09:15:04.001Z",
			wantFrom: "2026-11-20T09:15:01Z", wantTo: "2026-11-20T09:15:10Z",
		},
		{
			name: "no lead or lag still covers the last whole second",
			cfg:  Config{}, min: "2026-11-20T09:15:03Z", max: "2026-11-20T09:15:03Z",
			wantFrom: "2026-11-20T09:15:03Z", wantTo: "2026-11-20T09:15:04Z",
		},
		{
			name: "other time zones are normalised to UTC",
			cfg:  Config{}, min: "2026-11-20T10:15:03+01:00", max: "2026-11-20T10:15:03+01:00",
			wantFrom: "2026-11-20T09:15:03Z", wantTo: "2026-11-20T09:15:04Z",
		},
		{
			name: "across midnight",
			cfg:  cfg, min: "2026-11-20T23:59:59Z", max: "2026-11-21T00:00:00Z",
			wantFrom: "2026-11-20T23:59:57Z", wantTo: "2026-11-21T00:00:06Z",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := tt.cfg.Range(ts(tt.min), ts(tt.max))
			if !from.Equal(ts(tt.wantFrom)) || !to.Equal(ts(tt.wantTo)) {
				t.Fatalf("Range = [%s, %s), want [%s, %s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), tt.wantFrom, tt.wantTo)
			}
			if from.Location() != time.UTC || to.Location() != time.UTC {
				t.Fatalf("range not in UTC: %v %v", from.Location(), to.Location())
			}
		})
	}
}

// TestRangeCoversEveryWrite is the property the range exists for: a write committed at any
// millisecond of a hinted second, up to Lag later, is inside the range.
func TestRangeCoversEveryWrite(t *testing.T) {
	cfg := Defaults()
	event := ts("2026-11-20T09:15:03Z")
	from, to := cfg.Range(event, event)
	for ms := 0; ms < 1000; ms++ {
		write := event.Add(time.Duration(ms) * time.Millisecond)
		for _, late := range []time.Duration{0, cfg.Lag - time.Millisecond} {
			w := write.Add(late)
			if w.Before(from) || !w.Before(to) {
				t.Fatalf("write at %s not in [%s, %s)", w, from, to)
			}
		}
	}
}

func TestReadyAt(t *testing.T) {
	cfg := Config{Settle: 10 * time.Second}
	if got, want := cfg.ReadyAt(ts("2026-11-20T09:15:03.5Z")), ts("2026-11-20T09:15:14Z"); !got.Equal(want) {
		t.Fatalf("ReadyAt = %s, want %s", got, want)
	}
}

func TestValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{Window: 0, Settle: -1, MaxEvents: 0}
	err := bad.Validate()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"window", "settle", "max window events"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

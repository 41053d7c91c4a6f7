package coalesce

import (
	"strings"
	"testing"
	"time"
)

func TestHintRange(t *testing.T) {
	cfg := Config{Lead: 2 * time.Second, Lag: 5 * time.Second}
	now := ts("2026-11-20T09:20:00Z")
	tests := []struct {
		name             string
		cfg              Config
		event, arrived   string
		wantFrom, wantTo string
	}{
		{"its whole second plus lead and lag", cfg, "2026-11-20T09:15:03Z", "",
			"2026-11-20T09:15:01Z", "2026-11-20T09:15:09Z"},
		// eventTime has whole seconds, but a caller may hand us more: floor, never round up,
		// or writes early in the second fall out of range.
		{"sub-second times are floored", cfg, "2026-11-20T09:15:03.999Z", "",
			"2026-11-20T09:15:01Z", "2026-11-20T09:15:09Z"},
		{"no lead or lag still covers the whole second", Config{}, "2026-11-20T09:15:03Z", "",
			"2026-11-20T09:15:03Z", "2026-11-20T09:15:04Z"},
		{"other time zones are normalised to UTC", Config{}, "2026-11-20T10:15:03+01:00", "",
			"2026-11-20T09:15:03Z", "2026-11-20T09:15:04Z"},
		{"across midnight", cfg, "2026-11-20T23:59:59Z", "2026-11-21T00:00:30Z",
			"2026-11-20T23:59:57Z", "2026-11-21T00:00:05Z"},
		{"a future eventTime is taken as the arrival second", cfg, "9000-01-01T00:00:00Z", "2026-11-20T09:20:00.5Z",
			"2026-11-20T09:19:58Z", "2026-11-20T09:20:06Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arrived := now
			if tt.arrived != "" {
				arrived = ts(tt.arrived)
			}
			r := tt.cfg.HintRange(ts(tt.event), arrived)
			if !r.From.Equal(ts(tt.wantFrom)) || !r.To.Equal(ts(tt.wantTo)) {
				t.Fatalf("HintRange = %v, want [%s, %s)", show([]Interval{r}), tt.wantFrom, tt.wantTo)
			}
			if r.From.Location() != time.UTC || r.To.Location() != time.UTC {
				t.Fatalf("range not in UTC")
			}
		})
	}
}

// TestHintRangeCoversEveryWrite is the property the range exists for: a write committed at
// any millisecond of a hinted second, up to Lag later, is inside the range.
func TestHintRangeCoversEveryWrite(t *testing.T) {
	cfg := Defaults()
	event := ts("2026-11-20T09:15:03Z")
	r := cfg.HintRange(event, event.Add(time.Minute))
	for ms := 0; ms < 1000; ms++ {
		write := event.Add(time.Duration(ms) * time.Millisecond)
		for _, late := range []time.Duration{0, cfg.Lag - time.Millisecond} {
			w := write.Add(late)
			if w.Before(r.From) || !w.Before(r.To) {
				t.Fatalf("write at %s not in %v", w, show([]Interval{r}))
			}
		}
	}
}

func TestPlan(t *testing.T) {
	cfg := Config{Window: time.Second, Settle: 10 * time.Second, MaxSpan: 60 * time.Second}
	tl := func(start, frontier float64) Timeline { return Timeline{Start: at(start), Frontier: at(frontier)} }
	tests := []struct {
		name   string
		tl     Timeline
		want   Interval
		now    float64
		limit  int
		chunks []Interval
	}{
		{"nothing wanted", tl(0, 10), Interval{}, 100, 0, nil},
		{"new key: from the first hint up to settled", Timeline{}, iv(0, 8), 100, 0, []Interval{iv(0, 8)}},
		{"new key, not settled yet", Timeline{}, iv(0, 8), 5, 0, nil},
		{"new key, partly settled", Timeline{}, iv(0, 8), 15, 0, []Interval{iv(0, 5)}},
		{"covered: nothing to do", tl(0, 20), iv(5, 15), 100, 0, nil},
		{"forward from the frontier, not from the hint", tl(0, 20), iv(18, 30), 100, 0, []Interval{iv(20, 30)}},
		{"forward up to now-settle only", tl(0, 20), iv(18, 30), 35, 0, []Interval{iv(20, 25)}},
		{"frontier already at settled", tl(0, 25), iv(18, 30), 35, 0, nil},
		{"a far hint: the gap is searched, split at max span", tl(0, 20), iv(150, 158), 200, 0,
			[]Interval{iv(20, 80), iv(80, 140), iv(140, 158)}},
		{"limit leaves the rest for the next run", tl(0, 20), iv(150, 158), 200, 2,
			[]Interval{iv(20, 80), iv(80, 140)}},
		{"backwards first, nearest chunk to start first", tl(100, 120), iv(-30, 125), 200, 0,
			[]Interval{iv(40, 100), iv(-20, 40), iv(-30, -20), iv(120, 125)}},
		{"backwards only", tl(100, 120), iv(90, 98), 200, 0, []Interval{iv(90, 100)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cfg.Plan(tt.tl, tt.want, at(tt.now), tt.limit)
			sameIntervals(t, got, tt.chunks)
			// Each chunk touches the timeline as extended by those before it, and the
			// result covers what was planned.
			cur := tt.tl
			for i, c := range got {
				if c.Span() > cfg.MaxSpan {
					t.Fatalf("chunk %d spans %v > max span", i, c.Span())
				}
				if !cur.IsZero() && (c.To.Before(cur.Start) || c.From.After(cur.Frontier)) {
					t.Fatalf("chunk %d %v does not touch the timeline [%v, %v)", i, show(got[i:i+1]), cur.Start, cur.Frontier)
				}
				cur = cur.Extend(c)
			}
		})
	}
}

func TestTimelineCovers(t *testing.T) {
	tl := Timeline{Start: at(0), Frontier: at(20)}
	for _, tt := range []struct {
		r    Interval
		want bool
	}{
		{iv(0, 20), true}, {iv(5, 8), true}, {iv(15, 21), false}, {iv(-1, 3), false},
	} {
		if got := tl.Covers(tt.r); got != tt.want {
			t.Errorf("Covers(%v) = %v, want %v", show([]Interval{tt.r}), got, tt.want)
		}
	}
	if (Timeline{}).Covers(iv(0, 1)) {
		t.Error("the zero timeline covers something")
	}
}

func TestBatches(t *testing.T) {
	cfg := Config{MaxSpan: 10 * time.Second}
	got := cfg.Batches([]Interval{iv(0, 1), iv(1, 2), iv(2, 3), iv(5, 6), iv(6, 20)})
	sameIntervals(t, got, []Interval{iv(0, 3), iv(5, 15), iv(15, 20)})
	if !cfg.VerifyAt(iv(0, 1)).IsZero() {
		t.Error("VerifyAt with verification off is not zero")
	}
	cfg.VerifyAfter = time.Minute
	if got := cfg.VerifyAt(iv(0, 1)); !got.Equal(at(61)) {
		t.Errorf("VerifyAt = %v", got)
	}
}

func TestValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	err := Config{Window: 0, Settle: -1, MaxSpan: 0, VerifyAfter: -1}.Validate()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"window", "settle", "max span", "verify after"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

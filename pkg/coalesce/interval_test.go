package coalesce

import (
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

// at is an instant n seconds after 09:15:00.
func at(n float64) time.Time {
	return ts("2026-11-20T09:15:00Z").Add(time.Duration(n * float64(time.Second)))
}

func iv(from, to float64) Interval { return Interval{From: at(from), To: at(to)} }

func sameIntervals(t *testing.T, got, want []Interval) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d intervals %v, want %d %v", len(got), show(got), len(want), show(want))
	}
	for i := range got {
		if !got[i].From.Equal(want[i].From) || !got[i].To.Equal(want[i].To) {
			t.Fatalf("interval %d = %v, want %v (all: %v)", i, show(got[i:i+1]), show(want[i:i+1]), show(got))
		}
	}
}

func show(ivs []Interval) []string {
	var out []string
	for _, v := range ivs {
		out = append(out, "["+v.From.Format("15:04:05.000")+", "+v.To.Format("15:04:05.000")+")")
	}
	return out
}

func TestSetAdd(t *testing.T) {
	tests := []struct {
		name string
		add  []Interval
		want []Interval
	}{
		{"one", []Interval{iv(0, 1)}, []Interval{iv(0, 1)}},
		{"empty is ignored", []Interval{iv(1, 1), iv(3, 2)}, nil},
		{"disjoint stay apart, sorted", []Interval{iv(5, 6), iv(0, 1), iv(2, 3)}, []Interval{iv(0, 1), iv(2, 3), iv(5, 6)}},
		{"touching merge", []Interval{iv(0, 1), iv(1, 2)}, []Interval{iv(0, 2)}},
		{"overlapping merge", []Interval{iv(0, 2), iv(1, 3)}, []Interval{iv(0, 3)}},
		{"inside adds nothing", []Interval{iv(0, 10), iv(2, 3)}, []Interval{iv(0, 10)}},
		{"one bridges several", []Interval{iv(0, 1), iv(2, 3), iv(4, 5), iv(7, 8), iv(0.5, 4.5)}, []Interval{iv(0, 5), iv(7, 8)}},
		{"consecutive hints extend one range", []Interval{iv(-2, 6), iv(-1, 7), iv(0, 8), iv(1, 9)}, []Interval{iv(-2, 9)}},
		{"sub-second gap stays", []Interval{iv(0, 1), iv(1.001, 2)}, []Interval{iv(0, 1), iv(1.001, 2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Set
			for _, a := range tt.add {
				s.Add(a)
			}
			sameIntervals(t, s.Intervals(), tt.want)
		})
	}
}

func TestSetRemoveAndHull(t *testing.T) {
	var s Set
	for _, a := range []Interval{iv(0, 2), iv(4, 6), iv(8, 10)} {
		s.Add(a)
	}
	if h := s.Hull(); !h.From.Equal(at(0)) || !h.To.Equal(at(10)) {
		t.Fatalf("hull = %v", show([]Interval{h}))
	}
	s.Remove(iv(1, 5))
	sameIntervals(t, s.Intervals(), []Interval{iv(0, 1), iv(5, 6), iv(8, 10)})
	s.Remove(iv(8, 10))
	sameIntervals(t, s.Intervals(), []Interval{iv(0, 1), iv(5, 6)})
	s.Remove(iv(-100, 100))
	if s.Len() != 0 || !s.Hull().Empty() {
		t.Fatalf("set not empty: %v", show(s.Intervals()))
	}
}

func TestSplit(t *testing.T) {
	sameIntervals(t, iv(0, 10).Split(4*time.Second), []Interval{iv(0, 4), iv(4, 8), iv(8, 10)})
	sameIntervals(t, iv(0, 8).Split(4*time.Second), []Interval{iv(0, 4), iv(4, 8)})
	sameIntervals(t, iv(0, 3).Split(0), []Interval{iv(0, 3)})
	sameIntervals(t, iv(3, 3).Split(time.Second), nil)
	sameIntervals(t, splitBackwards(iv(0, 10), 4*time.Second), []Interval{iv(6, 10), iv(2, 6), iv(0, 2)})
}

func TestContains(t *testing.T) {
	for _, tt := range []struct {
		outer, inner Interval
		want         bool
	}{
		{iv(0, 10), iv(0, 10), true},
		{iv(0, 10), iv(2, 3), true},
		{iv(0, 10), iv(9, 11), false},
		{iv(0, 10), iv(-1, 1), false},
		{iv(0, 10), iv(20, 20), true}, // empty
	} {
		if got := tt.outer.Contains(tt.inner); got != tt.want {
			t.Errorf("%v contains %v = %v, want %v", show([]Interval{tt.outer}), show([]Interval{tt.inner}), got, tt.want)
		}
	}
}

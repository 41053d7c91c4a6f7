package coalesce

import (
	"slices"
	"time"
)

// Interval is the half-open `_lastUpdated` range [From, To).
type Interval struct {
	From, To time.Time
}

// Empty reports whether the interval holds no instant.
func (iv Interval) Empty() bool { return !iv.From.Before(iv.To) }

// Contains reports whether other lies inside iv. An empty other is inside anything.
func (iv Interval) Contains(other Interval) bool {
	return other.Empty() || (!other.From.Before(iv.From) && !other.To.After(iv.To))
}

// Span is the interval's length.
func (iv Interval) Span() time.Duration { return iv.To.Sub(iv.From) }

// Hull is the least interval holding both. An empty interval adds nothing.
func (iv Interval) Hull(other Interval) Interval {
	switch {
	case other.Empty():
		return iv
	case iv.Empty():
		return other
	}
	if other.From.Before(iv.From) {
		iv.From = other.From
	}
	if other.To.After(iv.To) {
		iv.To = other.To
	}
	return iv
}

// Split cuts iv into consecutive intervals of at most span each (the last may be shorter).
// A non-positive span leaves iv whole.
func (iv Interval) Split(span time.Duration) []Interval {
	if iv.Empty() {
		return nil
	}
	if span <= 0 {
		return []Interval{iv}
	}
	var out []Interval
	for from := iv.From; from.Before(iv.To); from = from.Add(span) {
		to := from.Add(span)
		if to.After(iv.To) {
			to = iv.To
		}
		out = append(out, Interval{From: from, To: to})
	}
	return out
}

// Set is a union of intervals, kept sorted and merged: no two of its intervals overlap or
// touch. The zero value is the empty set.
type Set struct {
	ivs []Interval
}

// Add puts iv into the set, merging it with every interval it overlaps or touches.
func (s *Set) Add(iv Interval) {
	if iv.Empty() {
		return
	}
	// First interval that ends at or after iv starts: everything before it stays.
	i, _ := slices.BinarySearchFunc(s.ivs, iv.From, func(e Interval, t time.Time) int { return e.To.Compare(t) })
	j := i
	for j < len(s.ivs) && !s.ivs[j].From.After(iv.To) {
		iv = iv.Hull(s.ivs[j])
		j++
	}
	s.ivs = slices.Replace(s.ivs, i, j, iv)
}

// Intervals returns the set's intervals in order; the caller must not change them.
func (s *Set) Intervals() []Interval { return s.ivs }

// Len is the number of disjoint intervals.
func (s *Set) Len() int { return len(s.ivs) }

// Hull is the least interval holding the whole set (empty for an empty set).
func (s *Set) Hull() Interval {
	if len(s.ivs) == 0 {
		return Interval{}
	}
	return Interval{From: s.ivs[0].From, To: s.ivs[len(s.ivs)-1].To}
}

// Remove takes every instant of cover out of the set, splitting intervals that straddle it.
func (s *Set) Remove(cover Interval) {
	if cover.Empty() {
		return
	}
	out := s.ivs[:0:0]
	for _, iv := range s.ivs {
		if !iv.To.After(cover.From) || !iv.From.Before(cover.To) { // disjoint
			out = append(out, iv)
			continue
		}
		if iv.From.Before(cover.From) {
			out = append(out, Interval{From: iv.From, To: cover.From})
		}
		if iv.To.After(cover.To) {
			out = append(out, Interval{From: cover.To, To: iv.To})
		}
	}
	s.ivs = out
}

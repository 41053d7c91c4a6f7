package coalesce

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the timeline parameters; DESIGN.md explains each. The zero value is not usable:
// start from Defaults.
type Config struct {
	// Window is the cadence: the least time between two searches of one key. A busy key costs
	// one search (plus its pages) per Window, however many hints it gets.
	Window time.Duration
	// Settle is how long after a range's end it may be searched: HealthLake search is
	// eventually consistent, a write shows up in results some seconds after it was made.
	Settle time.Duration
	// Lead widens a hint's range before its second (clock skew between CloudTrail and FHIR).
	Lead time.Duration
	// Lag widens a hint's range after its second: CloudTrail's eventTime is when the call
	// started, meta.lastUpdated is set when it committed.
	Lag time.Duration
	// MaxSpan bounds one search's range, so no query grows towards open-ended.
	MaxSpan time.Duration
	// VerifyAfter is how long after a searched range's end it is verified (counted again and
	// re-read on a mismatch), to find writes the search index showed later than Settle.
	// Zero turns verification off.
	VerifyAfter time.Duration
}

// Defaults suit real HealthLake.
func Defaults() Config {
	return Config{
		Window:      time.Second,
		Settle:      10 * time.Second,
		Lead:        2 * time.Second,
		Lag:         5 * time.Second,
		MaxSpan:     5 * time.Minute,
		VerifyAfter: 60 * time.Second,
	}
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("window must be positive, got %v", c.Window))
	}
	if c.MaxSpan < time.Second {
		errs = append(errs, fmt.Errorf("max span must be at least 1s, got %v", c.MaxSpan))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"settle", c.Settle}, {"lead", c.Lead}, {"lag", c.Lag}, {"verify after", c.VerifyAfter}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// HintRange is the `_lastUpdated` range that a hint at eventTime needs searched: its whole
// second (eventTime has whole seconds, lastUpdated milliseconds), Lead before and Lag after.
// arrived is when the hint reached the consumer: an eventTime later than that (a skewed or
// hostile record) is taken as the arrival second, so no hint can ask for a search of the
// future and hold its record's ack until then.
func (c Config) HintRange(eventTime, arrived time.Time) Interval {
	s := eventTime.UTC().Truncate(time.Second)
	if a := arrived.UTC().Truncate(time.Second); s.After(a) {
		s = a
	}
	return Interval{From: s.Add(-c.Lead), To: s.Add(time.Second + c.Lag)}
}

// Timeline is the part of a key's `_lastUpdated` axis that has been searched: [Start,
// Frontier). The zero Timeline has searched nothing.
type Timeline struct {
	Start, Frontier time.Time
}

// IsZero reports whether nothing has been searched yet.
func (tl Timeline) IsZero() bool { return tl.Start.IsZero() && tl.Frontier.IsZero() }

// Covers reports whether every instant of iv has been searched.
func (tl Timeline) Covers(iv Interval) bool {
	return !tl.IsZero() && Interval{From: tl.Start, To: tl.Frontier}.Contains(iv)
}

// Extend is the timeline once chunk has been searched too. chunk must touch the timeline (as
// every chunk Plan returns does), or the timeline would claim the gap between them.
func (tl Timeline) Extend(chunk Interval) Timeline {
	if tl.IsZero() {
		return Timeline{Start: chunk.From, Frontier: chunk.To}
	}
	h := Interval{From: tl.Start, To: tl.Frontier}.Hull(chunk)
	return Timeline{Start: h.From, Frontier: h.To}
}

// Plan returns the chunks to search, in order, so that the timeline reaches over want as far
// as it has settled at now: first backwards from Start (hints older than anything searched, as
// from a shard that lags behind the others), then forwards from Frontier up to the earlier of
// want's end and now − Settle. Each chunk spans at most MaxSpan and touches the timeline as
// extended by the chunks before it; at most limit chunks are returned (0: no limit), the rest
// wait for the next run. The gap between the frontier and a hint far ahead is searched too:
// the timeline stays contiguous, which is what lets a late hint be acked without a search.
func (c Config) Plan(tl Timeline, want Interval, now time.Time, limit int) []Interval {
	if want.Empty() {
		return nil
	}
	settled := now.Add(-c.Settle)
	var out []Interval
	add := func(ivs ...Interval) bool {
		for _, iv := range ivs {
			if limit > 0 && len(out) >= limit {
				return false
			}
			out = append(out, iv)
		}
		return true
	}
	if tl.IsZero() {
		end := minTime(want.To, settled)
		add(Interval{From: want.From, To: end}.Split(c.MaxSpan)...)
		return out
	}
	if want.From.Before(tl.Start) {
		// Backwards: the chunk next to Start first, so each one touches the timeline.
		back := splitBackwards(Interval{From: want.From, To: tl.Start}, c.MaxSpan)
		if !add(back...) {
			return out
		}
	}
	if end := minTime(want.To, settled); end.After(tl.Frontier) {
		add(Interval{From: tl.Frontier, To: end}.Split(c.MaxSpan)...)
	}
	return out
}

// splitBackwards cuts iv into chunks of at most span, from its end towards its start.
func splitBackwards(iv Interval, span time.Duration) []Interval {
	var out []Interval
	for to := iv.To; to.After(iv.From); to = to.Add(-span) {
		from := to.Add(-span)
		if from.Before(iv.From) {
			from = iv.From
		}
		out = append(out, Interval{From: from, To: to})
	}
	return out
}

// VerifyAt is when a chunk searched now is due for verification (zero: never, verification
// is off).
func (c Config) VerifyAt(chunk Interval) time.Time {
	if c.VerifyAfter == 0 {
		return time.Time{}
	}
	return chunk.To.Add(c.VerifyAfter)
}

// Batches merges due verification ranges that touch into ranges of at most MaxSpan, so
// consecutive small chunks cost one count request instead of one each.
func (c Config) Batches(due []Interval) []Interval {
	var s Set
	for _, iv := range due {
		s.Add(iv)
	}
	var out []Interval
	for _, iv := range s.Intervals() {
		out = append(out, iv.Split(c.MaxSpan)...)
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Key is what timelines are partitioned by.
type Key struct {
	DatastoreID  string
	ResourceType string
}

// String is "datastoreId/resourceType" (both validated, so it has no other slash).
func (k Key) String() string { return k.DatastoreID + "/" + k.ResourceType }

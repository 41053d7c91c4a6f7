package coalesce

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the window parameters; DESIGN.md explains each. The zero value is not usable:
// start from Defaults.
type Config struct {
	// Window is how long a window stays open after its first hint.
	Window time.Duration
	// Settle is how long after the last hint's second the search may run: HealthLake search is
	// eventually consistent, a write shows up in results some seconds after it was made.
	Settle time.Duration
	// Lead widens the range before the earliest hint (clock skew between CloudTrail and FHIR).
	Lead time.Duration
	// Lag widens the range after the latest hint: CloudTrail's eventTime is when the call
	// started, meta.lastUpdated is set when it committed.
	Lag time.Duration
	// Recheck is when a window that found fewer changes than hints searches its range again.
	Recheck time.Duration
	// MaxEvents closes a window early, bounding memory and the time records wait for acks.
	MaxEvents int
	// MaxSpan bounds the time between a window's earliest and latest hint. A hint that would
	// stretch it further (a replay mixing old and new events, a record with a skewed clock)
	// closes the window and opens a new one, so no search range grows towards open-ended.
	// Zero means DefaultMaxSpan.
	MaxSpan time.Duration
}

// DefaultMaxSpan is the MaxSpan used when none is set.
const DefaultMaxSpan = 5 * time.Minute

// Defaults suit real HealthLake.
func Defaults() Config {
	return Config{
		Window:    time.Second,
		Settle:    10 * time.Second,
		Lead:      2 * time.Second,
		Lag:       5 * time.Second,
		Recheck:   60 * time.Second,
		MaxEvents: 10000,
		MaxSpan:   DefaultMaxSpan,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Window <= 0 {
		errs = append(errs, fmt.Errorf("window must be positive, got %v", c.Window))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"settle", c.Settle}, {"lead", c.Lead}, {"lag", c.Lag}, {"recheck", c.Recheck}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", d.name, d.v))
		}
	}
	if c.MaxSpan < 0 {
		errs = append(errs, fmt.Errorf("max window span must not be negative, got %v", c.MaxSpan))
	}
	if c.MaxEvents < 1 {
		errs = append(errs, fmt.Errorf("max window events must be at least 1, got %d", c.MaxEvents))
	}
	return errors.Join(errs...)
}

// Range is the half-open `_lastUpdated` range [from, to) that covers every write behind hints
// whose eventTimes span [minEvent, maxEvent]. eventTime has whole seconds while lastUpdated has
// milliseconds, so the upper end covers the whole last second before the lag is added.
func (c Config) Range(minEvent, maxEvent time.Time) (from, to time.Time) {
	from = minEvent.UTC().Truncate(time.Second).Add(-c.Lead)
	to = maxEvent.UTC().Truncate(time.Second).Add(time.Second + c.Lag)
	return from, to
}

// ReadyAt is the earliest time the search for hints up to maxEvent may run: the end of the
// last hint's second plus the settle delay. Hints that arrive late (a Kinesis backlog) are
// ready at once, so catching up is not slowed down by settle.
func (c Config) ReadyAt(maxEvent time.Time) time.Time {
	return maxEvent.UTC().Truncate(time.Second).Add(time.Second + c.Settle)
}

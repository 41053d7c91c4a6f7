package timeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
)

// Parked is a range whose search failed for a reason retries cannot fix (a 403, a deleted
// datastore, a malformed page…). It was reported on the bus, its records were acked, and it
// is kept here to be retried periodically or on demand. It holds no PHI: a key, a range and a
// reason.
type Parked struct {
	Key      coalesce.Key      `json:"key"`
	Range    coalesce.Interval `json:"range"`
	Reason   string            `json:"reason"`
	Attempts int               `json:"attempts"`
	Since    time.Time         `json:"since"`
	LastTry  time.Time         `json:"lastTry"`
}

func (p Parked) field() string { return p.Key.String() + "/" + member(p.Range) }

// ID names the parked range for the command line: datastore/type/fromMS-toMS.
func (p Parked) ID() string { return p.field() }

// Park records a parked range (or updates one with the same key and range).
func (s *Store) Park(ctx context.Context, p Parked) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("timeline: park: %w", err)
	}
	if err := s.rdb.HSet(ctx, s.opts.Prefix+"parked", p.field(), b).Err(); err != nil {
		return fmt.Errorf("timeline: park %s: %w", p.Key.ResourceType, err)
	}
	return nil
}

// Unpark forgets a parked range (its retry succeeded).
func (s *Store) Unpark(ctx context.Context, p Parked) error {
	if err := s.rdb.HDel(ctx, s.opts.Prefix+"parked", p.field()).Err(); err != nil {
		return fmt.Errorf("timeline: unpark %s: %w", p.Key.ResourceType, err)
	}
	return nil
}

// ListParked returns every parked range, oldest first.
func (s *Store) ListParked(ctx context.Context) ([]Parked, error) {
	m, err := s.rdb.HGetAll(ctx, s.opts.Prefix+"parked").Result()
	if err != nil {
		return nil, fmt.Errorf("timeline: list parked: %w", err)
	}
	out := make([]Parked, 0, len(m))
	for _, v := range m {
		var p Parked
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			continue // not ours
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].field() < out[j].field()
	})
	return out, nil
}

// RetryParkedNow makes every parked range due for its next retry at once (the command
// line's `parked retry`).
func (s *Store) RetryParkedNow(ctx context.Context) (int, error) {
	ps, err := s.ListParked(ctx)
	if err != nil {
		return 0, err
	}
	for _, p := range ps {
		p.LastTry = time.Time{}
		if err := s.Park(ctx, p); err != nil {
			return 0, err
		}
	}
	return len(ps), nil
}

// LeaseParked takes the retry lease of a parked range so one worker retries it; false when
// another worker holds it.
func (s *Store) LeaseParked(ctx context.Context, p Parked) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.opts.Prefix+"parked-lease:"+p.field(), s.opts.Owner, s.opts.LeaseTTL).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("timeline: lease parked %s: %w", p.Key.ResourceType, err)
	}
	return ok, nil
}

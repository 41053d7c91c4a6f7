package timeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
)

// DueKeys returns up to limit keys that have a verification obligation due at now, oldest
// first. Any worker may verify them (under the key's lease).
func (s *Store) DueKeys(ctx context.Context, now time.Time, limit int) ([]coalesce.Key, error) {
	members, err := s.rdb.ZRangeByScore(ctx, s.opts.Prefix+"verify-due", &redis.ZRangeBy{
		Min: "-inf", Max: ms(now), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("timeline: due keys: %w", err)
	}
	out := make([]coalesce.Key, 0, len(members))
	for _, m := range members {
		ds, rt, ok := strings.Cut(m, "/")
		if !ok || ds == "" || rt == "" {
			continue // not ours; nothing to verify
		}
		out = append(out, coalesce.Key{DatastoreID: ds, ResourceType: rt})
	}
	return out, nil
}

// Obligation is a searched chunk waiting for its verification.
type Obligation struct {
	coalesce.Interval
	Due time.Time
}

// Due returns k's obligations due at now, in order.
func (s *Store) Due(ctx context.Context, k coalesce.Key, now time.Time) ([]Obligation, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.key(k, ":verify"), &redis.ZRangeBy{Min: "-inf", Max: ms(now)}).Result()
	if err != nil {
		return nil, fmt.Errorf("timeline: due %s: %w", k.ResourceType, err)
	}
	out := make([]Obligation, 0, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		iv, err := parseMember(m)
		if err != nil {
			return nil, err
		}
		out = append(out, Obligation{Interval: iv, Due: time.UnixMilli(int64(z.Score)).UTC()})
	}
	return out, nil
}

// Verified removes obligations that were met, re-indexes k by its next due obligation (or
// drops it from the index), and forgets the latest versions that no remaining obligation
// can need.
func (s *Store) Verified(ctx context.Context, k coalesce.Key, done []Obligation) error {
	if len(done) > 0 {
		members := make([]any, len(done))
		for i, o := range done {
			members[i] = member(o.Interval)
		}
		if err := s.rdb.ZRem(ctx, s.key(k, ":verify"), members...).Err(); err != nil {
			return fmt.Errorf("timeline: verified %s: %w", k.ResourceType, err)
		}
	}
	rest, err := s.rdb.ZRangeWithScores(ctx, s.key(k, ":verify"), 0, -1).Result()
	if err != nil {
		return fmt.Errorf("timeline: verified %s: %w", k.ResourceType, err)
	}
	if len(rest) == 0 {
		if err := s.rdb.ZRem(ctx, s.opts.Prefix+"verify-due", k.String()).Err(); err != nil {
			return fmt.Errorf("timeline: verified %s: %w", k.ResourceType, err)
		}
		return nil
	}
	// Re-index by the earliest remaining due time; forget latest versions below the earliest
	// remaining chunk (no count will ask about them again).
	var low time.Time
	for _, z := range rest {
		m, _ := z.Member.(string)
		iv, err := parseMember(m)
		if err != nil {
			return err
		}
		if low.IsZero() || iv.From.Before(low) {
			low = iv.From
		}
	}
	pipe := s.rdb.Pipeline()
	pipe.ZAdd(ctx, s.opts.Prefix+"verify-due", redis.Z{Score: rest[0].Score, Member: k.String()})
	pipe.ZRemRangeByScore(ctx, s.key(k, ":latest"), "-inf", "("+ms(low))
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("timeline: verified %s: %w", k.ResourceType, err)
	}
	return nil
}

// Latest is a resource's newest version time that was emitted (or found already emitted).
type Latest struct {
	ID          string
	LastUpdated time.Time
}

// Seen records, for verification's counts, the newest lastUpdated of each resource; a
// resource seen at an older version than recorded keeps the newer one.
func (s *Store) Seen(ctx context.Context, k coalesce.Key, seen []Latest) error {
	if len(seen) == 0 {
		return nil
	}
	zs := make([]redis.Z, len(seen))
	for i, l := range seen {
		zs[i] = redis.Z{Score: float64(l.LastUpdated.UnixMilli()), Member: l.ID}
	}
	pipe := s.rdb.Pipeline()
	pipe.ZAddGT(ctx, s.key(k, ":latest"), zs...)
	pipe.PExpire(ctx, s.key(k, ":latest"), s.opts.StateTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("timeline: seen %s: %w", k.ResourceType, err)
	}
	return nil
}

// Gone records that resources were deleted: a search no longer finds them.
func (s *Store) Gone(ctx context.Context, k coalesce.Key, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([]any, len(ids))
	for i, id := range ids {
		members[i] = id
	}
	if err := s.rdb.ZRem(ctx, s.key(k, ":latest"), members...).Err(); err != nil {
		return fmt.Errorf("timeline: gone %s: %w", k.ResourceType, err)
	}
	return nil
}

// Expected is how many resources a search of iv should find now: those whose newest known
// version has its lastUpdated in iv.
func (s *Store) Expected(ctx context.Context, k coalesce.Key, iv coalesce.Interval) (int, error) {
	n, err := s.rdb.ZCount(ctx, s.key(k, ":latest"), ms(iv.From), "("+ms(iv.To)).Result()
	if err != nil {
		return 0, fmt.Errorf("timeline: expected %s: %w", k.ResourceType, err)
	}
	return int(n), nil
}

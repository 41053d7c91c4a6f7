package timeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
)

// The seconds that some delivered hint's range reached are kept per key as one bitmap per UTC
// day (86,400 bits, 10.8 KB): a change found at a second no hint reached is one whose hint was
// lost (or had not arrived when its range was searched) — the measure of what CloudTrail
// dropped. A bit covers a whole second: a hint range with a fractional end marks the second
// it ends in, so changes are rather taken as hinted than not.

// hintedKey is the bitmap of the key's seconds of the UTC day that starts at day.
func (s *Store) hintedKey(k coalesce.Key, day time.Time) string {
	return s.key(k, ":hinted:"+day.Format("20060102"))
}

// daySeconds calls f for each UTC day that [from, to) reaches, with the day and the range's
// whole seconds within that day as [lo, hi) offsets (hi is at most 86,400).
func daySeconds(iv coalesce.Interval, f func(day time.Time, lo, hi int64)) {
	from := iv.From.UTC().Truncate(time.Second)
	to := iv.To.UTC()
	if t := to.Truncate(time.Second); t.Before(to) {
		to = t.Add(time.Second)
	}
	for day := from.Truncate(24 * time.Hour); day.Before(to); day = day.Add(24 * time.Hour) {
		lo := max(from.Sub(day), 0) / time.Second
		hi := min(to.Sub(day), 24*time.Hour) / time.Second
		if lo < hi {
			f(day, int64(lo), int64(hi))
		}
	}
}

// markHinted records that hints reached the seconds of ivs. A long range (an import's
// hours) costs two commands, not one per second: its whole bytes are set at once.
func (s *Store) markHinted(ctx context.Context, k coalesce.Key, ivs []coalesce.Interval) error {
	pipe := s.rdb.Pipeline()
	days := map[time.Time]bool{}
	for _, iv := range ivs {
		daySeconds(iv, func(day time.Time, lo, hi int64) {
			key := s.hintedKey(k, day)
			days[day] = true
			first, last := (lo+7)/8, hi/8 // the whole bytes: [first, last)
			var bits []any
			if first >= last { // within one byte, or two partial ones
				for sec := lo; sec < hi; sec++ {
					bits = append(bits, "SET", "u1", sec, 1)
				}
			} else {
				for sec := lo; sec < first*8; sec++ {
					bits = append(bits, "SET", "u1", sec, 1)
				}
				for sec := last * 8; sec < hi; sec++ {
					bits = append(bits, "SET", "u1", sec, 1)
				}
				pipe.SetRange(ctx, key, first, strings.Repeat("\xff", int(last-first)))
			}
			if len(bits) > 0 {
				pipe.BitField(ctx, key, bits...)
			}
		})
	}
	if len(days) == 0 {
		return nil
	}
	for day := range days {
		// Kept as long as the key's state may still be searched over that day.
		pipe.Expire(ctx, s.hintedKey(k, day), s.opts.StateTTL+24*time.Hour)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("timeline: mark hinted %s: %w", k.ResourceType, err)
	}
	return nil
}

// Hinted reads which seconds of iv some delivered hint of k reached, and returns a predicate
// for instants within iv (false outside it).
func (s *Store) Hinted(ctx context.Context, k coalesce.Key, iv coalesce.Interval) (func(time.Time) bool, error) {
	type part struct {
		day    time.Time
		lo     int64 // first byte's bit offset
		bitmap []byte
	}
	var parts []part
	pipe := s.rdb.Pipeline()
	var cmds []interface{ Val() string }
	daySeconds(iv, func(day time.Time, lo, hi int64) {
		parts = append(parts, part{day: day, lo: lo / 8 * 8})
		cmds = append(cmds, pipe.GetRange(ctx, s.hintedKey(k, day), lo/8, (hi-1)/8))
	})
	if len(parts) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("timeline: hinted %s: %w", k.ResourceType, err)
		}
	}
	for i := range parts {
		parts[i].bitmap = []byte(cmds[i].Val())
	}
	return func(t time.Time) bool {
		if t.Before(iv.From) || !t.Before(iv.To) {
			return false
		}
		t = t.UTC()
		day := t.Truncate(24 * time.Hour)
		for _, p := range parts {
			if !p.day.Equal(day) {
				continue
			}
			bit := int64(t.Sub(day)/time.Second) - p.lo
			if bit < 0 || bit/8 >= int64(len(p.bitmap)) {
				return false
			}
			return p.bitmap[bit/8]&(0x80>>(bit%8)) != 0
		}
		return false
	}, nil
}

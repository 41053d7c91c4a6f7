package timeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
)

// Defaults of Options.
const (
	DefaultPrefix   = "cdc:tl:"
	DefaultLeaseTTL = 30 * time.Second
	DefaultStateTTL = 24 * time.Hour
)

// Options configures a Store.
type Options struct {
	// Prefix starts every key; use one per deployment sharing a Redis (and per test).
	Prefix string
	// Owner is this worker's token on leases; unique among the workers. Required.
	Owner string
	// LeaseTTL is how long a key's search lease lasts unless renewed: a worker that dies
	// mid-search blocks the key for at most this long. It must exceed one run of the key
	// (its searches and emits), which the pipeline bounds.
	LeaseTTL time.Duration
	// StateTTL is how long a key's timeline is kept after its last hint (the dedup TTL).
	StateTTL time.Duration
}

// Store is the Redis side of the timelines. It is safe for concurrent use.
type Store struct {
	rdb  redis.UniversalClient
	opts Options
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("timeline: nil redis client")
	}
	opts.Prefix = cmp.Or(opts.Prefix, DefaultPrefix)
	opts.LeaseTTL = cmp.Or(opts.LeaseTTL, DefaultLeaseTTL)
	opts.StateTTL = cmp.Or(opts.StateTTL, DefaultStateTTL)
	switch {
	case opts.Owner == "":
		return nil, errors.New("timeline: an owner is required")
	case opts.LeaseTTL < time.Millisecond:
		return nil, fmt.Errorf("timeline: lease TTL %v: want at least 1ms", opts.LeaseTTL)
	case opts.StateTTL < opts.LeaseTTL:
		return nil, fmt.Errorf("timeline: state TTL %v is shorter than the lease TTL %v", opts.StateTTL, opts.LeaseTTL)
	}
	return &Store{rdb: rdb, opts: opts}, nil
}

// Owner is this Store's lease token.
func (s *Store) Owner() string { return s.opts.Owner }

// LeaseTTL is how long a lease lasts unless renewed.
func (s *Store) LeaseTTL() time.Duration { return s.opts.LeaseTTL }

func (s *Store) key(k coalesce.Key, suffix string) string {
	return s.opts.Prefix + "{" + k.String() + "}" + suffix
}

func ms(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMilli(), 10)
}

func fromMS(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("timeline: bad time %q in Redis: %w", v, err)
	}
	return time.UnixMilli(n).UTC(), nil
}

func member(iv coalesce.Interval) string { return ms(iv.From) + "-" + ms(iv.To) }

func parseMember(m string) (coalesce.Interval, error) {
	// A history hint's member is "from-to#n" (a delete) or "from-to#bn" (a Bundle): n tells
	// hints with the same range apart.
	m, _, _ = strings.Cut(m, "#")
	a, b, ok := strings.Cut(m, "-")
	if !ok {
		return coalesce.Interval{}, fmt.Errorf("timeline: bad range %q in Redis", m)
	}
	from, err := fromMS(a)
	if err != nil {
		return coalesce.Interval{}, err
	}
	to, err := fromMS(b)
	if err != nil {
		return coalesce.Interval{}, err
	}
	return coalesce.Interval{From: from, To: to}, nil
}

// State is a key's shared state as one Sync saw it.
type State struct {
	Timeline coalesce.Timeline
	// Want is the hull of every range any worker's hints asked for.
	Want coalesce.Interval
	// Leased says this worker holds the key's search lease (taken or renewed by the Sync).
	Leased bool
	// Region and Account are the datastore's, from the hints (for the events' datastore
	// ARN when this worker verifies a key it has no hints for).
	Region, Account string
	// SweepTo is how far sweeps want the timeline to reach (zero: no sweep yet). The part
	// beyond Want is no hint's: it is counted before it is read.
	SweepTo time.Time
}

// Target is the range the timeline must reach over: what hints want, extended to SweepTo.
func (st State) Target() coalesce.Interval {
	if st.SweepTo.IsZero() || !st.SweepTo.After(st.Want.To) {
		return st.Want
	}
	return st.Want.Hull(coalesce.Interval{From: st.SweepTo.Add(-time.Millisecond), To: st.SweepTo})
}

// syncScript widens the key's wanted range, records delete ranges, takes or renews the lease
// when asked, keeps the state alive, and returns the state.
//
//	KEYS: hash, lease, dels
//	ARGV: owner, leaseMS, stateMS, wantFrom, wantTo, tryLease, region, account, sweepTo,
//	      then (from, to, kind) triples of history hints (kind '' for a delete, 'b' for a
//	      Bundle)
var syncScript = redis.NewScript(`
local wf, wt = tonumber(ARGV[4]), tonumber(ARGV[5])
if wf and wt and wt > wf then
  local cur = redis.call('HMGET', KEYS[1], 'ws', 'wt')
  if not cur[1] or tonumber(cur[1]) > wf then redis.call('HSET', KEYS[1], 'ws', ARGV[4]) end
  if not cur[2] or tonumber(cur[2]) < wt then redis.call('HSET', KEYS[1], 'wt', ARGV[5]) end
end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'r', ARGV[7], 'a', ARGV[8]) end
local sw = tonumber(ARGV[9])
if sw then
  local cur = tonumber(redis.call('HGET', KEYS[1], 'sw'))
  if not cur or cur < sw then redis.call('HSET', KEYS[1], 'sw', ARGV[9]) end
end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
for i = 10, #ARGV, 3 do
  -- One member per hint, so that two deletes in the same second are counted as two.
  local n = redis.call('HINCRBY', KEYS[1], 'dn', 1)
  redis.call('ZADD', KEYS[3], ARGV[i+1], ARGV[i] .. '-' .. ARGV[i+1] .. '#' .. ARGV[i+2] .. n)
end
if #ARGV >= 10 then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
local leased = 0
if ARGV[6] == '1' then
  local v = redis.call('GET', KEYS[2])
  if v == ARGV[1] then
    redis.call('PEXPIRE', KEYS[2], ARGV[2]); leased = 1
  elseif not v then
    redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]); leased = 1
  end
end
local st = redis.call('HMGET', KEYS[1], 's', 'f', 'ws', 'wt', 'r', 'a', 'sw')
return {st[1] or '', st[2] or '', st[3] or '', st[4] or '', leased, st[5] or '', st[6] or '', st[7] or ''}
`)

// Want is what a worker's hints ask of a key's timeline.
type Want struct {
	// Range is the hull of the hints' ranges (empty: nothing new).
	Range coalesce.Interval
	// Deletes are the ranges of delete hints: they need a history read too, and each must
	// be found there.
	Deletes []coalesce.Interval
	// Bundles are the ranges of hints that may have deleted any number of resources of the
	// key, or none (a Bundle, a typeless write): history is read for them too, but finding
	// no delete there is no shortfall.
	Bundles []coalesce.Interval
	// Hinted are the hints' ranges themselves (Range is only their hull), recorded so that a
	// change found where no hint reached is known as one whose hint was lost (see Hinted).
	Hinted []coalesce.Interval
	// Region and Account of the datastore, from the hints ("" keeps what is stored).
	Region, Account string
	// SweepTo asks for the timeline to reach this far even where no hint asks for it (a
	// sweep, so that changes whose hints were lost are found). Zero: nothing.
	SweepTo time.Time
}

// Sync records what this worker's hints want of k, then returns the key's state. With
// tryLease it also takes the key's search lease if nobody holds it, or renews it if this
// worker does.
func (s *Store) Sync(ctx context.Context, k coalesce.Key, w Want, tryLease bool) (State, error) {
	want, deletes := w.Range, w.Deletes
	// Before the state: a search that the sync lets start must see these seconds as hinted.
	if err := s.markHinted(ctx, k, w.Hinted); err != nil {
		return State{}, err
	}
	args := []any{s.opts.Owner, s.opts.LeaseTTL.Milliseconds(), s.opts.StateTTL.Milliseconds(), "", "", "0", w.Region, w.Account, ms(w.SweepTo)}
	if !want.Empty() {
		args[3], args[4] = ms(want.From), ms(want.To)
	}
	if tryLease {
		args[5] = "1"
	}
	for _, d := range deletes {
		if !d.Empty() {
			args = append(args, ms(d.From), ms(d.To), "")
		}
	}
	for _, b := range w.Bundles {
		if !b.Empty() {
			args = append(args, ms(b.From), ms(b.To), "b")
		}
	}
	res, err := syncScript.Run(ctx, s.rdb, []string{s.key(k, ""), s.key(k, ":lease"), s.key(k, ":dels")}, args...).Slice()
	if err != nil {
		return State{}, fmt.Errorf("timeline: sync %s: %w", k.ResourceType, err)
	}
	if len(res) != 8 {
		return State{}, fmt.Errorf("timeline: sync %s: %d values from the script", k.ResourceType, len(res))
	}
	var t [4]time.Time
	for i := range t {
		str, _ := res[i].(string)
		if t[i], err = fromMS(str); err != nil {
			return State{}, err
		}
	}
	leased, _ := res[4].(int64)
	region, _ := res[5].(string)
	account, _ := res[6].(string)
	swStr, _ := res[7].(string)
	sweepTo, err := fromMS(swStr)
	if err != nil {
		return State{}, err
	}
	return State{
		Timeline: coalesce.Timeline{Start: t[0], Frontier: t[1]},
		Want:     coalesce.Interval{From: t[2], To: t[3]},
		Leased:   leased == 1,
		Region:   region, Account: account,
		SweepTo: sweepTo,
	}, nil
}

// ErrLeaseLost means this worker no longer holds the key's lease: another worker searches it
// now. Nothing was written.
var ErrLeaseLost = errors.New("timeline: lease lost")

// ErrConflict means the timeline moved since it was read: read it again. Nothing was written.
var ErrConflict = errors.New("timeline: moved meanwhile")

// advanceScript moves the timeline by compare-and-set while the lease is ours, and records
// the chunk's verification obligation in the same step.
//
//	KEYS: hash, lease, verify
//	ARGV: owner, oldStart, oldFrontier, newStart, newFrontier, member, verifyAtMS or '', stateMS
var advanceScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local st = redis.call('HMGET', KEYS[1], 's', 'f')
if (st[1] or '') ~= ARGV[2] or (st[2] or '') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 's', ARGV[4], 'f', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[8])
end
redis.call('PEXPIRE', KEYS[2], ARGV[9])
return 1
`)

// Advance extends the key's timeline from old by chunk (which must touch it), renews the
// lease, and — when verifyAt is not zero — records that chunk is to be verified then. It
// fails with ErrLeaseLost or ErrConflict, writing nothing, when the lease is not ours or the
// timeline is no longer old.
func (s *Store) Advance(ctx context.Context, k coalesce.Key, old coalesce.Timeline, chunk coalesce.Interval, verifyAt time.Time) error {
	next := old.Extend(chunk)
	if !verifyAt.IsZero() {
		// Index first: an index entry without an obligation costs one empty look; an
		// obligation without an index entry would be found only while the key is busy.
		if err := s.rdb.ZAddLT(ctx, s.opts.Prefix+"verify-due", redis.Z{Score: float64(verifyAt.UnixMilli()), Member: k.String()}).Err(); err != nil {
			return fmt.Errorf("timeline: advance %s: %w", k.ResourceType, err)
		}
	}
	n, err := advanceScript.Run(ctx, s.rdb, []string{s.key(k, ""), s.key(k, ":lease"), s.key(k, ":verify")},
		s.opts.Owner, ms(old.Start), ms(old.Frontier), ms(next.Start), ms(next.Frontier),
		member(chunk), ms(verifyAt), s.opts.StateTTL.Milliseconds(), s.opts.LeaseTTL.Milliseconds()).Int()
	switch {
	case err != nil:
		return fmt.Errorf("timeline: advance %s: %w", k.ResourceType, err)
	case n == -1:
		return ErrLeaseLost
	case n == 0:
		return ErrConflict
	}
	return nil
}

// releaseScript deletes the lease only while it is ours.
var releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// Release gives the key's lease up, if this worker holds it, so another worker may search at
// once rather than after the lease TTL.
func (s *Store) Release(ctx context.Context, k coalesce.Key) error {
	if err := releaseScript.Run(ctx, s.rdb, []string{s.key(k, ":lease")}, s.opts.Owner).Err(); err != nil {
		return fmt.Errorf("timeline: release %s: %w", k.ResourceType, err)
	}
	return nil
}

// HistoryHint is a recorded hint whose range needs a history read: a delete, or a Bundle
// (Mixed) that may hold deletes.
type HistoryHint struct {
	Range coalesce.Interval
	// Bundle: the hint may have deleted any number of resources, or none.
	Bundle bool
	member string // the hint's own member in Redis, for ForgetDeletes
}

// Deletes returns the history hints recorded for k whose ranges reach into iv, one per hint
// (two hints with the same range are two elements).
func (s *Store) Deletes(ctx context.Context, k coalesce.Key, iv coalesce.Interval) ([]HistoryHint, error) {
	lo := "-inf"
	if !iv.From.IsZero() {
		lo = "(" + ms(iv.From)
	}
	hs, err := s.historyHints(ctx, k, &redis.ZRangeBy{Min: lo, Max: "+inf"})
	if err != nil {
		return nil, err
	}
	out := hs[:0]
	for _, h := range hs {
		if h.Range.From.Before(iv.To) {
			out = append(out, h)
		}
	}
	return out, nil
}

// DeletesBefore returns the history hints recorded for k whose ranges end at or before t.
func (s *Store) DeletesBefore(ctx context.Context, k coalesce.Key, t time.Time) ([]HistoryHint, error) {
	return s.historyHints(ctx, k, &redis.ZRangeBy{Min: "-inf", Max: ms(t)})
}

// historyHints reads the hints whose range ends (the member's score) within by.
func (s *Store) historyHints(ctx context.Context, k coalesce.Key, by *redis.ZRangeBy) ([]HistoryHint, error) {
	members, err := s.rdb.ZRangeByScore(ctx, s.key(k, ":dels"), by).Result()
	if err != nil {
		return nil, fmt.Errorf("timeline: deletes %s: %w", k.ResourceType, err)
	}
	out := make([]HistoryHint, 0, len(members))
	for _, m := range members {
		d, err := parseMember(m)
		if err != nil {
			return nil, err
		}
		_, n, _ := strings.Cut(m, "#")
		out = append(out, HistoryHint{Range: d, Bundle: strings.HasPrefix(n, "b"), member: m})
	}
	return out, nil
}

// ForgetDeletes drops history hints that are settled (their history was read and what it
// lacked was reported): exactly the hints given, as Deletes returned them — a hint recorded
// meanwhile with the same range stays, to be settled on its own.
func (s *Store) ForgetDeletes(ctx context.Context, k coalesce.Key, hs []HistoryHint) error {
	members := make([]any, 0, len(hs))
	for _, h := range hs {
		if h.member != "" {
			members = append(members, h.member)
		}
	}
	if len(members) == 0 {
		return nil
	}
	if err := s.rdb.ZRem(ctx, s.key(k, ":dels"), members...).Err(); err != nil {
		return fmt.Errorf("timeline: forget deletes %s: %w", k.ResourceType, err)
	}
	return nil
}

// NoteTypes records that the datastore has resources of these types (seen in a hint or a
// search), for the hints that name no type: a Bundle, a mutation without a resourceType, an
// import. Each stays known for the state TTL after it was last noted.
func (s *Store) NoteTypes(ctx context.Context, datastoreID string, now time.Time, types ...string) error {
	if len(types) == 0 {
		return nil
	}
	zs := make([]redis.Z, len(types))
	for i, t := range types {
		zs[i] = redis.Z{Score: float64(now.UnixMilli()), Member: t}
	}
	key := s.opts.Prefix + "types:{" + datastoreID + "}"
	pipe := s.rdb.Pipeline()
	pipe.ZAdd(ctx, key, zs...)
	pipe.PExpire(ctx, key, s.opts.StateTTL)
	pipe.ZAdd(ctx, s.opts.Prefix+"datastores", redis.Z{Score: float64(now.UnixMilli()), Member: datastoreID})
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("timeline: note types: %w", err)
	}
	return nil
}

// KnownTypes lists the types noted for the datastore within the state TTL before now.
func (s *Store) KnownTypes(ctx context.Context, datastoreID string, now time.Time) ([]string, error) {
	key := s.opts.Prefix + "types:{" + datastoreID + "}"
	out, err := s.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: ms(now.Add(-s.opts.StateTTL)), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("timeline: known types: %w", err)
	}
	return out, nil
}

// KnownDatastores lists the datastores with a type noted within the state TTL before now.
func (s *Store) KnownDatastores(ctx context.Context, now time.Time) ([]string, error) {
	out, err := s.rdb.ZRangeByScore(ctx, s.opts.Prefix+"datastores", &redis.ZRangeBy{Min: ms(now.Add(-s.opts.StateTTL)), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("timeline: known datastores: %w", err)
	}
	return out, nil
}

// LeaseSweep takes the datastore's sweep for ttl: one worker marks its keys per interval.
func (s *Store) LeaseSweep(ctx context.Context, datastoreID string, ttl time.Duration) (bool, error) {
	return s.leaseDatastore(ctx, "sweep", datastoreID, ttl)
}

// LeaseWatermark takes the datastore's watermark for ttl: one worker publishes it per
// interval.
func (s *Store) LeaseWatermark(ctx context.Context, datastoreID string, ttl time.Duration) (bool, error) {
	return s.leaseDatastore(ctx, "watermark", datastoreID, ttl)
}

func (s *Store) leaseDatastore(ctx context.Context, what, datastoreID string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.opts.Prefix+what+"-lease:{"+datastoreID+"}", s.opts.Owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("timeline: %s lease: %w", what, err)
	}
	return ok, nil
}

// Final is the time before which everything of k was searched and verified: the frontier,
// or the start of the oldest range still waiting for its verification. Zero when nothing was
// searched.
func (s *Store) Final(ctx context.Context, k coalesce.Key) (time.Time, error) {
	pipe := s.rdb.Pipeline()
	f := pipe.HGet(ctx, s.key(k, ""), "f")
	due := pipe.ZRange(ctx, s.key(k, ":verify"), 0, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return time.Time{}, fmt.Errorf("timeline: final %s: %w", k.ResourceType, err)
	}
	final, err := fromMS(f.Val())
	if err != nil {
		return time.Time{}, err
	}
	for _, m := range due.Val() {
		iv, err := parseMember(m)
		if err != nil {
			return time.Time{}, err
		}
		if iv.From.Before(final) {
			final = iv.From
		}
	}
	return final, nil
}

// watermarkScript keeps a datastore's published watermark monotonic: it stores ARGV[1]
// only if it is later, and returns the stored value.
var watermarkScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]))
local new = tonumber(ARGV[1])
if not cur or new > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); return ARGV[1] end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return tostring(cur)
`)

// RaiseWatermark records t as the datastore's watermark unless a later one was published
// (by any worker, before any restart), and returns the watermark to publish: never earlier
// than one published before.
func (s *Store) RaiseWatermark(ctx context.Context, datastoreID string, t time.Time) (time.Time, error) {
	v, err := watermarkScript.Run(ctx, s.rdb, []string{s.opts.Prefix + "watermark:{" + datastoreID + "}"},
		ms(t), s.opts.StateTTL.Milliseconds()).Text()
	if err != nil {
		return time.Time{}, fmt.Errorf("timeline: watermark: %w", err)
	}
	return fromMS(v)
}

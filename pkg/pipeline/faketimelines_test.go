package pipeline_test

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// fakeTimelines is package timeline's Redis state in memory, with the same semantics as its
// scripts: times kept in milliseconds, leases with a TTL on the fake clock, the frontier moved
// by compare-and-set under the lease, obligations indexed by due time (ZADD LT), latest
// versions by ZADD GT, parked ranges and their retry leases, known types. Each worker talks
// to it through its own view (as), which carries its owner token, as a timeline.Store does.
// The state TTL is long in every test and not modelled.
type fakeTimelines struct {
	clock    *clocktest.Fake
	leaseTTL time.Duration
	stateTTL time.Duration

	mu          sync.Mutex
	keys        map[coalesce.Key]*fakeKey
	verifyDue   map[coalesce.Key]int64 // the verify-due index: key → score (ms)
	parked      map[string]timeline.Parked
	parkedLease map[string]lease
	types       map[string]map[string]int64 // datastore → type → noted at (ms)
	sweepLease  map[string]int64            // datastore → expires (ms)
	wmLease     map[string]int64            // datastore → expires (ms)
	watermark   map[string]int64            // datastore → published (ms)

	// fail, if set, is asked before every call; an error it returns is the call's (as
	// Redis being unreachable), and nothing is written.
	fail func(op string) error
}

type lease struct {
	owner   string
	expires int64 // ms
}

type fakeKey struct {
	start, frontier int64 // ms; 0: unset
	ws, wt          int64
	sw              int64 // sweep target (ms)
	region, account string
	lease           lease
	dels            map[string]int   // member "from-to" → delete hints with that range
	bundles         map[string]int   // member "from-to" → Bundle hints with that range
	hinted          map[int64]bool   // unix second → a hint's range reached it
	verify          map[string]int64 // member → due (ms)
	latest          map[string]int64 // resource id → lastUpdated (ms)
}

func newFakeTimelines(c *clocktest.Fake) *fakeTimelines {
	return &fakeTimelines{
		clock: c, leaseTTL: 5 * time.Second, stateTTL: 24 * time.Hour,
		keys: make(map[coalesce.Key]*fakeKey), verifyDue: make(map[coalesce.Key]int64),
		parked: make(map[string]timeline.Parked), parkedLease: make(map[string]lease),
		types: make(map[string]map[string]int64), sweepLease: make(map[string]int64),
		wmLease: make(map[string]int64), watermark: make(map[string]int64),
	}
}

// as is the view of one worker, whose leases carry owner.
func (f *fakeTimelines) as(owner string) *tlView { return &tlView{f: f, owner: owner} }

// redisDown is what a Store returns when Redis cannot be reached (wrapped as it wraps).
func redisDown(op string) error {
	return fmt.Errorf("timeline: %s: %w", op, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func member(iv coalesce.Interval) string { return fmt.Sprintf("%d-%d", ms(iv.From), ms(iv.To)) }

func parseMember(m string) coalesce.Interval {
	var a, b int64
	fmt.Sscanf(m, "%d-%d", &a, &b)
	return coalesce.Interval{From: fromMS(a), To: fromMS(b)}
}

func (f *fakeTimelines) enter(op string) (func(), error) {
	f.mu.Lock()
	if f.fail != nil {
		if err := f.fail(op); err != nil {
			f.mu.Unlock()
			return nil, err
		}
	}
	return f.mu.Unlock, nil
}

func (f *fakeTimelines) key(k coalesce.Key) *fakeKey {
	fk := f.keys[k]
	if fk == nil {
		fk = &fakeKey{dels: map[string]int{}, bundles: map[string]int{}, hinted: map[int64]bool{}, verify: map[string]int64{}, latest: map[string]int64{}}
		f.keys[k] = fk
	}
	return fk
}

func (f *fakeTimelines) nowMS() int64 { return f.clock.Now().UnixMilli() }

// state is k's timeline as Redis holds it.
func (f *fakeTimelines) state(k coalesce.Key) coalesce.Timeline {
	f.mu.Lock()
	defer f.mu.Unlock()
	fk := f.key(k)
	return coalesce.Timeline{Start: fromMS(fk.start), Frontier: fromMS(fk.frontier)}
}

// obligations are k's verification obligations, due or not.
func (f *fakeTimelines) obligations(k coalesce.Key) []coalesce.Interval {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []coalesce.Interval
	for m := range f.key(k).verify {
		out = append(out, parseMember(m))
	}
	slices.SortFunc(out, func(a, b coalesce.Interval) int { return a.From.Compare(b.From) })
	return out
}

func (f *fakeTimelines) parkedRanges() []timeline.Parked {
	v := f.as("inspector")
	ps, _ := v.listParked()
	return ps
}

type tlView struct {
	f     *fakeTimelines
	owner string
	// down cuts this worker off from Redis (a crashed process writes nothing more).
	down atomic.Bool
}

func (v *tlView) enter(op string) (func(), error) {
	if v.down.Load() {
		return nil, redisDown(op)
	}
	return v.f.enter(op)
}

func (v *tlView) Sync(_ context.Context, k coalesce.Key, w timeline.Want, tryLease bool) (timeline.State, error) {
	unlock, err := v.enter("sync")
	if err != nil {
		return timeline.State{}, err
	}
	defer unlock()
	fk := v.f.key(k)
	if !w.Range.Empty() {
		if wf := ms(w.Range.From); fk.ws == 0 || fk.ws > wf {
			fk.ws = wf
		}
		if wt := ms(w.Range.To); fk.wt == 0 || fk.wt < wt {
			fk.wt = wt
		}
	}
	if w.Region != "" {
		fk.region, fk.account = w.Region, w.Account
	}
	if sw := ms(w.SweepTo); !w.SweepTo.IsZero() && sw > fk.sw {
		fk.sw = sw
	}
	for _, d := range w.Deletes {
		if !d.Empty() {
			fk.dels[member(d)]++ // one per hint, as the store counts them
		}
	}
	for _, h := range w.Hinted {
		// Whole seconds, as the store keeps them: a range ending inside a second reaches it.
		for s := h.From.Unix(); time.Unix(s, 0).Before(h.To); s++ {
			fk.hinted[s] = true
		}
	}
	for _, b := range w.Bundles {
		if !b.Empty() {
			fk.bundles[member(b)]++
		}
	}
	leased := false
	if tryLease {
		now := v.f.nowMS()
		held := fk.lease.owner != "" && fk.lease.expires > now
		switch {
		case held && fk.lease.owner == v.owner:
			fk.lease.expires, leased = now+v.f.leaseTTL.Milliseconds(), true
		case !held:
			fk.lease, leased = lease{owner: v.owner, expires: now + v.f.leaseTTL.Milliseconds()}, true
		}
	}
	return timeline.State{
		Timeline: coalesce.Timeline{Start: fromMS(fk.start), Frontier: fromMS(fk.frontier)},
		Want:     coalesce.Interval{From: fromMS(fk.ws), To: fromMS(fk.wt)},
		Leased:   leased, Region: fk.region, Account: fk.account,
		SweepTo: fromMS(fk.sw),
	}, nil
}

func (v *tlView) Advance(_ context.Context, k coalesce.Key, old coalesce.Timeline, chunk coalesce.Interval, verifyAt time.Time) error {
	unlock, err := v.enter("advance")
	if err != nil {
		return err
	}
	defer unlock()
	if !verifyAt.IsZero() {
		// The index first, outside the script, as the Store does (ZADD LT).
		if cur, ok := v.f.verifyDue[k]; !ok || ms(verifyAt) < cur {
			v.f.verifyDue[k] = ms(verifyAt)
		}
	}
	fk := v.f.key(k)
	now := v.f.nowMS()
	if fk.lease.owner != v.owner || fk.lease.expires <= now {
		return timeline.ErrLeaseLost
	}
	if fk.start != ms(old.Start) || fk.frontier != ms(old.Frontier) {
		return timeline.ErrConflict
	}
	next := old.Extend(chunk)
	fk.start, fk.frontier = ms(next.Start), ms(next.Frontier)
	if !verifyAt.IsZero() {
		fk.verify[member(chunk)] = ms(verifyAt)
	}
	fk.lease.expires = now + v.f.leaseTTL.Milliseconds()
	return nil
}

func (v *tlView) Release(_ context.Context, k coalesce.Key) error {
	unlock, err := v.enter("release")
	if err != nil {
		return err
	}
	defer unlock()
	fk := v.f.key(k)
	if fk.lease.owner == v.owner && fk.lease.expires > v.f.nowMS() {
		fk.lease = lease{}
	}
	return nil
}

func (v *tlView) Deletes(_ context.Context, k coalesce.Key, iv coalesce.Interval) ([]timeline.HistoryHint, error) {
	return v.historyHints("deletes", k, func(d coalesce.Interval) bool { return ms(d.To) > ms(iv.From) && d.From.Before(iv.To) })
}

func (v *tlView) DeletesBefore(_ context.Context, k coalesce.Key, t time.Time) ([]timeline.HistoryHint, error) {
	return v.historyHints("deletes-before", k, func(d coalesce.Interval) bool { return !d.To.After(t) })
}

func (v *tlView) historyHints(op string, k coalesce.Key, keep func(coalesce.Interval) bool) ([]timeline.HistoryHint, error) {
	unlock, err := v.enter(op)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []timeline.HistoryHint
	fk := v.f.key(k)
	for bundle, members := range map[bool]map[string]int{false: fk.dels, true: fk.bundles} {
		for m, n := range members {
			if d := parseMember(m); keep(d) {
				for range n {
					out = append(out, timeline.HistoryHint{Range: d, Bundle: bundle})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b timeline.HistoryHint) int {
		return cmp.Or(a.Range.To.Compare(b.Range.To), a.Range.From.Compare(b.Range.From))
	})
	return out, nil
}

func (v *tlView) ForgetDeletes(_ context.Context, k coalesce.Key, hs []timeline.HistoryHint) error {
	if len(hs) == 0 {
		return nil
	}
	unlock, err := v.enter("forget-deletes")
	if err != nil {
		return err
	}
	defer unlock()
	fk := v.f.key(k)
	for _, h := range hs {
		// One hint each, as the store removes exactly the members it returned.
		counts := map[bool]map[string]int{false: fk.dels, true: fk.bundles}[h.Bundle]
		if m := member(h.Range); counts[m] > 1 {
			counts[m]--
		} else {
			delete(counts, m)
		}
	}
	return nil
}

func (v *tlView) DueKeys(_ context.Context, now time.Time, limit int) ([]coalesce.Key, error) {
	unlock, err := v.enter("due-keys")
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []coalesce.Key
	for k, score := range v.f.verifyDue {
		if score <= ms(now) {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b coalesce.Key) int {
		return cmp.Or(cmp.Compare(v.f.verifyDue[a], v.f.verifyDue[b]), cmp.Compare(a.String(), b.String()))
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (v *tlView) Due(_ context.Context, k coalesce.Key, now time.Time) ([]timeline.Obligation, error) {
	unlock, err := v.enter("due")
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []timeline.Obligation
	for m, due := range v.f.key(k).verify {
		if due <= ms(now) {
			out = append(out, timeline.Obligation{Interval: parseMember(m), Due: fromMS(due)})
		}
	}
	slices.SortFunc(out, func(a, b timeline.Obligation) int {
		return cmp.Or(a.Due.Compare(b.Due), cmp.Compare(member(a.Interval), member(b.Interval)))
	})
	return out, nil
}

func (v *tlView) Verified(_ context.Context, k coalesce.Key, done []timeline.Obligation) error {
	unlock, err := v.enter("verified")
	if err != nil {
		return err
	}
	defer unlock()
	fk := v.f.key(k)
	for _, o := range done {
		delete(fk.verify, member(o.Interval))
	}
	if len(fk.verify) == 0 {
		delete(v.f.verifyDue, k)
		return nil
	}
	var low, first int64
	for m, due := range fk.verify {
		if from := ms(parseMember(m).From); low == 0 || from < low {
			low = from
		}
		if first == 0 || due < first {
			first = due
		}
	}
	v.f.verifyDue[k] = first
	for id, lu := range fk.latest {
		if lu < low {
			delete(fk.latest, id)
		}
	}
	return nil
}

func (v *tlView) Seen(_ context.Context, k coalesce.Key, seen []timeline.Latest) error {
	if len(seen) == 0 {
		return nil
	}
	unlock, err := v.enter("seen")
	if err != nil {
		return err
	}
	defer unlock()
	fk := v.f.key(k)
	for _, l := range seen {
		if cur, ok := fk.latest[l.ID]; !ok || ms(l.LastUpdated) > cur { // ZADD GT
			fk.latest[l.ID] = ms(l.LastUpdated)
		}
	}
	return nil
}

func (v *tlView) Hinted(_ context.Context, k coalesce.Key, iv coalesce.Interval) (func(time.Time) bool, error) {
	unlock, err := v.enter("hinted")
	if err != nil {
		return nil, err
	}
	defer unlock()
	seconds := map[int64]bool{}
	for s, ok := range v.f.key(k).hinted {
		if ok && !time.Unix(s+1, 0).Before(iv.From) && time.Unix(s, 0).Before(iv.To) {
			seconds[s] = true
		}
	}
	return func(t time.Time) bool {
		return !t.Before(iv.From) && t.Before(iv.To) && seconds[t.Unix()]
	}, nil
}

func (v *tlView) Gone(_ context.Context, k coalesce.Key, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	unlock, err := v.enter("gone")
	if err != nil {
		return err
	}
	defer unlock()
	for _, id := range ids {
		delete(v.f.key(k).latest, id)
	}
	return nil
}

func (v *tlView) Expected(_ context.Context, k coalesce.Key, iv coalesce.Interval) (int, error) {
	unlock, err := v.enter("expected")
	if err != nil {
		return 0, err
	}
	defer unlock()
	n := 0
	for _, lu := range v.f.key(k).latest {
		if lu >= ms(iv.From) && lu < ms(iv.To) {
			n++
		}
	}
	return n, nil
}

func (v *tlView) Park(_ context.Context, p timeline.Parked) error {
	unlock, err := v.enter("park")
	if err != nil {
		return err
	}
	defer unlock()
	v.f.parked[p.ID()] = p
	return nil
}

func (v *tlView) Unpark(_ context.Context, p timeline.Parked) error {
	unlock, err := v.enter("unpark")
	if err != nil {
		return err
	}
	defer unlock()
	delete(v.f.parked, p.ID())
	return nil
}

func (v *tlView) ListParked(context.Context) ([]timeline.Parked, error) {
	unlock, err := v.enter("list-parked")
	if err != nil {
		return nil, err
	}
	defer unlock()
	return v.listParkedLocked(), nil
}

func (v *tlView) listParked() ([]timeline.Parked, error) {
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	return v.listParkedLocked(), nil
}

func (v *tlView) listParkedLocked() []timeline.Parked {
	out := make([]timeline.Parked, 0, len(v.f.parked))
	for _, p := range v.f.parked {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b timeline.Parked) int { return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.ID(), b.ID())) })
	return out
}

func (v *tlView) LeaseParked(_ context.Context, p timeline.Parked) (bool, error) {
	unlock, err := v.enter("lease-parked")
	if err != nil {
		return false, err
	}
	defer unlock()
	now := v.f.nowMS()
	if l, ok := v.f.parkedLease[p.ID()]; ok && l.expires > now {
		return false, nil // SET NX: taken, even by this owner
	}
	v.f.parkedLease[p.ID()] = lease{owner: v.owner, expires: now + v.f.leaseTTL.Milliseconds()}
	return true, nil
}

func (v *tlView) NoteTypes(_ context.Context, datastoreID string, now time.Time, types ...string) error {
	if len(types) == 0 {
		return nil
	}
	unlock, err := v.enter("note-types")
	if err != nil {
		return err
	}
	defer unlock()
	m := v.f.types[datastoreID]
	if m == nil {
		m = make(map[string]int64)
		v.f.types[datastoreID] = m
	}
	for _, t := range types {
		m[t] = ms(now)
	}
	return nil
}

func (v *tlView) KnownTypes(_ context.Context, datastoreID string, now time.Time) ([]string, error) {
	unlock, err := v.enter("known-types")
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []string
	for t, at := range v.f.types[datastoreID] {
		if at >= ms(now.Add(-v.f.stateTTL)) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(cmp.Compare(v.f.types[datastoreID][a], v.f.types[datastoreID][b]), cmp.Compare(a, b))
	})
	return out, nil
}

func (v *tlView) KnownDatastores(_ context.Context, now time.Time) ([]string, error) {
	unlock, err := v.enter("known-datastores")
	if err != nil {
		return nil, err
	}
	defer unlock()
	var out []string
	for ds, types := range v.f.types {
		for _, at := range types {
			if at >= ms(now.Add(-v.f.stateTTL)) {
				out = append(out, ds)
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func (v *tlView) LeaseSweep(_ context.Context, datastoreID string, ttl time.Duration) (bool, error) {
	unlock, err := v.enter("sweep-lease")
	if err != nil {
		return false, err
	}
	defer unlock()
	now := v.f.nowMS()
	if v.f.sweepLease[datastoreID] > now {
		return false, nil
	}
	v.f.sweepLease[datastoreID] = now + ttl.Milliseconds()
	return true, nil
}

func (v *tlView) LeaseWatermark(_ context.Context, datastoreID string, ttl time.Duration) (bool, error) {
	unlock, err := v.enter("watermark-lease")
	if err != nil {
		return false, err
	}
	defer unlock()
	now := v.f.nowMS()
	if v.f.wmLease[datastoreID] > now {
		return false, nil
	}
	v.f.wmLease[datastoreID] = now + ttl.Milliseconds()
	return true, nil
}

func (v *tlView) Final(_ context.Context, k coalesce.Key) (time.Time, error) {
	unlock, err := v.enter("final")
	if err != nil {
		return time.Time{}, err
	}
	defer unlock()
	fk := v.f.key(k)
	final := fk.frontier
	for m := range fk.verify {
		var from, to int64
		fmt.Sscanf(m, "%d-%d", &from, &to)
		if from < final {
			final = from
		}
	}
	return fromMS(final), nil
}

func (v *tlView) RaiseWatermark(_ context.Context, datastoreID string, t time.Time) (time.Time, error) {
	unlock, err := v.enter("watermark")
	if err != nil {
		return time.Time{}, err
	}
	defer unlock()
	if cur := v.f.watermark[datastoreID]; cur >= ms(t) {
		return fromMS(cur), nil
	}
	v.f.watermark[datastoreID] = ms(t)
	return t, nil
}

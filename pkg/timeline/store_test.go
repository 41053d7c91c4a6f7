package timeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var key = coalesce.Key{DatastoreID: "095d2262da454bb7347488c930e009eb", ResourceType: "Observation"}

func at(n int) time.Time {
	return time.Date(2026, 11, 20, 9, 15, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
}

func iv(a, b int) coalesce.Interval { return coalesce.Interval{From: at(a), To: at(b)} }

// stores returns n Stores (n workers) sharing the local Redis under a fresh prefix.
func stores(t *testing.T, n int, lease time.Duration) []*timeline.Store {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: stack.Addr(t, stack.Redis)})
	prefix := "test:tl:" + stack.RandomHex(8) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
		rdb.Close()
	})
	out := make([]*timeline.Store, n)
	for i := range out {
		s, err := timeline.New(rdb, timeline.Options{Prefix: prefix, Owner: "w" + string(rune('a'+i)), LeaseTTL: lease})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

func TestLeaseIsExclusiveAndAdvanceIsCAS(t *testing.T) {
	ctx := context.Background()
	ws := stores(t, 2, time.Minute)
	a, b := ws[0], ws[1]

	sa, err := a.Sync(ctx, key, timeline.Want{Range: iv(0, 8), Region: "us-east-1", Account: "123456789012"}, true)
	if err != nil || !sa.Leased || !sa.Timeline.IsZero() {
		t.Fatalf("a: %+v %v, want the lease and an empty timeline", sa, err)
	}
	sb, err := b.Sync(ctx, key, timeline.Want{Range: iv(5, 12)}, true)
	if err != nil || sb.Leased {
		t.Fatalf("b: %+v %v, want no lease while a holds it", sb, err)
	}
	if sb.Region != "us-east-1" || sb.Account != "123456789012" {
		t.Fatalf("b sees region %q account %q, want a's", sb.Region, sb.Account)
	}
	if !sb.Want.From.Equal(at(0)) || !sb.Want.To.Equal(at(12)) {
		t.Fatalf("want = %v..%v, want the hull of both workers' hints", sb.Want.From, sb.Want.To)
	}
	// b cannot move the timeline; a can, once; a stale a cannot.
	if err := b.Advance(ctx, key, sb.Timeline, iv(0, 8), time.Time{}); !errors.Is(err, timeline.ErrLeaseLost) {
		t.Fatalf("b advance: %v, want ErrLeaseLost", err)
	}
	if err := a.Advance(ctx, key, sa.Timeline, iv(0, 8), at(68)); err != nil {
		t.Fatalf("a advance: %v", err)
	}
	if err := a.Advance(ctx, key, sa.Timeline, iv(0, 8), time.Time{}); !errors.Is(err, timeline.ErrConflict) {
		t.Fatalf("stale advance: %v, want ErrConflict", err)
	}
	sb, _ = b.Sync(ctx, key, timeline.Want{}, false)
	if !sb.Timeline.Covers(iv(2, 8)) || sb.Timeline.Covers(iv(2, 9)) {
		t.Fatalf("timeline %v..%v after the advance", sb.Timeline.Start, sb.Timeline.Frontier)
	}
	// Released, the other worker takes it.
	if err := a.Release(ctx, key); err != nil {
		t.Fatal(err)
	}
	if sb, _ = b.Sync(ctx, key, timeline.Want{}, true); !sb.Leased {
		t.Fatal("b did not get the released lease")
	}
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	ctx := context.Background()
	ws := stores(t, 2, 50*time.Millisecond)
	if s, _ := ws[0].Sync(ctx, key, timeline.Want{Range: iv(0, 8)}, true); !s.Leased {
		t.Fatal("a did not get the lease")
	}
	time.Sleep(120 * time.Millisecond) // a died
	s, err := ws[1].Sync(ctx, key, timeline.Want{}, true)
	if err != nil || !s.Leased {
		t.Fatalf("b after expiry: %+v %v", s, err)
	}
	if err := ws[0].Advance(ctx, key, s.Timeline, iv(0, 8), time.Time{}); !errors.Is(err, timeline.ErrLeaseLost) {
		t.Fatalf("a after losing the lease: %v", err)
	}
}

func TestObligationsAndCounts(t *testing.T) {
	ctx := context.Background()
	ws := stores(t, 2, time.Minute)
	a, b := ws[0], ws[1]
	s, _ := a.Sync(ctx, key, timeline.Want{Range: iv(0, 20), Deletes: []coalesce.Interval{iv(3, 11)}}, true)
	tl := s.Timeline
	for _, c := range []coalesce.Interval{iv(0, 10), iv(10, 20)} {
		if err := a.Advance(ctx, key, tl, c, c.To.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		tl = tl.Extend(c)
	}
	// Nothing due before the horizon; the first chunk after it, found by any worker.
	if keys, _ := b.DueKeys(ctx, at(60), 10); len(keys) != 0 {
		t.Fatalf("due keys before the horizon: %v", keys)
	}
	keys, err := b.DueKeys(ctx, at(70), 10)
	if err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("due keys = %v %v", keys, err)
	}
	due, err := b.Due(ctx, key, at(70))
	if err != nil || len(due) != 1 || !due[0].From.Equal(at(0)) {
		t.Fatalf("due = %+v %v", due, err)
	}
	if err := a.Seen(ctx, key, []timeline.Latest{{ID: "r1", LastUpdated: at(2)}, {ID: "r2", LastUpdated: at(9)}}); err != nil {
		t.Fatal(err)
	}
	// r1 updated later: it moves out of the first chunk; an older sighting does not move it back.
	_ = a.Seen(ctx, key, []timeline.Latest{{ID: "r1", LastUpdated: at(15)}})
	_ = a.Seen(ctx, key, []timeline.Latest{{ID: "r1", LastUpdated: at(3)}})
	if n, _ := a.Expected(ctx, key, iv(0, 10)); n != 1 {
		t.Fatalf("expected in [0,10) = %d, want 1", n)
	}
	if n, _ := a.Expected(ctx, key, iv(10, 20)); n != 1 {
		t.Fatalf("expected in [10,20) = %d, want 1", n)
	}
	_ = a.Gone(ctx, key, []string{"r2"})
	if n, _ := a.Expected(ctx, key, iv(0, 10)); n != 0 {
		t.Fatalf("expected after a delete = %d, want 0", n)
	}
	if err := b.Verified(ctx, key, due); err != nil {
		t.Fatal(err)
	}
	if keys, _ := b.DueKeys(ctx, at(75), 10); len(keys) != 0 {
		t.Fatalf("still due after verification: %v", keys)
	}
	if keys, _ := b.DueKeys(ctx, at(80), 10); len(keys) != 1 {
		t.Fatalf("the second chunk is not due at its horizon: %v", keys)
	}
	dels, err := b.Deletes(ctx, key, iv(10, 20))
	if err != nil || len(dels) != 1 || !dels[0].Range.From.Equal(at(3)) {
		t.Fatalf("deletes reaching into [10,20) = %v %v", dels, err)
	}
	if dels, _ := b.Deletes(ctx, key, iv(12, 20)); len(dels) != 0 {
		t.Fatalf("a delete range that ends at 11 reaches into [12,20): %v", dels)
	}
}

func TestParked(t *testing.T) {
	ctx := context.Background()
	s := stores(t, 1, time.Minute)[0]
	p := timeline.Parked{Key: key, Range: iv(0, 10), Reason: "forbidden", Attempts: 5, Since: at(0), LastTry: at(30)}
	if err := s.Park(ctx, p); err != nil {
		t.Fatal(err)
	}
	ps, err := s.ListParked(ctx)
	if err != nil || len(ps) != 1 || ps[0].Reason != "forbidden" || !ps[0].Range.To.Equal(at(10)) {
		t.Fatalf("parked = %+v %v", ps, err)
	}
	if ok, _ := s.LeaseParked(ctx, p); !ok {
		t.Fatal("no retry lease")
	}
	if ok, _ := s.LeaseParked(ctx, p); ok {
		t.Fatal("retry lease taken twice")
	}
	if n, err := s.RetryParkedNow(ctx); n != 1 || err != nil {
		t.Fatalf("retry now = %d %v", n, err)
	}
	if ps, _ = s.ListParked(ctx); !ps[0].LastTry.IsZero() {
		t.Fatal("retry now did not make it due")
	}
	if err := s.Unpark(ctx, p); err != nil {
		t.Fatal(err)
	}
	if ps, _ = s.ListParked(ctx); len(ps) != 0 {
		t.Fatalf("still parked: %+v", ps)
	}
}

func TestKnownTypes(t *testing.T) {
	ctx := context.Background()
	ws := stores(t, 2, time.Minute)
	ds := key.DatastoreID
	if err := ws[0].NoteTypes(ctx, ds, at(0), "Observation", "Patient"); err != nil {
		t.Fatal(err)
	}
	_ = ws[1].NoteTypes(ctx, ds, at(10), "Observation", "Encounter")
	got, err := ws[1].KnownTypes(ctx, ds, at(20))
	if err != nil || len(got) != 3 {
		t.Fatalf("known types = %v %v, want 3 from both workers", got, err)
	}
	// Past the state TTL (24 h) a type is forgotten.
	got, _ = ws[0].KnownTypes(ctx, ds, at(5).Add(24*time.Hour))
	if len(got) != 2 {
		t.Fatalf("known types a day later = %v, want the two noted at 10s", got)
	}
	if got, _ := ws[0].KnownTypes(ctx, "00000000000000000000000000000000", at(20)); len(got) != 0 {
		t.Fatalf("another datastore's types: %v", got)
	}
}

func TestSweepTargetAndLease(t *testing.T) {
	ctx := context.Background()
	ws := stores(t, 2, time.Minute)
	a, b := ws[0], ws[1]
	st, _ := a.Sync(ctx, key, timeline.Want{Range: iv(0, 8)}, true)
	if !st.SweepTo.IsZero() || st.Target() != st.Want {
		t.Fatalf("no sweep yet: %+v target %+v", st, st.Target())
	}
	// A sweep asks for more than the hints; an earlier sweep does not move it back.
	_, _ = b.Sync(ctx, key, timeline.Want{SweepTo: at(60)}, false)
	st, _ = a.Sync(ctx, key, timeline.Want{SweepTo: at(30)}, false)
	if !st.SweepTo.Equal(at(60)) || !st.Target().To.Equal(at(60)) || !st.Target().From.Equal(at(0)) || !st.Want.To.Equal(at(8)) {
		t.Fatalf("after sweeps: %+v target %+v", st, st.Target())
	}
	_ = a.NoteTypes(ctx, key.DatastoreID, at(0), "Observation")
	dss, err := b.KnownDatastores(ctx, at(10))
	if err != nil || len(dss) != 1 || dss[0] != key.DatastoreID {
		t.Fatalf("known datastores %v %v", dss, err)
	}
	if ok, _ := a.LeaseSweep(ctx, key.DatastoreID, time.Minute); !ok {
		t.Fatal("no sweep lease")
	}
	if ok, _ := b.LeaseSweep(ctx, key.DatastoreID, time.Minute); ok {
		t.Fatal("two workers hold one datastore's sweep")
	}
}

func TestFinalAndWatermark(t *testing.T) {
	ctx := context.Background()
	s := stores(t, 1, time.Minute)[0]
	if f, err := s.Final(ctx, key); err != nil || !f.IsZero() {
		t.Fatalf("final of an unknown key = %v %v, want zero", f, err)
	}
	st, _ := s.Sync(ctx, key, timeline.Want{Range: iv(0, 30)}, true)
	tl := st.Timeline
	for _, c := range []coalesce.Interval{iv(0, 10), iv(10, 20), iv(20, 30)} {
		_ = s.Advance(ctx, key, tl, c, c.To.Add(time.Minute))
		tl = tl.Extend(c)
	}
	if f, _ := s.Final(ctx, key); !f.Equal(at(0)) {
		t.Fatalf("final with every chunk unverified = %v, want its start", f)
	}
	due, _ := s.Due(ctx, key, at(75)) // the first chunk
	_ = s.Verified(ctx, key, due)
	if f, _ := s.Final(ctx, key); !f.Equal(at(10)) {
		t.Fatalf("final after the first verification = %v, want 10s", f)
	}
	// The watermark only rises.
	for _, tt := range []struct{ set, want int }{{10, 10}, {20, 20}, {15, 20}, {30, 30}} {
		got, err := s.RaiseWatermark(ctx, key.DatastoreID, at(tt.set))
		if err != nil || !got.Equal(at(tt.want)) {
			t.Fatalf("raise to %ds = %v %v, want %ds", tt.set, got, err, tt.want)
		}
	}
	if ok, _ := s.LeaseWatermark(ctx, key.DatastoreID, time.Minute); !ok {
		t.Fatal("no watermark lease")
	}
}

// TestDeletesCountedPerHint: two delete hints in the same second have the same range; both
// are kept (a "Deletes Unresolved" report counts hints), a Bundle hint is kept apart from
// them by kind, and forgetting the hints read drops exactly those: not a neighbour, nor a
// hint of the same range recorded after the read.
func TestDeletesCountedPerHint(t *testing.T) {
	ctx := context.Background()
	s := stores(t, 1, time.Minute)[0]
	k := coalesce.Key{DatastoreID: key.DatastoreID, ResourceType: "Condition"}
	if _, err := s.Sync(ctx, k, timeline.Want{Range: iv(0, 20), Deletes: []coalesce.Interval{iv(3, 5), iv(3, 5)}}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sync(ctx, k, timeline.Want{Deletes: []coalesce.Interval{iv(3, 5), iv(4, 6)}, Bundles: []coalesce.Interval{iv(3, 5)}}, true); err != nil {
		t.Fatal(err)
	}
	dels, err := s.Deletes(ctx, k, iv(0, 20))
	bundles := 0
	for _, d := range dels {
		if d.Bundle {
			bundles++
			if d.Range != iv(3, 5) {
				t.Errorf("bundle hint range %v; want [3,5)", d.Range)
			}
		}
	}
	if err != nil || len(dels) != 5 || bundles != 1 {
		t.Fatalf("history hints = %v %v; want 5 (three deletes of [3,5), one of [4,6), one Bundle of [3,5))", dels, err)
	}
	if all, _ := s.Deletes(ctx, k, coalesce.Interval{To: at(20)}); len(all) != 5 {
		t.Errorf("hints reaching into (-inf, 20) = %d; want all 5", len(all))
	}
	var settled []timeline.HistoryHint
	for _, d := range dels {
		if d.Range == iv(3, 5) {
			settled = append(settled, d)
		}
	}
	// A hint with the same range recorded after the read is not among those settled.
	if _, err := s.Sync(ctx, k, timeline.Want{Deletes: []coalesce.Interval{iv(3, 5)}}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetDeletes(ctx, k, settled); err != nil {
		t.Fatal(err)
	}
	dels, err = s.Deletes(ctx, k, iv(0, 20))
	if err != nil || len(dels) != 2 || dels[0].Range == dels[1].Range || dels[0].Bundle || dels[1].Bundle {
		t.Fatalf("after forgetting the four hints of [3,5): %v %v; want the [4,6) one and the new [3,5) one", dels, err)
	}
}

// TestHintedSeconds: the seconds that hints' ranges reached are kept, across a UTC midnight
// and with a range ending inside a second; a second no hint reached reads as not hinted, and
// so does an instant outside the range asked about.
func TestHintedSeconds(t *testing.T) {
	ctx := context.Background()
	s := stores(t, 1, time.Minute)[0]
	k := coalesce.Key{DatastoreID: key.DatastoreID, ResourceType: "Immunization"}
	midnight := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	sec := func(n float64) time.Time { return midnight.Add(time.Duration(n * float64(time.Second))) }
	hinted := []coalesce.Interval{
		{From: sec(-3), To: sec(2)},      // 23:59:57 – 00:00:02, over midnight
		{From: sec(10), To: sec(12.5)},   // ends inside second 12: 12 counts as reached
		{From: sec(100), To: sec(100.2)}, // a fraction of one second
	}
	if _, err := s.Sync(ctx, k, timeline.Want{Range: coalesce.Interval{From: sec(-3), To: sec(101)}, Hinted: hinted}, false); err != nil {
		t.Fatal(err)
	}
	is, err := s.Hinted(ctx, k, coalesce.Interval{From: sec(-10), To: sec(200)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at   float64
		want bool
	}{
		{-4, false}, {-3, true}, {-0.5, true}, {0, true}, {1.999, true}, {2, false},
		{9.9, false}, {10, true}, {12.7, true}, {13, false}, {99.9, false}, {100.9, true}, {101, false},
		{150, false}, {-11, false}, {250, false},
	} {
		if got := is(sec(c.at)); got != c.want {
			t.Errorf("hinted(%+.3fs from midnight) = %v; want %v", c.at, got, c.want)
		}
	}
	// Asked about a range that starts inside a byte of the bitmap, and one no hint reached.
	if is, err = s.Hinted(ctx, k, coalesce.Interval{From: sec(11), To: sec(14)}); err != nil || !is(sec(11.5)) || is(sec(13.5)) {
		t.Errorf("hinted over [11,14): 11.5 → %v, 13.5 → %v (%v); want true, false", is(sec(11.5)), is(sec(13.5)), err)
	}
	if is, err = s.Hinted(ctx, k, coalesce.Interval{From: sec(3000), To: sec(3600)}); err != nil || is(sec(3001)) {
		t.Errorf("hinted in an hour with no hint: %v %v", is(sec(3001)), err)
	}
}

// TestHintedLongRange: a range of hours (an import's) is recorded whole — every second of it
// hinted, none beside it — with its whole bytes set at once.
func TestHintedLongRange(t *testing.T) {
	ctx := context.Background()
	s := stores(t, 1, time.Minute)[0]
	k := coalesce.Key{DatastoreID: key.DatastoreID, ResourceType: "Claim"}
	from := time.Date(2026, 12, 2, 21, 0, 3, 0, time.UTC) // not on a byte boundary
	to := time.Date(2026, 12, 3, 2, 0, 13, 500, time.UTC) // over midnight, inside a second
	if _, err := s.Sync(ctx, k, timeline.Want{Range: coalesce.Interval{From: from, To: to}, Hinted: []coalesce.Interval{{From: from, To: to}}}, false); err != nil {
		t.Fatal(err)
	}
	all := coalesce.Interval{From: from.Add(-time.Hour), To: to.Add(time.Hour)}
	is, err := s.Hinted(ctx, k, all)
	if err != nil {
		t.Fatal(err)
	}
	for at := all.From; at.Before(all.To); at = at.Add(time.Second) {
		want := !at.Before(from.Truncate(time.Second)) && at.Before(to.Truncate(time.Second).Add(time.Second))
		if got := is(at); got != want {
			t.Fatalf("hinted(%v) = %v; want %v", at, got, want)
		}
	}
}

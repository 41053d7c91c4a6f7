package dedup_test

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
)

func claimOne(t *testing.T, s *dedup.Store, id dedup.Identity) dedup.Result {
	t.Helper()
	res, err := s.Claim(testContext(t), []dedup.Identity{id})
	if err != nil {
		t.Fatalf("claim by %s: %v", s.Owner(), err)
	}
	if len(res) != 1 {
		t.Fatalf("claim returned %d results for 1 identity", len(res))
	}
	return res[0]
}

func TestClaimProtocol(t *testing.T) {
	_, a, b := twoStores(t, dedup.Options{})
	ctx := testContext(t)
	id := ident("p1", "1")

	steps := []struct {
		name string
		do   func() dedup.Result
		want dedup.Result
	}{
		{"A claims first", func() dedup.Result { return claimOne(t, a, id) }, dedup.New},
		{"B sees A mid-emit", func() dedup.Result { return claimOne(t, b, id) }, dedup.Pending},
		{"A again (a retried window) still holds it", func() dedup.Result { return claimOne(t, a, id) }, dedup.New},
		{"after A marked it done, B skips it", func() dedup.Result {
			if err := a.MarkDone(ctx, []dedup.Identity{id}); err != nil {
				t.Fatal(err)
			}
			return claimOne(t, b, id)
		}, dedup.Duplicate},
		{"and so does A", func() dedup.Result { return claimOne(t, a, id) }, dedup.Duplicate},
		{"the next version is a new change", func() dedup.Result { return claimOne(t, b, ident("p1", "2")) }, dedup.New},
	}
	for _, st := range steps {
		if got := st.do(); got != st.want {
			t.Fatalf("%s: got %v, want %v", st.name, got, st.want)
		}
	}
}

func TestReleaseDeletesOnlyOwnClaim(t *testing.T) {
	rdb, a, b := twoStores(t, dedup.Options{})
	ctx := testContext(t)
	id := ident("p1", "1")
	key := a.Key(id)

	if got := claimOne(t, a, id); got != dedup.New {
		t.Fatalf("A claim: %v", got)
	}
	if err := b.Release(ctx, []dedup.Identity{id}); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "pending:worker-a" {
		t.Fatalf("after B's release: %s = %q, %v; want A's claim untouched", key, v, err)
	}
	if err := a.Release(ctx, []dedup.Identity{id}); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("after A's release: exists=%d, %v; want the key gone", n, err)
	}
	if got := claimOne(t, b, id); got != dedup.New {
		t.Fatalf("B claim after release: %v, want new", got)
	}
	// Releasing a change that is done (another worker emitted it) keeps it done.
	if err := b.MarkDone(ctx, []dedup.Identity{id}); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(ctx, []dedup.Identity{id}); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "done" {
		t.Fatalf("release after done: %q, %v; want done", v, err)
	}
	// Nothing to release is no error.
	if err := a.Release(ctx, []dedup.Identity{ident("never-claimed", "1")}); err != nil {
		t.Fatal(err)
	}
}

// A Redis that lost its script cache (restart, failover, SCRIPT FLUSH) answers EVALSHA with
// NOSCRIPT; Release must fall back to EVAL inside its pipeline.
func TestReleaseWithoutCachedScript(t *testing.T) {
	prefix := uniquePrefix()
	rdb := newRedis(t, prefix)
	a := newStore(t, rdb, dedup.Options{Prefix: prefix, Owner: "worker-a"})
	ctx := testContext(t)
	ids := []dedup.Identity{ident("p1", "1"), ident("p2", "1"), ident("p3", "1")}
	if _, err := a.Claim(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, ids); err != nil {
		t.Fatalf("release after SCRIPT FLUSH: %v", err)
	}
	for _, id := range ids {
		if n, _ := rdb.Exists(ctx, a.Key(id)).Result(); n != 0 {
			t.Errorf("%s still exists after release", a.Key(id))
		}
	}
}

func TestClaimExpires(t *testing.T) {
	_, a, b := twoStores(t, dedup.Options{ClaimTTL: 200 * time.Millisecond})
	id := ident("p1", "1")

	if got := claimOne(t, a, id); got != dedup.New {
		t.Fatalf("A claim: %v", got)
	}
	if got := claimOne(t, b, id); got != dedup.Pending {
		t.Fatalf("B claim while A holds it: %v", got)
	}
	// A died mid-emit: once the claim TTL passed, B takes over.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := claimOne(t, b, id)
		if got == dedup.New {
			break
		}
		if got != dedup.Pending || time.Now().After(deadline) {
			t.Fatalf("B claim after A's claim expired: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := claimOne(t, a, id); got != dedup.Pending {
		t.Fatalf("A after B took over: %v, want pending", got)
	}
}

// A delete from history may come without a versionId; it still gets claimed and deduped.
func TestEmptyVersionID(t *testing.T) {
	prefix := uniquePrefix()
	rdb := newRedis(t, prefix)
	s := newStore(t, rdb, dedup.Options{Prefix: prefix, Owner: "worker-a"})
	id := ident("p1", "")
	if got := claimOne(t, s, id); got != dedup.New {
		t.Fatalf("claim: %v", got)
	}
	if err := s.MarkDone(testContext(t), []dedup.Identity{id}); err != nil {
		t.Fatal(err)
	}
	if got := claimOne(t, s, id); got != dedup.Duplicate {
		t.Fatalf("claim after done: %v", got)
	}
	if s.Key(id) == s.Key(ident("p1", "1")) {
		t.Error("empty version shares a key with version 1")
	}
}

func TestTTLs(t *testing.T) {
	prefix := uniquePrefix()
	rdb := newRedis(t, prefix)
	ctx := testContext(t)
	id := ident("p1", "1")

	for _, tc := range []struct {
		name            string
		opts            dedup.Options
		wantClaim       time.Duration
		wantDone        time.Duration
		wantDoneSeconds bool
	}{
		{"defaults", dedup.Options{}, 60 * time.Second, 24 * time.Hour, true},
		{"custom", dedup.Options{ClaimTTL: 1500 * time.Millisecond, DoneTTL: time.Hour}, 1500 * time.Millisecond, time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Prefix = prefix + tc.name + ":"
			tc.opts.Owner = "worker-a"
			s := newStore(t, rdb, tc.opts)
			key := s.Key(id)
			if _, err := s.Claim(ctx, []dedup.Identity{id}); err != nil {
				t.Fatal(err)
			}
			if v, _ := rdb.Get(ctx, key).Result(); v != "pending:worker-a" {
				t.Errorf("claim value %q, want pending:worker-a", v)
			}
			pttl, err := rdb.PTTL(ctx, key).Result()
			if err != nil || pttl <= tc.wantClaim-time.Second || pttl > tc.wantClaim {
				t.Errorf("claim PTTL = %v, %v; want just under %v", pttl, err, tc.wantClaim)
			}
			if err := s.MarkDone(ctx, []dedup.Identity{id}); err != nil {
				t.Fatal(err)
			}
			if v, _ := rdb.Get(ctx, key).Result(); v != "done" {
				t.Errorf("done value %q, want done", v)
			}
			ttl, err := rdb.TTL(ctx, key).Result()
			if err != nil || ttl <= tc.wantDone-5*time.Second || ttl > tc.wantDone {
				t.Errorf("done TTL = %v, %v; want just under %v", ttl, err, tc.wantDone)
			}
		})
	}
}

// A page of 100 changes in mixed states costs one pipeline, and every result lines up with its
// identity.
func TestClaimPipelineAlignsByIndex(t *testing.T) {
	prefix := uniquePrefix()
	rdb, a, other := twoStores(t, dedup.Options{Prefix: prefix})
	ctx := testContext(t)

	ids := make([]dedup.Identity, 100)
	want := make([]dedup.Result, 100)
	var done, held []dedup.Identity
	for i := range ids {
		ids[i] = ident(fmt.Sprintf("r%03d", i), fmt.Sprint(i%7+1))
		switch {
		case i%3 == 0:
			done = append(done, ids[i])
			want[i] = dedup.Duplicate
		case i%5 == 0:
			held = append(held, ids[i])
			want[i] = dedup.Pending
		default:
			want[i] = dedup.New
		}
	}
	if _, err := other.Claim(ctx, held); err != nil {
		t.Fatal(err)
	}
	if err := other.MarkDone(ctx, done); err != nil {
		t.Fatal(err)
	}

	// A separate client, so the hook counts only what Claim sends.
	counted := redis.NewClient(&redis.Options{Addr: redisAddr(t)})
	t.Cleanup(func() { counted.Close() })
	var rt roundTrips
	counted.AddHook(&rt)
	s := newStore(t, counted, dedup.Options{Prefix: prefix, Owner: "worker-a"})
	got, err := s.Claim(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("index %d (%s): got %v, want %v", i, ids[i].ID, got[i], want[i])
			}
		}
	}
	if rt.pipelines != 1 || rt.single != 0 {
		t.Errorf("claim of 100 sent %d pipelines and %d single commands; want 1 pipeline", rt.pipelines, rt.single)
	}
	// The keys A won are A's (and the other store's keys are the same keys).
	for i, id := range ids {
		if want[i] == dedup.New {
			if v, _ := rdb.Get(ctx, a.Key(id)).Result(); v != "pending:worker-a" {
				t.Fatalf("index %d: value %q, want A's claim", i, v)
			}
		}
	}
}

func TestRedisDownIsAnError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	s := newStore(t, rdb, dedup.Options{Owner: "worker-a"})
	ctx := testContext(t)
	ids := []dedup.Identity{ident("p1", "1"), ident("p2", "1")}

	res, err := s.Claim(ctx, ids)
	if err == nil || res != nil {
		t.Fatalf("claim with Redis down: results %v, err %v; want an error and no results", res, err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("claim error %v does not wrap the network error", err)
	}
	if err := s.MarkDone(ctx, ids); err == nil {
		t.Error("mark done with Redis down: no error")
	}
	if err := s.Release(ctx, ids); err == nil {
		t.Error("release with Redis down: no error")
	}
}

func TestKey(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { rdb.Close() })
	s := newStore(t, rdb, dedup.Options{Prefix: "cdc:dedup:"})

	if got, want := s.Key(ident("abc-1.2", "3")), "cdc:dedup:{"+datastore+"/Patient/abc-1.2}/3"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	// Parts that are not valid FHIR ids still map to distinct keys, with one hash tag.
	odd := []dedup.Identity{
		ident("a/b", "1"), ident("a", "b/1"), ident("a}", "1"), ident("a", "}1"), ident("a{b}", "1"),
	}
	seen := map[string]dedup.Identity{}
	for _, id := range odd {
		k := s.Key(id)
		if prev, dup := seen[k]; dup {
			t.Errorf("%+v and %+v share key %q", prev, id, k)
		}
		seen[k] = id
		if strings.Count(k, "{") != 1 || strings.Count(k, "}") != 1 {
			t.Errorf("key %q has more than one brace pair", k)
		}
	}
}

func TestRejectsEmptyIdentity(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { rdb.Close() })
	s := newStore(t, rdb, dedup.Options{})
	ctx := testContext(t)
	bad := []dedup.Identity{ident("p1", "1"), ident("", "1")}
	if _, err := s.Claim(ctx, bad); err == nil {
		t.Error("claim: no error for an empty id")
	}
	if err := s.MarkDone(ctx, bad); err == nil {
		t.Error("mark done: no error for an empty id")
	}
	if err := s.Release(ctx, bad); err == nil {
		t.Error("release: no error for an empty id")
	}
	if res, err := s.Claim(ctx, nil); res != nil || err != nil {
		t.Errorf("claim of nothing: %v, %v", res, err)
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		opts dedup.Options
		ok   bool
	}{
		{dedup.Options{}, true},
		{dedup.Options{ClaimTTL: time.Millisecond, DoneTTL: time.Second}, true},
		{dedup.Options{ClaimTTL: -time.Second}, false},
		{dedup.Options{ClaimTTL: time.Microsecond}, false},
		{dedup.Options{DoneTTL: 500 * time.Millisecond}, false},
		{dedup.Options{ClaimTTL: time.Minute, DoneTTL: time.Second}, false},
	} {
		if err := tc.opts.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", tc.opts, err, tc.ok)
		}
	}
	if _, err := dedup.NewStore(nil, dedup.Options{}); err == nil {
		t.Error("NewStore(nil client): no error")
	}
	a, b := dedup.RandomOwner(), dedup.RandomOwner()
	if a == b || a == "" {
		t.Errorf("RandomOwner: %q, %q; want distinct tokens", a, b)
	}
}

func TestResultString(t *testing.T) {
	for r, want := range map[dedup.Result]string{dedup.New: "new", dedup.Duplicate: "duplicate", dedup.Pending: "pending", 0: "Result(0)"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(r), r.String(), want)
		}
	}
}

// TestWithOwner: two attempts of one process (two overlapping windows) are different owners,
// so only one of them wins a change; they share the client and settings.
func TestWithOwner(t *testing.T) {
	prefix := uniquePrefix()
	rdb := newRedis(t, prefix)
	base := newStore(t, rdb, dedup.Options{Prefix: prefix, Owner: "proc"})
	first, second := base.WithOwner("proc/1"), base.WithOwner("proc/2")
	id := ident("p1", "1")
	if got := claimOne(t, first, id); got != dedup.New {
		t.Fatalf("first attempt: %v, want New", got)
	}
	if got := claimOne(t, second, id); got != dedup.Pending {
		t.Fatalf("second attempt: %v, want Pending", got)
	}
	if first.Key(id) != base.Key(id) || first.Owner() != "proc/1" || base.Owner() != "proc" {
		t.Fatalf("WithOwner changed the key or the original: %q %q %q", first.Key(id), first.Owner(), base.Owner())
	}
}

package dedup_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
)

// redisAddr is the local stack's Redis (deploy/local/stack.sh up redis). The integration tests
// fail when it is not there, except under -short, where they are skipped.
func redisAddr(t testing.TB) string {
	t.Helper()
	return stack.Addr(t, stack.Redis)
}

// newRedis returns a client of the local Redis that is closed, and whose keys under prefix are
// deleted, when the test ends.
func newRedis(t testing.TB, prefix string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr(t)})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		deletePrefix(ctx, t, rdb, prefix)
		rdb.Close()
	})
	return rdb
}

func deletePrefix(ctx context.Context, t testing.TB, rdb *redis.Client, prefix string) {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			rdb.Unlink(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		rdb.Unlink(ctx, batch...)
	}
	if err := iter.Err(); err != nil {
		t.Logf("cleanup of %s*: %v", prefix, err)
	}
}

// uniquePrefix keeps tests (and concurrent runs of them) from seeing each other's keys.
func uniquePrefix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "dedup-test:" + hex.EncodeToString(b) + ":"
}

func newStore(t testing.TB, rdb redis.UniversalClient, opts dedup.Options) *dedup.Store {
	t.Helper()
	s, err := dedup.NewStore(rdb, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// twoStores is two workers' stores, owners worker-a and worker-b, sharing one Redis client
// and a prefix (opts.Prefix, else a unique one; its keys are removed when the test ends);
// opts sets the rest of both.
func twoStores(t testing.TB, opts dedup.Options) (rdb *redis.Client, a, b *dedup.Store) {
	t.Helper()
	opts.Prefix = cmp.Or(opts.Prefix, uniquePrefix())
	rdb = newRedis(t, opts.Prefix)
	opts.Owner = "worker-a"
	a = newStore(t, rdb, opts)
	opts.Owner = "worker-b"
	b = newStore(t, rdb, opts)
	return rdb, a, b
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const datastore = "0123456789abcdef0123456789abcdef"

func ident(id, version string) dedup.Identity {
	return dedup.Identity{DatastoreID: datastore, ResourceType: "Patient", ID: id, VersionID: version}
}

// handshake is what the client sends on a new connection, by itself.
var handshake = map[string]bool{"hello": true, "client": true, "auth": true, "select": true}

// roundTrips counts what a client sends: single commands and pipelines, less the handshakes of
// new connections.
type roundTrips struct{ single, pipelines int }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake[cmd.Name()] {
			r.single++
		}
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !handshake[cmds[0].Name()] {
			r.pipelines++
		}
		return next(ctx, cmds)
	}
}

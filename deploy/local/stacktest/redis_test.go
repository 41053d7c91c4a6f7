package stacktest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// TestRedisSetNX is the dedup primitive: the first SET NX claims a key, the second loses, and
// the TTL is set.
func TestRedisSetNX(t *testing.T) {
	ctx := testContext(t, 10*time.Second)
	rdb := redis.NewClient(&redis.Options{Addr: stack.Addr(t, "REDIS")})
	t.Cleanup(func() { rdb.Close() })

	b := make([]byte, 8)
	rand.Read(b)
	key := "stacktest:" + hex.EncodeToString(b)
	t.Cleanup(func() { rdb.Del(ctx, key) })

	won, err := rdb.SetNX(ctx, key, "pending", 60*time.Second).Result()
	if err != nil || !won {
		t.Fatalf("first SET NX: won=%v err=%v, want won", won, err)
	}
	won, err = rdb.SetNX(ctx, key, "other", 60*time.Second).Result()
	if err != nil || won {
		t.Fatalf("second SET NX: won=%v err=%v, want lost", won, err)
	}
	if v, err := rdb.Get(ctx, key).Result(); err != nil || v != "pending" {
		t.Fatalf("GET = %q, %v; want pending", v, err)
	}
	// SET ... EX marks the change done with the long dedup TTL, replacing the claim's.
	if err := rdb.Set(ctx, key, "done", 24*time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.TTL(ctx, key).Result()
	if err != nil || ttl < 23*time.Hour || ttl > 24*time.Hour {
		t.Fatalf("TTL = %v, %v; want about 24h", ttl, err)
	}
	// A missing key reads as redis.Nil, which dedup code must tell apart from an outage.
	if _, err := rdb.Get(ctx, key+":missing").Result(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET missing: err=%v, want redis.Nil", err)
	}
}

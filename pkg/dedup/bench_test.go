package dedup_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
)

// BenchmarkClaimMarkDone100 is the dedup cost of one search page on the local Redis: a Claim of
// 100 new changes and a MarkDone of the same, two round trips. ns/identity is the cost per
// change.
func BenchmarkClaimMarkDone100(b *testing.B) {
	prefix := uniquePrefix()
	rdb := newRedis(b, prefix)
	s := newStore(b, rdb, dedup.Options{Prefix: prefix, Owner: "bench", DoneTTL: 10 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	const page = 100
	ids := make([]dedup.Identity, page)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		for i := range ids {
			ids[i] = dedup.Identity{DatastoreID: datastore, ResourceType: "Observation",
				ID: "obs-" + strconv.Itoa(n) + "-" + strconv.Itoa(i), VersionID: "1"}
		}
		res, err := s.Claim(ctx, ids)
		if err != nil {
			b.Fatal(err)
		}
		if res[page-1] != dedup.New {
			b.Fatalf("claim: %v", res[page-1])
		}
		if err := s.MarkDone(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*page), "ns/identity")
}

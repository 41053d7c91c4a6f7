package main

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// TestE2ESweepFindsLostHints: CloudTrail loses 5% of the hints at random, and every hint of
// the last 10 s of writes (after which the keys go quiet). Nothing is missing one sweep
// interval later: lost hints in the middle of a key's traffic are covered by its contiguous
// timeline; those at the end, with no later hint, are found by the sweep — which counts them
// (hlcdc_sweep_found_total; with settle 0 it also counts changes whose hints were merely still
// on their way when a sweep passed).
func TestE2ESweepFindsLostHints(t *testing.T) {
	e := newE2E(t, 4)
	addr := freeAddr(t)
	e.startConsumer("sweep-1", "CDC_HTTP_ADDR="+addr, "CDC_SWEEP_INTERVAL=10s")
	dss := []string{stack.RandomHex(16)}
	types := []string{"Observation", "Patient"}
	rng := rand.New(rand.NewPCG(3, 4))
	start := time.Now()
	var batch [][]byte
	dropped, tail := 0, 0
	for time.Since(start) < 30*time.Second {
		rec := e.write(dss[0], types[rng.IntN(len(types))], "", 0)
		switch {
		case time.Since(start) > 20*time.Second:
			dropped++
			tail++
		case rng.Float64() < 0.05:
			dropped++
		default:
			batch = append(batch, rec)
		}
		if len(batch) >= 20 {
			e.put(batch...)
			batch = batch[:0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.put(batch...)
	e.waitComplete(45 * time.Second)
	m := scrape(t, "http://"+addr+"/metrics")
	found := m["hlcdc_sweep_found_total"]
	t.Logf("%d writes, %d hints lost (%d in the final stretch); found by sweeps %v", len(e.writes), dropped, tail, found)
	if found < 1 || found > float64(len(e.writes)) {
		t.Errorf("found by sweeps %v: want at least one of the %d changes whose hints were lost", found, tail)
	}
}

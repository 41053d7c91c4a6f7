package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// TestE2EWatermarkAcrossSIGKILL: steady writes to two types of one datastore while the
// consumer publishes "HealthLake CDC Watermark" every second; mid-run the consumer is killed
// with SIGKILL and another one (another worker id, the same Redis) takes over. Over the whole
// run, in the order the bus received them: the datastore's lowWatermark never moves
// backwards, and every change whose lastUpdated lies below a published watermark is on the
// bus before that watermark event.
func TestE2EWatermarkAcrossSIGKILL(t *testing.T) {
	e := newE2E(t, 2)
	env := []string{"CDC_WATERMARK_INTERVAL=1s", "CDC_LEASE_FAILOVER=3s"}
	a := e.startConsumer("wm-a", env...)
	ds := stack.RandomHex(16)
	types := []string{"Observation", "Encounter"}
	writeFor := func(d time.Duration) {
		var batch [][]byte
		for end := time.Now().Add(d); time.Now().Before(end); {
			batch = append(batch, e.write(ds, types[len(batch)%2], "", 0))
			if len(batch) == 10 {
				e.put(batch...)
				batch = batch[:0]
			}
			time.Sleep(30 * time.Millisecond)
		}
		e.put(batch...)
	}
	writeFor(10 * time.Second)
	if err := a.stop(t, syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatal("the consumer exited 0 on SIGKILL")
	}
	killedAt := time.Now()
	e.startConsumer("wm-b", env...)
	writeFor(10 * time.Second)
	e.waitComplete(90 * time.Second)
	lastWrite := time.Now()
	// Watermarks that pass the last write show the run as a whole became final.
	stack.Eventually(t, 60*time.Second, "a watermark past the last write", func() bool {
		for _, l := range stack.Recorded(t, e.source) {
			if l.DetailType == event.DetailTypeWatermark {
				if w := stack.Detail[event.Watermark](t, l); w.DatastoreID == ds && parseWatermark(t, w.LowWatermark).After(lastWrite) {
					return true
				}
			}
		}
		return false
	})

	e.mu.Lock()
	writes := append([]e2eWrite(nil), e.writes...)
	e.mu.Unlock()
	firstSeen := map[string]int{} // type/id/version → position of its first change event
	var prev time.Time
	marks, afterKill := 0, 0
	for i, l := range stack.Recorded(t, e.source) {
		switch l.DetailType {
		case event.DetailTypeCreated, event.DetailTypeUpdated:
			c := stack.Detail[event.ChangeDetail](t, l)
			k := c.ResourceType + "/" + c.ID + "/" + c.VersionID
			if _, ok := firstSeen[k]; !ok {
				firstSeen[k] = i
			}
		case event.DetailTypeWatermark:
			w := stack.Detail[event.Watermark](t, l)
			if w.DatastoreID != ds {
				continue
			}
			wm := parseWatermark(t, w.LowWatermark)
			marks++
			if l.Received.After(killedAt) {
				afterKill++
			}
			if wm.Before(prev) {
				t.Errorf("watermark %d moved backwards: %v after %v", marks, wm, prev)
			}
			prev = wm
			for _, wr := range writes {
				if !wr.LastUpdated.Before(wm) {
					continue
				}
				if at, ok := firstSeen[wr.Type+"/"+wr.ID+"/"+wr.Version]; !ok || at > i {
					t.Fatalf("watermark %v published before the change of %s at %v was on the bus", wm, wr.Type, wr.LastUpdated)
				}
			}
		}
	}
	if marks < 5 || afterKill < 3 {
		t.Errorf("%d watermarks (%d after the SIGKILL); want a steady series on both sides of it", marks, afterKill)
	}
	t.Logf("%d writes; %d watermarks, %d of them after the SIGKILL; last %v", len(writes), marks, afterKill, prev)
}

func parseWatermark(t *testing.T, s string) time.Time {
	t.Helper()
	wm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("lowWatermark %q: %v", s, err)
	}
	return wm
}

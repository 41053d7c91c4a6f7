package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// TestE2EAllVersions: CDC_VERSIONS=all, one resource updated 20 times inside one settle
// period (3 s): the bus gets 20 update events, versions 2..21, in that order — where a
// search alone shows only version 21.
func TestE2EAllVersions(t *testing.T) {
	e := newE2E(t, 2)
	e.startConsumer("versions-1", "CDC_VERSIONS=all", "CDC_SETTLE=3s")
	ds := stack.RandomHex(16)
	e.put(e.write(ds, "Observation", "", 0))
	e.waitComplete(60 * time.Second)
	changes, _ := e.events()
	if len(changes) != 1 {
		t.Fatalf("%d events after the create; want 1", len(changes))
	}
	id := changes[0].ID
	var recs [][]byte
	start := time.Now()
	for i := range 20 {
		recs = append(recs, e.write(ds, "Observation", id, i+1))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("20 updates took %v, longer than the settle period", d)
	}
	e.put(recs...)
	e.waitComplete(60 * time.Second)
	time.Sleep(4 * time.Second) // the verification of the range (CDC_VERIFY_AFTER=3s) adds nothing
	changes, _ = e.events()
	var got []string
	for _, c := range changes {
		if c.ID == id {
			got = append(got, c.VersionID)
		}
	}
	want := []string{"1"}
	for v := 2; v <= 21; v++ {
		want = append(want, strconv.Itoa(v))
	}
	if len(got) != len(want) {
		t.Fatalf("versions on the bus %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("versions on the bus %v; want %v, in that order", got, want)
		}
	}
}

package pipeline_test

import (
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
)

// TestUnitWatermark: a datastore's watermark is published every interval, only moves forward
// — across a worker that dies and one that takes over —, and every change with lastUpdated
// before a published watermark is on the bus before that watermark event.
func TestUnitWatermark(t *testing.T) {
	unit(t, func(c *pipeline.Config) { c.WatermarkInterval = 5 * time.Second }, func(t *testing.T, r *rig) {
		a := r.start("w1")
		r.advance(200 * time.Millisecond)
		for range 6 {
			a.write(obsKey, "")
			a.write(patKey, "")
			r.advance(2 * time.Second)
		}
		a.crash()
		b := r.start("w2") // (the dead worker's records reach it again, as KCL redelivers them)
		for range 6 {
			b.write(obsKey, "")
			b.write(patKey, "")
			r.advance(2 * time.Second)
		}
		r.advance(40 * time.Second)

		var last time.Time
		marks := 0
		for i, e := range r.bus.events("") {
			if e.DetailType != event.DetailTypeWatermark {
				continue
			}
			marks++
			wm := detail[event.Watermark](e)
			low, err := time.Parse(time.RFC3339Nano, wm.LowWatermark)
			if err != nil {
				t.Fatalf("watermark %q: %v", wm.LowWatermark, err)
			}
			if low.Before(last) {
				t.Errorf("watermark moved back: %v after %v", low, last)
			}
			last = low
			// Every change before it is on the bus already.
			emittedBefore := map[string]bool{}
			for _, c := range r.bus.events("")[:i] {
				if c.isChange() {
					d := detail[event.ChangeDetail](c)
					emittedBefore[d.ResourceType+"/"+d.ID] = true
				}
			}
			for _, w := range r.fhir.writesBefore(low) {
				if !emittedBefore[w] {
					t.Errorf("watermark %v published before the change %s it covers", low, w)
				}
			}
		}
		if marks < 4 {
			t.Fatalf("%d watermark events in a minute at a 5 s interval", marks)
		}
		if !last.After(t0.Add(20 * time.Second)) {
			t.Errorf("last watermark %v: it did not move past the writes (verification after 10 s)", last.Sub(t0))
		}
	})
}

// TestUnitWatermarkHeldByParkedRange: while a range of the datastore is parked, its
// watermark stays before it.
func TestUnitWatermarkHeldByParkedRange(t *testing.T) {
	unit(t, func(c *pipeline.Config) {
		c.WatermarkInterval, c.ParkedRetry = 5*time.Second, time.Hour
	}, func(t *testing.T, r *rig) {
		forbidden := realFHIRErrors(t)["forbidden"]
		r.fhir.fail = func(op string, k coalesce.Key) error {
			if op == "search" && k == obsKey {
				return forbidden
			}
			return nil
		}
		w := r.start("w1")
		r.advance(200 * time.Millisecond)
		w.write(patKey, "") // a healthy type of the same datastore
		w.write(obsKey, "")
		r.advance(time.Minute)
		ps := r.tl.parkedRanges()
		if len(ps) == 0 {
			t.Fatal("nothing parked")
		}
		evs := r.bus.events(event.DetailTypeWatermark)
		if len(evs) == 0 {
			t.Fatal("no watermark")
		}
		last := detail[event.Watermark](evs[len(evs)-1])
		low, _ := time.Parse(time.RFC3339Nano, last.LowWatermark)
		if low.After(ps[0].Range.From) || last.HeldBy == "" {
			t.Errorf("watermark %v (held by %q) passes the parked range from %v", low, last.HeldBy, ps[0].Range.From)
		}
	})
}

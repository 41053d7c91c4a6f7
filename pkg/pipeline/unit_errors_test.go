package pipeline_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// TestUnitPermanentFHIRErrorsPark: every FHIR failure a retry cannot fix — 403, 404 (a
// deleted datastore), a body that is not a Bundle, a paging loop, a foreign next link — parks
// the range with its reason and acks the record.
func TestUnitPermanentFHIRErrorsPark(t *testing.T) {
	errs := realFHIRErrors(t)
	for _, reason := range []string{"forbidden", "not-found", "malformed-bundle", "paging-loop", "foreign-next-link"} {
		t.Run(reason, func(t *testing.T) {
			unit(t, nil, func(t *testing.T, r *rig) {
				r.fhir.fail = func(op string, _ coalesce.Key) error {
					if op == "search" {
						return errs[reason]
					}
					return nil
				}
				w := r.start("w1")
				_, a := w.write(obsKey, "")
				r.advanceUntil("ack", 100*time.Millisecond, 30*time.Second, a.done)
				failed := r.bus.events(event.DetailTypeRangeFailed)
				if len(failed) != 1 || detail[event.RangeFailed](failed[0]).Reason != reason {
					t.Fatalf("Range Failed %+v, want one with reason %s", failed, reason)
				}
				if ps := r.tl.parkedRanges(); len(ps) != 1 || ps[0].Reason != reason {
					t.Errorf("parked %+v", ps)
				}
			})
		})
	}
}

// TestUnitRetryableFailuresHoldAcks: while a failure a retry can mend lasts — FHIR 429, 5xx,
// no connection; Redis unreachable at any step; EventBridge refusing calls — the record is
// not acked, nothing is parked, and the key is retried; once it passes the record is acked
// and every change emitted once.
func TestUnitRetryableFailuresHoldAcks(t *testing.T) {
	errs := realFHIRErrors(t)
	type failure struct {
		name string
		set  func(r *rig, on *atomic.Bool)
		// emits: the failing step comes after the emit (the events are out, the record is
		// not acked; dedup keeps the retries from emitting them again)
		emits bool
	}
	fhirFails := func(reason string) func(*rig, *atomic.Bool) {
		return func(r *rig, on *atomic.Bool) {
			r.fhir.fail = func(op string, _ coalesce.Key) error {
				if op == "search" && on.Load() {
					return errs[reason]
				}
				return nil
			}
		}
	}
	redisFails := func(op string) func(*rig, *atomic.Bool) {
		return func(r *rig, on *atomic.Bool) {
			r.tl.fail = func(o string) error {
				if o == op && on.Load() {
					return redisDown(o)
				}
				return nil
			}
		}
	}
	cases := []failure{
		{"fhir-throttled", fhirFails("throttled"), false},
		{"fhir-server-error", fhirFails("server-error"), false},
		{"fhir-network", fhirFails("network"), false},
		{"redis-sync", redisFails("sync"), false},
		{"redis-advance", redisFails("advance"), true},
		{"redis-seen", redisFails("seen"), true},
		{"redis-dedup-claim", func(r *rig, on *atomic.Bool) {
			r.dedup.fail = func(op string) error {
				if op == "claim" && on.Load() {
					return redisDown("claim")
				}
				return nil
			}
		}, false},
		{"eventbridge-unavailable", func(r *rig, on *atomic.Bool) {
			r.bus.fail = func(_, _ int, _ busEvent) error {
				if on.Load() {
					return busUnavailable()
				}
				return nil
			}
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unit(t, nil, func(t *testing.T, r *rig) {
				var on atomic.Bool
				on.Store(true)
				c.set(r, &on)
				w := r.start("w1")
				var acks []*ack
				for range 3 {
					_, a := w.write(obsKey, "")
					acks = append(acks, a)
				}
				r.advance(20 * time.Second)
				for i, a := range acks {
					if a.done() {
						t.Errorf("record %d acked while failing", i)
					}
				}
				s := w.pipe.Stats().Snapshot()
				if s.Parked != 0 || len(r.bus.events(event.DetailTypeRangeFailed)) != 0 {
					t.Errorf("a retryable failure parked the range")
				}
				if s.RunRetries < 3 {
					t.Errorf("%d retries in 20 s of failure", s.RunRetries)
				}
				if n := len(r.changes()); n != 0 && !c.emits {
					t.Errorf("%d changes emitted while failing", n)
				}
				on.Store(false)
				r.advanceUntil("acks", 100*time.Millisecond, 10*time.Second, func() bool {
					return acks[0].done() && acks[1].done() && acks[2].done()
				})
				r.emittedOnce(3)
			})
		})
	}
}

// TestUnitEntryRejectedIsCountedNotLooped: an entry EventBridge refuses for good (malformed)
// is counted as failed and not retried; the others of its page are emitted and the record is
// acked.
func TestUnitEntryRejectedIsCountedNotLooped(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		var bad string
		r.bus.fail = func(_, _ int, e busEvent) error {
			if e.isChange() && detail[event.ChangeDetail](e).ID == bad {
				return busMalformed()
			}
			return nil
		}
		w := r.start("w1")
		bad, _ = r.fhir.write(obsKey, "")
		r.fhir.write(obsKey, "")
		_, a := w.write(obsKey, "")
		r.advanceUntil("ack", 100*time.Millisecond, 30*time.Second, a.done)
		r.advance(30 * time.Second)
		if s := w.pipe.Stats().Snapshot(); s.EmitFailed != 1 {
			t.Errorf("%d entries counted as failed, want 1", s.EmitFailed)
		}
		if r.hasEvent(obsKey, bad) {
			t.Error("the refused entry is on the bus")
		}
		r.emittedOnce(2)
		if r.bus.refused != 1 {
			t.Errorf("the refused entry was offered %d times, want once", r.bus.refused)
		}
	})
}

// TestUnitSameVersionTwiceInPageEmittedOnce: a server that repeats an entry within a page
// (offset paging while writes arrive) costs no duplicate event.
func TestUnitSameVersionTwiceInPageEmittedOnce(t *testing.T) {
	unit(t, nil, func(t *testing.T, r *rig) {
		r.fhir.repeat = true
		w := r.start("w1")
		var acks []*ack
		for range 3 {
			_, a := w.write(obsKey, "")
			acks = append(acks, a)
		}
		r.advanceUntil("acks", 100*time.Millisecond, 30*time.Second, func() bool {
			return acks[0].done() && acks[1].done() && acks[2].done()
		})
		r.emittedOnce(3)
		if s := w.pipe.Stats().Snapshot(); s.DedupNew != 3 {
			t.Errorf("%d claims won for 3 changes", s.DedupNew)
		}
	})
}

package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// maxLinks bounds the distinct batch span contexts a run links to, and maxEventIDs the
// CloudTrail event ids a key keeps for its events' trigger.
const (
	maxLinks    = 128
	maxEventIDs = event.MaxTriggerEventIDs
)

// pendingHint is an accepted record waiting for its key's timeline to cover its range.
type pendingHint struct {
	rng  coalesce.Interval
	done func()
}

// keyState is what the scheduler knows of one key. Only the scheduler goroutine touches it.
type keyState struct {
	key     coalesce.Key
	pending []pendingHint
	// want and dels are what the hints asked for since the last sync.
	want          coalesce.Interval
	dels, bundles []coalesce.Interval
	hinted        coalesce.Set // the hints' ranges since the last sync (want is their hull)
	src           source
	// tl is the timeline as last seen; more says the last run left work (for this worker or
	// another): the want reaches past the timeline, or this worker holds the lease.
	tl      coalesce.Timeline
	more    bool
	running bool
	next    time.Time
	fails   int // runs failed in a row, for the backoff
	hints   int // hints since the last run, for the run's span and histogram
	links   []trace.SpanContext
	linkSet map[trace.SpanID]struct{}
}

// source is what a key's events say about where they came from.
type source struct {
	region, account  string
	eventIDs         []string
	creates, updates bool
}

func (ks *keyState) addLink(sc trace.SpanContext) {
	if !sc.IsValid() || len(ks.links) >= maxLinks {
		return
	}
	if _, dup := ks.linkSet[sc.SpanID()]; dup {
		return
	}
	if ks.linkSet == nil {
		ks.linkSet = make(map[trace.SpanID]struct{})
	}
	ks.linkSet[sc.SpanID()] = struct{}{}
	ks.links = append(ks.links, sc)
}

// needsRun says the key has work: hints to cover, or a run left more to do.
func (ks *keyState) needsRun() bool { return len(ks.pending) > 0 || ks.more || !ks.want.Empty() }

// ackCovered runs the acks of the hints the timeline covers now.
func (ks *keyState) ackCovered() {
	kept := ks.pending[:0]
	for _, h := range ks.pending {
		if ks.tl.Covers(h.rng) {
			h.done()
			continue
		}
		kept = append(kept, h)
	}
	clear(ks.pending[len(kept):])
	ks.pending = kept
}

// runJob is one run of a key, handed to its goroutine.
type runJob struct {
	key   coalesce.Key
	want  timeline.Want
	src   source
	hints int
	links []trace.SpanContext
}

// runResult is what a run reports back to the scheduler.
type runResult struct {
	key coalesce.Key
	// tl is the timeline the run saw or made; zero when the sync failed.
	tl   coalesce.Timeline
	more bool
	// pending: another worker was mid-emit on a change; run again soon.
	pending bool
	err     error
	// unsynced is the job's want, given back when the sync failed.
	unsynced timeline.Want
}

// wideHint is a hint that names no single type (a Bundle, an unknown write, an import), or a
// bulk delete, waiting to be resolved into the datastore's known types and its range.
type wideHint struct {
	msg     hintMsg
	arrived time.Time
}

// wideResolved is a wide hint turned into per-type hints: its range and the types to look
// at (none: the datastore has no known type). err: resolving failed and may be retried.
// reported: a bulk delete, reported on the bus for each type; nothing to search.
type wideResolved struct {
	hint     wideHint
	rng      coalesce.Interval
	types    []string
	reported bool
	err      error
}

// schedule owns the keys' states: it files hints, acks them as timelines cover them, and
// starts one run per key and cadence. Runs join wg, which Run waits on.
func (p *Pipeline) schedule(ctx context.Context, wg *sync.WaitGroup) {
	policy := p.backoff()
	keys := make(map[coalesce.Key]*keyState)
	results := make(chan runResult)
	var wide []wideHint
	wideRunning := false
	var wideNext time.Time
	wideResults := make(chan []wideResolved)
	// Reset needs no drain: Clock timers, like time.Timer since Go 1.23, deliver no stale tick.
	timer := p.cfg.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	cfg := p.cfg.Timeline
	for {
		now := p.cfg.Clock.Now()
		next := time.Time{}
		for _, ks := range keys {
			if ks.running || !ks.needsRun() {
				continue
			}
			if !ks.next.After(now) {
				ks.running = true
				job := runJob{key: ks.key, want: timeline.Want{Range: ks.want, Deletes: ks.dels, Bundles: ks.bundles, Hinted: ks.hinted.Intervals(), Region: ks.src.region, Account: ks.src.account},
					src: ks.src, hints: ks.hints, links: ks.links}
				ks.src.eventIDs = nil
				ks.want, ks.dels, ks.bundles, ks.hints, ks.links, ks.linkSet = coalesce.Interval{}, nil, nil, 0, nil, nil
				ks.hinted = coalesce.Set{}
				wg.Go(func() {
					r := p.runKey(ctx, job)
					select {
					case results <- r:
					case <-ctx.Done():
					}
				})
				continue
			}
			if next.IsZero() || ks.next.Before(next) {
				next = ks.next
			}
		}
		if len(wide) > 0 && !wideRunning {
			if !wideNext.After(now) {
				wideRunning = true
				batch := wide
				wide = nil
				wg.Go(func() {
					r := p.resolveWide(ctx, batch)
					select {
					case wideResults <- r:
					case <-ctx.Done():
					}
				})
			} else if next.IsZero() || wideNext.Before(next) {
				next = wideNext
			}
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(now), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			p.releaseAll(keys)
			return
		case k := <-p.sweeps:
			now = p.cfg.Clock.Now()
			ks := keys[k]
			if ks == nil {
				ks = &keyState{key: k, next: now}
				keys[k] = ks
			}
			ks.more = true // run it: the sweep asked its timeline to reach further
		case m := <-p.hints:
			// The time of arrival, not of the loop's top: the wait may have been long, and a
			// hint's range is clamped to its arrival second.
			now = p.cfg.Clock.Now()
			if m.change.AllTypes || m.change.Operation == event.BulkDelete {
				p.stats.WideHints.Add(1)
				wide = append(wide, wideHint{msg: m, arrived: now})
				break
			}
			p.file(keys, m, now)
		case rs := <-wideResults:
			now = p.cfg.Clock.Now()
			wideRunning = false
			failed := false
			for _, r := range rs {
				if r.err != nil {
					wide = append(wide, r.hint)
					failed = true
					continue
				}
				p.fileWide(keys, r, now)
			}
			wideNext = now
			if failed {
				wideNext = now.Add(p.cfg.MaxBackoff / 4)
			}
		case r := <-results:
			now = p.cfg.Clock.Now()
			ks := keys[r.key]
			ks.running = false
			switch {
			case r.err != nil:
				ks.want = ks.want.Hull(r.unsynced.Range)
				ks.dels = append(ks.dels, r.unsynced.Deletes...)
				ks.bundles = append(ks.bundles, r.unsynced.Bundles...)
				for _, h := range r.unsynced.Hinted {
					ks.hinted.Add(h)
				}
				// Full jitter keeps workers that failed together from retrying together.
				ks.fails++
				ks.next = now.Add(policy.Backoff(ks.fails, 0))
				p.stats.RunRetries.Add(1)
			case r.pending:
				ks.next = now.Add(p.cfg.PendingRetry)
				p.stats.RunRetries.Add(1)
			default:
				ks.fails = 0
				ks.next = now.Add(cfg.Window)
			}
			if !r.tl.IsZero() {
				ks.tl, ks.more = r.tl, r.more
				ks.ackCovered()
			}
			if !ks.needsRun() {
				delete(keys, r.key) // quiet: forget it; its next hint syncs again
			}
		case <-timer.C():
		}
	}
}

// file puts an accepted hint into its key's state, acking it at once when the timeline as
// last seen covers it already (a late or repeated record).
func (p *Pipeline) file(keys map[coalesce.Key]*keyState, m hintMsg, now time.Time) {
	ch := m.change
	k := coalesce.Key{DatastoreID: ch.DatastoreID, ResourceType: ch.ResourceType}
	p.fileRange(keys, k, m, p.cfg.Timeline.HintRange(ch.EventTime, now), now)
}

// fileWide files a resolved wide hint into every type's key, with one ack for all of them:
// the record is done when every type's timeline covers the range.
func (p *Pipeline) fileWide(keys map[coalesce.Key]*keyState, r wideResolved, now time.Time) {
	m := r.hint.msg
	if r.reported && len(r.types) > 0 {
		m.done()
		return
	}
	if len(r.types) == 0 {
		p.stats.UntypedHints.Add(1)
		p.cfg.Logger.Warn("a hint names no resource type and none is known for its datastore; nothing to search (set CDC_TYPES)",
			"datastoreId", m.change.DatastoreID, "eventName", m.change.EventName)
		m.done()
		return
	}
	var left atomic.Int64
	left.Store(int64(len(r.types)))
	done := m.done
	for _, t := range r.types {
		sub := m
		sub.change.ResourceType = t
		sub.done = func() {
			if left.Add(-1) == 0 {
				done()
			}
		}
		p.fileRange(keys, coalesce.Key{DatastoreID: m.change.DatastoreID, ResourceType: t}, sub, r.rng, now)
	}
}

// fileRange puts a hint for range rng into key k's state.
func (p *Pipeline) fileRange(keys map[coalesce.Key]*keyState, k coalesce.Key, m hintMsg, rng coalesce.Interval, now time.Time) {
	ch := m.change
	ks := keys[k]
	if ks == nil {
		ks = &keyState{key: k, next: now}
		keys[k] = ks
	}
	if ks.tl.Covers(rng) && ch.Operation != event.Delete && ch.Operation != event.Mixed {
		m.done()
		return
	}
	ks.pending = append(ks.pending, pendingHint{rng: rng, done: m.done})
	ks.want = ks.want.Hull(rng)
	ks.hinted.Add(rng)
	ks.hints++
	ks.addLink(m.link)
	if ks.src.region == "" {
		ks.src.region, ks.src.account = ch.Region, ch.Account
	}
	if len(ks.src.eventIDs) < maxEventIDs {
		ks.src.eventIDs = append(ks.src.eventIDs, ch.EventID)
	}
	switch ch.Operation {
	case event.Create:
		ks.src.creates = true
	case event.Delete:
		ks.dels = append(ks.dels, rng)
	case event.Mixed:
		// A Bundle may create, update and delete.
		ks.src.creates, ks.src.updates = true, true
		ks.bundles = append(ks.bundles, rng)
	default:
		ks.src.updates = true
	}
}

// releaseAll gives up, on the way out, the leases of keys this worker may hold, so other
// workers take over at once rather than after the lease TTL.
func (p *Pipeline) releaseAll(keys map[coalesce.Key]*keyState) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for k, ks := range keys {
		if ks.more {
			_ = p.parts.Timelines.Release(ctx, k)
		}
	}
}

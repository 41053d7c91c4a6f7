package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// outcome is what one search of a range did.
type outcome struct {
	emitted int // changes this search emitted (new ones)
	pending int // changes another worker is mid-emit
	// hinted says whether a delivered hint reached an instant; unhinted counts the emitted
	// changes it said no for (nil hinted: not counted).
	hinted   func(time.Time) bool
	unhinted int
}

// searchChunk reads every resource of k changed in chunk (all pages) and, where delete hints
// reach into it, the deletes in its history; it emits every change not seen before, page by
// page, and records the newest version of each resource for verification. It returns how many
// changes it emitted, or errPendingClaims when some are another worker's to finish.
func (p *Pipeline) searchChunk(ctx context.Context, k coalesce.Key, chunk coalesce.Interval, src source) (int, error) {
	// Read before taking a FHIR slot: it is a Redis call.
	hinted, err := p.parts.Timelines.Hinted(ctx, k, chunk)
	if err != nil {
		return 0, err
	}
	select {
	case p.fhirSem <- struct{}{}:
		defer func() { <-p.fhirSem }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	var claims Claims
	if !p.cfg.NoDedup {
		claims = p.parts.NewClaims()
	}
	trigger := event.Trigger{EventIDs: src.eventIDs, From: chunk.From, To: chunk.To}
	tp := traceParent(trace.SpanContextFromContext(ctx))
	// Only what this search found in its chunk is counted as found without a hint (older
	// versions and deletes before the chunk are the hints' or other chunks' to count).
	o := outcome{hinted: func(t time.Time) bool { return t.Before(chunk.From) || !t.Before(chunk.To) || hinted(t) }}
	defer func() { p.stats.SweepFound.Add(int64(o.unhinted)) }()
	distinct := 0
	err = p.parts.FHIR.Search(ctx, k.DatastoreID, k.ResourceType, chunk.From, chunk.To, func(pg fhir.Page) error {
		p.stats.ResourcesRead.Add(int64(len(pg.Resources)))
		changes := make([]event.Change, 0, len(pg.Resources))
		seen := make([]timeline.Latest, 0, len(pg.Resources))
		inPage := make(map[[2]string]struct{}, len(pg.Resources))
		for _, r := range pg.Resources {
			// The same (id, version) twice in one page is one change.
			if _, dup := inPage[[2]string{r.ID, r.VersionID}]; dup {
				continue
			}
			inPage[[2]string{r.ID, r.VersionID}] = struct{}{}
			distinct++
			changes = append(changes, event.Change{
				DatastoreID: k.DatastoreID, ResourceType: k.ResourceType,
				ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated,
				Action:   event.ActionFor(r.VersionID, src.creates, src.updates),
				Resource: r.Raw, Trigger: trigger, Region: src.region, Account: src.account,
				TraceParent: tp,
			})
			seen = append(seen, timeline.Latest{ID: r.ID, LastUpdated: r.LastUpdated})
		}
		if p.cfg.AllVersions {
			// Before the page's own: each resource's versions reach the bus in order.
			if err := p.skippedVersions(ctx, claims, k, changes, &o); err != nil {
				return err
			}
		}
		if err := p.emit(ctx, claims, changes, &o); err != nil {
			return err
		}
		// Recorded after the emit: a count compared with it can only come up higher than
		// what was emitted, never hide a change.
		return p.parts.Timelines.Seen(ctx, k, seen)
	})
	if err != nil {
		return o.emitted, fmt.Errorf("search: %w", err)
	}
	p.stats.Searches.Add(1)
	p.stats.SearchPagesMin.Add(int64(max(1, (distinct+99)/100)))

	ds, err := p.parts.Timelines.Deletes(ctx, k, chunk)
	if err != nil {
		return o.emitted, err
	}
	// A delete hint's range may start before this chunk (in a part searched before the
	// hint arrived): read its history whole, up to the chunk's end. Repeats are deduped. A
	// hint whose range goes on past the chunk is read again, whole, with the next one.
	var hist coalesce.Set
	for _, d := range ds {
		hist.Add(coalesce.Interval{From: d.Range.From, To: minTime(d.Range.To, chunk.To)})
	}
	final := p.cfg.Timeline.VerifyAfter == 0
	for _, r := range hist.Intervals() {
		if err := p.resolveDeletes(ctx, claims, k, r, ds, final, src, tp, &o); err != nil {
			return o.emitted, err
		}
	}
	if o.pending > 0 {
		return o.emitted, errPendingClaims
	}
	return o.emitted, nil
}

// readDeletes reads the history of ranges searched already, for delete hints that arrived
// after their range was searched.
func (p *Pipeline) readDeletes(ctx context.Context, k coalesce.Key, ranges []coalesce.Interval, src source) error {
	var claims Claims
	if !p.cfg.NoDedup {
		claims = p.parts.NewClaims()
	}
	tp := traceParent(trace.SpanContextFromContext(ctx))
	var s coalesce.Set
	for _, r := range ranges {
		s.Add(r)
	}
	horizon := p.cfg.Clock.Now().Add(-p.cfg.Timeline.VerifyAfter)
	var o outcome
	for _, r := range s.Intervals() {
		hints, err := p.parts.Timelines.Deletes(ctx, k, r)
		if err != nil {
			return err
		}
		// Past the verification horizon already (a hint that late): this read is the last.
		final := p.cfg.Timeline.VerifyAfter == 0 || !r.To.After(horizon)
		if err := p.resolveDeletes(ctx, claims, k, r, hints, final, src, tp, &o); err != nil {
			return err
		}
	}
	if o.pending > 0 {
		return errPendingClaims
	}
	return nil
}

// resolveDeletes reads the type's history over r, emitting the deletes it holds, and settles
// the history hints that lie wholly in r: where history holds at least as many deletes as
// there were DeleteResource hints, they are done; where it holds fewer, they wait for one more
// read at the verification horizon (settleDeletes) — a delete the history index shows late is
// found then — unless this read is final, when the shortfall is reported as "HealthLake CDC
// Deletes Unresolved" (reason missing-from-history): a delete hint is never acked in silence.
// Bundle hints expect nothing (a Bundle may delete nothing): settled by any read.
//
// The shortfall over-reports where a DeleteResource call changed nothing (a second delete of
// a deleted resource); a delete and a re-create within r count as one delete found per
// delete entry, which is what the hints count.
func (p *Pipeline) resolveDeletes(ctx context.Context, claims Claims, k coalesce.Key, r coalesce.Interval, hints []timeline.HistoryHint, final bool, src source, tp string, o *outcome) error {
	pendingBefore := o.pending
	found, reported, err := p.readDeletesIn(ctx, claims, k, r, src, tp, o)
	if err != nil || reported {
		return err // reported: history refused, the hints reported and forgotten as unresolved
	}
	if o.pending > pendingBefore {
		return nil // another worker is mid-emit: settled when this range is read again
	}
	var expected int
	var settled []timeline.HistoryHint
	for _, h := range hints {
		if r.Contains(h.Range) {
			settled = append(settled, h)
			if !h.Bundle {
				expected++
			}
		}
	}
	short := expected - found
	switch {
	case len(settled) == 0:
		return nil
	case short > 0 && !final:
		return nil // read again at the horizon
	case short > 0:
		if err := p.reportUnresolved(ctx, k, r, short, 0, reasonDeleteNotFound); err != nil {
			return err
		}
	}
	return p.parts.Timelines.ForgetDeletes(ctx, k, settled)
}

// readDeletesIn resolves deletes through the type's history: a search cannot see a deleted
// resource. found is the number of delete entries history holds in r. Where the server has
// no history, the hints reaching into r are reported as unresolved (reported is true then).
func (p *Pipeline) readDeletesIn(ctx context.Context, claims Claims, k coalesce.Key, r coalesce.Interval, src source, tp string, o *outcome) (found int, reported bool, err error) {
	trigger := event.Trigger{EventIDs: src.eventIDs, From: r.From, To: r.To}
	err = p.parts.FHIR.HistoryRange(ctx, k.DatastoreID, k.ResourceType, r.From, r.To, func(hp fhir.HistoryPage) error {
		var changes []event.Change
		var gone []string
		for _, e := range hp.Entries {
			if !e.Deleted || e.LastUpdated.Before(r.From) || !e.LastUpdated.Before(r.To) {
				continue
			}
			changes = append(changes, event.Change{
				DatastoreID: k.DatastoreID, ResourceType: k.ResourceType,
				ID: e.ID, VersionID: e.VersionID, LastUpdated: e.LastUpdated,
				Action: event.Delete, Trigger: trigger, Region: src.region, Account: src.account,
				TraceParent: tp,
			})
			gone = append(gone, e.ID)
		}
		found += len(changes)
		if err := p.emit(ctx, claims, changes, o); err != nil {
			return err
		}
		return p.parts.Timelines.Gone(ctx, k, gone)
	})
	if err != nil && retry.IsPermanent(err) {
		return found, true, p.unresolvedDeletes(ctx, k, r, err)
	}
	if err != nil {
		return found, false, fmt.Errorf("history: %w", err)
	}
	return found, false, nil
}

// settleDeletes gives the key's history hints that came up short at their first read one
// last read, once their range ended VerifyAfter ago (as a chunk's verification waits) and
// the timeline covers them (resolveDeletes, final).
func (p *Pipeline) settleDeletes(ctx context.Context, k coalesce.Key, tl coalesce.Timeline, src source) error {
	if p.cfg.Timeline.VerifyAfter == 0 || tl.Frontier.IsZero() {
		return nil // every read is final then
	}
	horizon := minTime(tl.Frontier, p.cfg.Clock.Now().Add(-p.cfg.Timeline.VerifyAfter))
	hints, err := p.parts.Timelines.DeletesBefore(ctx, k, horizon)
	if err != nil {
		return err
	}
	var groups coalesce.Set
	ready := hints[:0]
	for _, h := range hints {
		if tl.Covers(h.Range) {
			ready = append(ready, h)
			groups.Add(h.Range)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	var claims Claims
	if !p.cfg.NoDedup {
		claims = p.parts.NewClaims()
	}
	tp := traceParent(trace.SpanContextFromContext(ctx))
	var o outcome
	for _, g := range groups.Intervals() {
		emitted := o.emitted
		if err := p.resolveDeletes(ctx, claims, k, g, ready, true, src, tp, &o); err != nil {
			return err
		}
		p.stats.DeletesSettled.Add(1)
		if claims != nil { // without dedup every delete found is emitted again
			p.stats.DeletesFoundLate.Add(int64(o.emitted - emitted))
		}
	}
	if o.pending > 0 {
		return errPendingClaims
	}
	return nil
}

// emit claims a page of changes, sends the ones this search won and settles the claims:
// done for what EventBridge accepted, released for what it did not.
func (p *Pipeline) emit(ctx context.Context, claims Claims, changes []event.Change, o *outcome) error {
	if len(changes) == 0 {
		return nil
	}
	ids := make([]dedup.Identity, len(changes))
	for i, c := range changes {
		ids[i] = dedup.Identity{DatastoreID: c.DatastoreID, ResourceType: c.ResourceType, ID: c.ID, VersionID: c.VersionID}
	}
	won := make([]int, 0, len(changes))
	if claims == nil {
		for i := range changes {
			won = append(won, i)
		}
	} else {
		results, err := claims.Claim(ctx, ids)
		if err != nil {
			return err
		}
		for i, r := range results {
			switch r {
			case dedup.New:
				won = append(won, i)
			case dedup.Duplicate:
				p.stats.DedupDuplicate.Add(1)
			case dedup.Pending:
				p.stats.DedupPending.Add(1)
				o.pending++
			}
		}
		p.stats.DedupNew.Add(int64(len(won)))
	}
	if len(won) == 0 {
		return nil
	}

	entries := make([]ebtypes.PutEventsRequestEntry, 0, len(won))
	sent := make([]dedup.Identity, 0, len(won))
	sentAt := make([]time.Time, 0, len(won))
	var release []dedup.Identity
	for _, i := range won {
		e, err := p.parts.Events.Entry(changes[i])
		if err != nil {
			// Cannot happen for a resource the FHIR client parsed; reported, never looped on.
			p.stats.EmitFailed.Add(1)
			p.cfg.Logger.ErrorContext(ctx, "cannot build event", "resourceType", changes[i].ResourceType, "error", err)
			release = append(release, ids[i])
			continue
		}
		entries = append(entries, e)
		sent = append(sent, ids[i])
		sentAt = append(sentAt, changes[i].LastUpdated)
	}
	errs := p.parts.Emitter.Emit(ctx, entries)
	var accepted []dedup.Identity
	var again error // what a retry of the window may mend
	now := p.cfg.Clock.Now()
	for i, err := range errs {
		if err == nil {
			accepted = append(accepted, sent[i])
			if o.hinted != nil && !o.hinted(sentAt[i]) {
				o.unhinted++
			}
			p.met.lag.Record(ctx, now.Sub(sentAt[i]).Seconds(), noRecordAttrs)
			continue
		}
		release = append(release, sent[i])
		if retry.IsPermanent(err) {
			p.stats.EmitFailed.Add(1)
			p.cfg.Logger.ErrorContext(ctx, "event rejected by EventBridge; not retried", "resourceType", sent[i].ResourceType, "error", err)
		} else {
			again = errors.Join(again, err)
		}
	}
	p.stats.Emitted.Add(int64(len(accepted)))
	o.emitted += len(accepted)
	if claims == nil {
		return again
	}
	// A claim left behind expires after the claim TTL, so a failed release only delays.
	p.releaseClaims(ctx, claims, release)
	if len(accepted) > 0 {
		if err := claims.MarkDone(ctx, accepted); err != nil {
			// The events are out; searching again may emit them again once the claims
			// expire. A duplicate, never a loss.
			return errors.Join(again, err)
		}
	}
	if again != nil {
		return fmt.Errorf("emit: %w", again)
	}
	return nil
}

// releaseClaims gives back claims that will not be emitted now; where Redis refuses, they
// expire after the claim TTL.
func (p *Pipeline) releaseClaims(ctx context.Context, claims Claims, ids []dedup.Identity) {
	if len(ids) == 0 {
		return
	}
	if err := claims.Release(ctx, ids); err != nil {
		p.cfg.Logger.WarnContext(ctx, "dedup release failed; claims will expire", "error", err)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// reasonDeleteNotFound is the reason of a "Deletes Unresolved" report for delete hints that
// history, read again at the verification horizon, does not hold.
const reasonDeleteNotFound = "missing-from-history"

// reasonBulkDelete is the reason of a "Deletes Unresolved" report for a `$bulk-delete` job.
const reasonBulkDelete = "bulk-delete"

// unresolvedDeletes reports, as "HealthLake CDC Deletes Unresolved", the history hints reaching
// into r that history cannot name (the server has no type-level history, or refuses it), so
// consumers can reconcile; then forgets them, so each is reported once.
func (p *Pipeline) unresolvedDeletes(ctx context.Context, k coalesce.Key, r coalesce.Interval, cause error) error {
	hints, err := p.parts.Timelines.Deletes(ctx, k, r)
	if err != nil {
		return err
	}
	var deletes, bundles int
	for _, h := range hints {
		if h.Bundle {
			bundles++
		} else {
			deletes++
		}
	}
	if deletes+bundles == 0 {
		return nil // reported already, by the read that forgot them
	}
	if err := p.reportUnresolved(ctx, k, r, deletes, bundles, fhir.Reason(cause)); err != nil {
		return err
	}
	return p.parts.Timelines.ForgetDeletes(ctx, k, hints)
}

// reportUnresolved puts one "Deletes Unresolved" report on the bus: count DeleteResource
// hints, and bundles hints that may have deleted any number, in r.
func (p *Pipeline) reportUnresolved(ctx context.Context, k coalesce.Key, r coalesce.Interval, count, bundles int, reason string) error {
	if err := p.report(ctx, p.parts.Events.DeletesUnresolved(event.DeletesUnresolved{
		DatastoreID: k.DatastoreID, ResourceType: k.ResourceType,
		From: r.From.UTC().Format(timeMillis), To: r.To.UTC().Format(timeMillis),
		Count: count, Bundles: bundles, Reason: reason,
	}, p.cfg.Clock.Now())); err != nil {
		return err
	}
	p.stats.DeletesUnresolved.Add(int64(count + bundles))
	p.cfg.Logger.WarnContext(ctx, "deletes unresolved; reported", "datastoreId", k.DatastoreID,
		"resourceType", k.ResourceType, "deletes", count, "bundles", bundles, "reason", reason)
	return nil
}

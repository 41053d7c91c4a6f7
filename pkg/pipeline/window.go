package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/dedup"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
)

// attempt is what one pass over a window's range found.
type attempt struct {
	found        int // distinct resources changed in the range (new, duplicate or pending)
	deletesFound int
	pending      int // changes another worker is mid-emit: the window must run again
}

// short says the window found fewer changes than it had hints: the search index may lag.
// Several hints for one resource also look short; the re-check costs one query, no more.
func (a attempt) short(w *coalesce.Window) bool {
	return a.found < w.Creates+w.Updates || a.deletesFound < w.Deletes
}

// runWindow searches a window's range until everything in it is emitted or known to be,
// re-checks once if it came up short, then acks the window's records. Only ctx ends it
// early, and then nothing is acked.
//
// One span covers the whole window — settle wait, attempts, re-check — so its duration is
// the window's latency; retries and the re-check are events on it. Every FHIR, Redis and
// EventBridge call of the window is its child.
func (p *Pipeline) runWindow(ctx context.Context, w *coalesce.Window) {
	p.stats.Windows.Add(1)
	from, to := w.Range(p.cfg.Windows)
	ctx, span := p.windowSpan(ctx, w, from, to)
	defer span.End()
	p.met.windowEvents.Record(ctx, int64(w.Events()))
	if p.cfg.Sleep(ctx, w.ReadyAt(p.cfg.Windows).Sub(p.cfg.Now())) != nil {
		span.SetStatus(codes.Error, "stopped before the search")
		return
	}
	log := p.cfg.Logger.With("datastoreId", w.Key.DatastoreID, "resourceType", w.Key.ResourceType)
	backoff := p.cfg.MinBackoff
	rechecked := false
	attempts := 0
	var a attempt
	for {
		var err error
		attempts++
		a, err = p.attempt(ctx, w)
		if ctx.Err() != nil {
			span.SetStatus(codes.Error, "stopped before the window was emitted")
			return
		}
		if err != nil || a.pending > 0 {
			wait := p.cfg.PendingRetry
			if err != nil {
				// Full jitter keeps workers that failed together from retrying together.
				wait = time.Duration(rand.Int64N(int64(backoff))) + time.Millisecond
				backoff = min(backoff*2, p.cfg.MaxBackoff)
				span.RecordError(err)
				log.WarnContext(ctx, "window failed, will retry", "error", err, "retryIn", wait)
			} else {
				span.AddEvent("pending claims", trace.WithAttributes(attribute.Int("hlcdc.pending", a.pending)))
			}
			p.stats.WindowRetries.Add(1)
			if p.cfg.Sleep(ctx, wait) != nil {
				span.SetStatus(codes.Error, "stopped before the window was emitted")
				return
			}
			continue
		}
		backoff = p.cfg.MinBackoff
		if !rechecked && a.short(w) && p.cfg.Windows.Recheck > 0 {
			rechecked = true
			p.stats.Rechecks.Add(1)
			span.AddEvent("recheck", trace.WithAttributes(attribute.Int("hlcdc.found", a.found)))
			if p.cfg.Sleep(ctx, p.cfg.Windows.Recheck) != nil {
				span.SetStatus(codes.Error, "stopped before the re-check")
				return
			}
			continue
		}
		break
	}
	span.SetAttributes(attribute.Int("hlcdc.window.attempts", attempts), attribute.Int("hlcdc.window.found", a.found+a.deletesFound))
	log.DebugContext(ctx, "window done", "events", w.Events(), "found", a.found, "deletesFound", a.deletesFound,
		"attempts", attempts, "rechecked", rechecked, "from", from, "to", to)
	w.Ack()
}

// attempt runs one search (and, for deletes, one history read) over the window's range and
// emits every change it has not seen before, page by page.
func (p *Pipeline) attempt(ctx context.Context, w *coalesce.Window) (attempt, error) {
	select {
	case p.fhirSem <- struct{}{}:
		defer func() { <-p.fhirSem }()
	case <-ctx.Done():
		return attempt{}, ctx.Err()
	}
	var claims Claims
	if !p.cfg.NoDedup {
		claims = p.parts.NewClaims()
	}
	from, to := w.Range(p.cfg.Windows)
	trigger := event.Trigger{EventIDs: w.EventIDs, From: from, To: to}
	tp := traceParent(trace.SpanContextFromContext(ctx))
	var a attempt
	if w.Creates+w.Updates > 0 {
		seen := make(map[string]struct{})
		err := p.parts.FHIR.Search(ctx, w.Key.DatastoreID, w.Key.ResourceType, from, to, func(pg fhir.Page) error {
			p.stats.ResourcesRead.Add(int64(len(pg.Resources)))
			changes := make([]event.Change, 0, len(pg.Resources))
			for _, r := range pg.Resources {
				if _, dup := seen[r.ID]; !dup {
					seen[r.ID] = struct{}{}
					a.found++
				}
				changes = append(changes, event.Change{
					DatastoreID: w.Key.DatastoreID, ResourceType: w.Key.ResourceType,
					ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated,
					Action:   event.ActionFor(r.VersionID, w.Creates > 0, w.Updates > 0),
					Resource: r.Raw, Trigger: trigger, Region: w.Region, Account: w.Account,
					TraceParent: tp,
				})
			}
			return p.emit(ctx, claims, w, changes, &a)
		})
		if err != nil {
			return a, fmt.Errorf("search: %w", err)
		}
		p.stats.Searches.Add(1)
		p.stats.SearchPagesMin.Add(int64(max(1, (len(seen)+99)/100)))
	}
	if w.Deletes > 0 {
		if err := p.deletes(ctx, claims, w, from, to, trigger, tp, &a); err != nil {
			return a, err
		}
	}
	return a, nil
}

// deletes resolves DeleteResource hints through the type's history: a search cannot see a
// deleted resource. Where the server has no history, the deletes are counted as unresolved.
func (p *Pipeline) deletes(ctx context.Context, claims Claims, w *coalesce.Window, from, to time.Time, trigger event.Trigger, tp string, a *attempt) error {
	err := p.parts.FHIR.History(ctx, w.Key.DatastoreID, w.Key.ResourceType, from, func(hp fhir.HistoryPage) error {
		var changes []event.Change
		for _, e := range hp.Entries {
			if !e.Deleted || e.LastUpdated.Before(from) || !e.LastUpdated.Before(to) {
				continue
			}
			a.deletesFound++
			changes = append(changes, event.Change{
				DatastoreID: w.Key.DatastoreID, ResourceType: w.Key.ResourceType,
				ID: e.ID, VersionID: e.VersionID, LastUpdated: e.LastUpdated,
				Action: event.Delete, Trigger: trigger, Region: w.Region, Account: w.Account,
				TraceParent: tp,
			})
		}
		return p.emit(ctx, claims, w, changes, a)
	})
	if err != nil && fhir.IsPermanent(err) {
		p.stats.DeletesUnresolved.Add(int64(w.Deletes))
		p.cfg.Logger.WarnContext(ctx, "deletes unresolved: history unavailable", "datastoreId", w.Key.DatastoreID,
			"resourceType", w.Key.ResourceType, "deletes", w.Deletes, "error", err)
		a.deletesFound = w.Deletes // nothing more to find: do not re-check
		return nil
	}
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	return nil
}

// emit claims a page of changes, sends the ones this attempt won and settles the claims:
// done for what EventBridge accepted, released for what it did not.
func (p *Pipeline) emit(ctx context.Context, claims Claims, w *coalesce.Window, changes []event.Change, a *attempt) error {
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
			return fmt.Errorf("dedup claim: %w", err)
		}
		for i, r := range results {
			switch r {
			case dedup.New:
				won = append(won, i)
			case dedup.Duplicate:
				p.stats.DedupDuplicate.Add(1)
			case dedup.Pending:
				p.stats.DedupPending.Add(1)
				a.pending++
			}
		}
		p.stats.DedupNew.Add(int64(len(won)))
	}
	if len(won) == 0 {
		return nil
	}

	entries := make([]ebtypes.PutEventsRequestEntry, 0, len(won))
	sent := make([]dedup.Identity, 0, len(won))
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
	}
	errs := p.parts.Emitter.Emit(ctx, entries)
	var accepted []dedup.Identity
	var retry error
	for i, err := range errs {
		if err == nil {
			accepted = append(accepted, sent[i])
			continue
		}
		release = append(release, sent[i])
		if bus.IsPermanent(err) {
			p.stats.EmitFailed.Add(1)
			p.cfg.Logger.ErrorContext(ctx, "event rejected by EventBridge; not retried", "resourceType", sent[i].ResourceType, "error", err)
		} else {
			retry = errors.Join(retry, err)
		}
	}
	p.stats.Emitted.Add(int64(len(accepted)))
	if len(accepted) > 0 {
		lag := p.cfg.Now().Sub(w.MinEvent).Seconds()
		for range accepted {
			p.met.lag.Record(ctx, lag, noRecordAttrs)
		}
	}
	if claims == nil {
		return retry
	}
	if len(release) > 0 {
		// A claim left behind expires after the claim TTL, so a failed release only delays.
		if err := claims.Release(ctx, release); err != nil {
			p.cfg.Logger.WarnContext(ctx, "dedup release failed; claims will expire", "error", err)
		}
	}
	if len(accepted) > 0 {
		if err := claims.MarkDone(ctx, accepted); err != nil {
			// The events are out; re-running the window may emit them again once the claims
			// expire. A duplicate, never a loss.
			return errors.Join(retry, fmt.Errorf("dedup mark done: %w", err))
		}
	}
	if retry != nil {
		return fmt.Errorf("emit: %w", retry)
	}
	return nil
}

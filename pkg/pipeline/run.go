package pipeline

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// errPendingClaims says a search met changes another worker is mid-emit: the range is not
// done until that worker marks them (or its claims expire).
var errPendingClaims = errors.New("changes pending at another worker")

// runKey is one run of a key: the stages plan → search → claim → emit → settle.
//
//  1. sync: record this worker's wants in Redis, take or renew the key's lease, read the
//     timeline. Without the lease the run ends here: the holder searches, and the timeline
//     read tells which of this worker's hints are covered.
//  2. plan: the settled chunks between the timeline and the want (coalesce.Plan).
//  3. for each chunk, in order: search it (all pages), claim and emit what it finds, then
//     advance the timeline over it by compare-and-set, recording its verification.
//  4. verify the key's obligations that are due, while the lease is held.
//
// A failure a retry can mend ends the run with an error: nothing past the last advanced
// chunk is acked, and the scheduler tries again after a backoff. A chunk failing for a reason
// retries cannot fix is parked after the configured attempts (see park.go).
func (p *Pipeline) runKey(ctx context.Context, job runJob) runResult {
	p.stats.Runs.Add(1)
	k := job.key
	tls := p.parts.Timelines
	st, err := tls.Sync(ctx, k, job.want, true)
	if err != nil {
		return runResult{key: k, err: err, unsynced: job.want}
	}
	res := runResult{key: k, tl: st.Timeline}
	if job.hints > 0 {
		// Known types are what a hint that names none (a Bundle, an import) is looked for in.
		if err := tls.NoteTypes(ctx, k.DatastoreID, p.cfg.Clock.Now(), k.ResourceType); err != nil {
			return runResult{key: k, err: err, unsynced: timeline.Want{}}
		}
	}
	if !st.Leased {
		res.more = !st.Timeline.Covers(st.Target())
		return res
	}
	if !p.claimKey(k) {
		// This worker's verify loop is verifying the key: run again shortly.
		res.more, res.pending = true, true
		return res
	}
	defer p.unclaimKey(k)
	src := job.src
	if src.region == "" {
		src.region, src.account = st.Region, st.Account
	}
	ctx, span := p.runSpan(ctx, k, job.hints, job.links)
	defer span.End()
	p.met.runHints.Record(ctx, int64(job.hints))

	// Delete hints for ranges searched already need their history read on their own.
	var late []coalesce.Interval
	for _, d := range append(job.want.Deletes, job.want.Bundles...) {
		if st.Timeline.Covers(d) {
			late = append(late, d)
		}
	}
	if len(late) > 0 {
		if err := p.readDeletes(ctx, k, late, src); err != nil {
			return p.endRun(ctx, span, res, err)
		}
	}

	// Redis keeps the timeline in milliseconds: a chunk ending between two would leave the
	// frontier short of it (searched again next time), and a parked range that no next chunk
	// starts at, so every chunk of one outage would be parked and reported on its own.
	now := p.cfg.Clock.Now().Truncate(time.Millisecond)
	target := st.Target()
	chunks := p.cfg.Timeline.Plan(st.Timeline, target, now, p.cfg.MaxChunksPerRun)
	tl := st.Timeline
	for _, c := range chunks {
		verifyAt := p.cfg.Timeline.VerifyAt(c)
		sweep := sweepOnly(st, c)
		skip := false
		if sweep {
			// No hint asked for this range: count it first, read it only on a mismatch.
			p.stats.SweepRanges.Add(1)
			var err error
			if skip, err = p.countSkips(ctx, k, c); err != nil && !retry.IsPermanent(err) {
				res.tl = tl
				return p.endRun(ctx, span, res, err)
			}
			if skip {
				p.stats.SweepSkipped.Add(1)
			}
		}
		if !skip {
			_, err := p.searchChunk(ctx, k, c, src)
			switch {
			case err == nil:
				p.recovered(k)
			case errors.Is(err, errPendingClaims) || !retry.IsPermanent(err):
				res.tl = tl
				return p.endRun(ctx, span, res, err)
			default:
				parked, perr := p.failedChunk(ctx, k, c, err)
				if !parked || perr != nil {
					res.tl = tl
					return p.endRun(ctx, span, res, errors.Join(err, perr))
				}
				verifyAt = time.Time{} // parked: reported, nothing to verify
			}
		}
		if err := tls.Advance(ctx, k, tl, c, verifyAt); err != nil {
			res.tl = tl
			if errors.Is(err, timeline.ErrLeaseLost) || errors.Is(err, timeline.ErrConflict) {
				// Another worker holds the key now; what this run emitted is deduped.
				span.AddEvent("lease lost")
				res.more = true
				return res
			}
			return p.endRun(ctx, span, res, err)
		}
		p.clearFailure(k)
		span.AddEvent("searched", chunkAttrs(c))
		tl = tl.Extend(c)
	}
	res.tl = tl
	if err := p.verifyKey(ctx, k, tl, src); err != nil {
		return p.endRun(ctx, span, res, err)
	}
	res.more = !tl.Covers(target)
	if !res.more {
		// Nothing left to search: let any worker take the key at its next hint.
		if err := tls.Release(ctx, k); err != nil {
			p.cfg.Logger.WarnContext(ctx, "lease release failed; it will expire", "resourceType", k.ResourceType, "error", err)
		}
	}
	span.SetAttributes(attribute.Int("hlcdc.run.chunks", len(chunks)))
	p.cfg.Logger.DebugContext(ctx, "timeline run done", "datastoreId", k.DatastoreID, "resourceType", k.ResourceType,
		"hints", job.hints, "chunks", len(chunks), "frontier", tl.Frontier)
	return res
}

// endRun closes a run that failed: pending claims are retried soon, other errors after a
// backoff. The lease is kept (it expires if this worker does not come back).
func (p *Pipeline) endRun(ctx context.Context, span trace.Span, res runResult, err error) runResult {
	res.more = true
	if errors.Is(err, errPendingClaims) {
		res.pending = true
		span.AddEvent("pending claims")
		return res
	}
	if ctx.Err() != nil {
		span.SetStatus(codes.Error, "stopped")
		res.err = ctx.Err()
		return res
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, "run failed")
	p.cfg.Logger.WarnContext(ctx, "timeline run failed, will retry", "datastoreId", res.key.DatastoreID,
		"resourceType", res.key.ResourceType, "error", err)
	res.err = err
	return res
}

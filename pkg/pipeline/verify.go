package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// verifyKeysPerTick bounds the keys one tick of verifyLoop looks at.
const verifyKeysPerTick = 64

// verifyKey makes the key's due ranges final: each is counted (one `_summary=count` request)
// and compared with the resources it should hold now — those whose newest emitted version
// lies in it. Only on a mismatch, or where the server cannot count, is the range read again,
// emitting what the first search missed (a write the search index showed later than settle).
// Delete hints the verified part of the timeline covers are settled too (settleDeletes).
// The caller holds the key's lease.
//
// The comparison is sound in one direction: a range that holds a change we never emitted
// counts higher than expected, unless at the same moment a resource we emitted in it has a
// newer version that is indexed but not searched yet (at most Settle old) — then the two
// cancel out and the late write waits for the next sweep. The re-read costs one search.
func (p *Pipeline) verifyKey(ctx context.Context, k coalesce.Key, tl coalesce.Timeline, src source) error {
	if p.cfg.Timeline.VerifyAfter == 0 {
		return p.settleDeletes(ctx, k, tl, src)
	}
	tls := p.parts.Timelines
	due, err := tls.Due(ctx, k, p.cfg.Clock.Now())
	if err != nil {
		return err
	}
	ivs := make([]coalesce.Interval, len(due))
	for i, o := range due {
		ivs[i] = o.Interval
	}
	for _, b := range p.cfg.Timeline.Batches(ivs) {
		match, err := p.countMatches(ctx, k, b)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		p.stats.Verified.Add(1)
		if match {
			continue
		}
		p.stats.Rereads.Add(1)
		n, err := p.searchChunk(ctx, k, b, src)
		if err != nil {
			return fmt.Errorf("verify: re-read: %w", err)
		}
		p.stats.FoundByVerify.Add(int64(n))
	}
	// Before the obligations go: while they are there, the watermark stays below the
	// deletes that settling may still find.
	if err := p.settleDeletes(ctx, k, tl, src); err != nil {
		return fmt.Errorf("verify: deletes: %w", err)
	}
	return tls.Verified(ctx, k, due)
}

// countMatches says whether the server's count of iv equals what the key should hold there.
// False when the server cannot count (it ignored the request, said once in the log).
func (p *Pipeline) countMatches(ctx context.Context, k coalesce.Key, iv coalesce.Interval) (bool, error) {
	c, ok := p.parts.FHIR.(Counter)
	if !ok || p.countIgnored.Load() {
		// A server that ignored one count request answers them with whole pages: asking
		// again would read the range twice. Re-read it once instead.
		return false, nil
	}
	n, counted, err := c.Count(ctx, k.DatastoreID, k.ResourceType, iv.From, iv.To)
	if err != nil && retry.IsPermanent(err) {
		// A server that refuses the count request (a 400 for a parameter it does not
		// know) cannot count: re-read, as for one that ignores it.
		counted, err = false, nil
	}
	if err != nil {
		return false, fmt.Errorf("count: %w", err)
	}
	if !counted {
		if p.countIgnored.CompareAndSwap(false, true) {
			p.cfg.Logger.WarnContext(ctx, "the FHIR server ignored or refused a count request; verification re-reads every range instead (see --fhir-count)")
		}
		return false, nil
	}
	want, err := p.parts.Timelines.Expected(ctx, k, iv)
	if err != nil {
		return false, err
	}
	return n == want, nil
}

// verifyLoop verifies, once per cadence, keys whose obligations are due, whoever searched
// them: a worker that died between a range's search and its verification leaves the
// obligation in Redis, and any worker takes it up.
func (p *Pipeline) verifyLoop(ctx context.Context) {
	if p.cfg.Timeline.VerifyAfter == 0 {
		return
	}
	for clock.Sleep(ctx, p.cfg.Clock, p.cfg.Timeline.Window) == nil {
		keys, err := p.parts.Timelines.DueKeys(ctx, p.cfg.Clock.Now(), verifyKeysPerTick)
		if err != nil {
			if ctx.Err() == nil {
				p.cfg.Logger.WarnContext(ctx, "reading due verifications failed, will retry", "error", err)
			}
			continue
		}
		for _, k := range keys {
			if err := p.verifyDue(ctx, k); err != nil && ctx.Err() == nil {
				p.cfg.Logger.WarnContext(ctx, "verification failed, will retry", "datastoreId", k.DatastoreID,
					"resourceType", k.ResourceType, "error", err)
			}
		}
	}
}

// verifyDue verifies one key's due obligations if its lease can be had and no run of the key
// is going on in this worker.
func (p *Pipeline) verifyDue(ctx context.Context, k coalesce.Key) error {
	if !p.claimKey(k) {
		return nil // a run of the key is going on here; it verifies what is due
	}
	defer p.unclaimKey(k)
	st, err := p.parts.Timelines.Sync(ctx, k, timeline.Want{}, true)
	if err != nil || !st.Leased {
		return err
	}
	verr := p.verifyKey(ctx, k, st.Timeline, source{region: st.Region, account: st.Account})
	if verr == nil && st.Timeline.Covers(st.Target()) {
		// Idle key: hand the lease back (a running search of this worker renews it anyway).
		verr = p.parts.Timelines.Release(ctx, k)
	}
	if errors.Is(verr, errPendingClaims) {
		return nil // verified again next tick
	}
	return verr
}

package pipeline

import (
	"context"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// sweepLoop extends, every SweepInterval, the timeline of every known key — every type noted
// for every datastore, plus Config.Types — to now − settle, whether or not a hint asked for
// it: CloudTrail delivers API-call events to EventBridge best effort, and a change whose
// hint never came is then found at most one interval (plus settle) late. One worker marks a
// datastore's keys per interval (the datastore's sweep lease); the key's search lease holder
// does the searching, counting such ranges first and reading only on a mismatch.
func (p *Pipeline) sweepLoop(ctx context.Context) {
	for clock.Sleep(ctx, p.cfg.Clock, p.cfg.SweepInterval) == nil {
		if err := p.sweep(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.WarnContext(ctx, "sweep failed, will retry next interval", "error", err)
		}
	}
}

func (p *Pipeline) sweep(ctx context.Context) error {
	tls := p.parts.Timelines
	now := p.cfg.Clock.Now()
	to := now.Add(-p.cfg.Timeline.Settle).Truncate(time.Millisecond)
	dss, err := tls.KnownDatastores(ctx, now)
	if err != nil {
		return err
	}
	marked := 0
	defer func() { p.cfg.Logger.DebugContext(ctx, "sweep marked", "datastores", len(dss), "keys", marked) }()
	for _, ds := range dss {
		// A little shorter than the interval, so the next sweep of this datastore is not
		// refused by this one's lease.
		ok, err := tls.LeaseSweep(ctx, ds, p.cfg.SweepInterval*9/10)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		known, err := tls.KnownTypes(ctx, ds, now)
		if err != nil {
			return err
		}
		for _, t := range mergeTypes(known, p.cfg.Types) {
			k := coalesce.Key{DatastoreID: ds, ResourceType: t}
			if _, err := tls.Sync(ctx, k, timeline.Want{SweepTo: to}, false); err != nil {
				return err
			}
			marked++
			select {
			case p.sweeps <- k:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// sweepOnly says a chunk lies beyond what any hint asked for: only a sweep brought it in.
func sweepOnly(st timeline.State, c coalesce.Interval) bool {
	return !st.SweepTo.IsZero() && !c.From.Before(st.Want.To)
}

// countSkips says a sweep-only chunk need not be read: the server counts in it exactly the
// resources already emitted there (usually none). False where the server cannot count.
func (p *Pipeline) countSkips(ctx context.Context, k coalesce.Key, c coalesce.Interval) (bool, error) {
	return p.countMatches(ctx, k, c)
}

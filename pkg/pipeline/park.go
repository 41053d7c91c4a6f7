package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// failure is the run of permanent failures of one key's next chunk.
type failure struct {
	chunk    coalesce.Interval
	attempts int
	since    time.Time
}

// failedChunk counts a permanent failure of chunk and parks it once it failed ParkAttempts
// times or for ParkAfter: reported on the bus as "HealthLake CDC Range Failed" and kept in
// Redis for retries. It returns true when the chunk is parked, so the caller moves the
// timeline past it and its records are acked: one bad key must not stall a shard.
func (p *Pipeline) failedChunk(ctx context.Context, k coalesce.Key, chunk coalesce.Interval, cause error) (bool, error) {
	now := p.cfg.Clock.Now()
	p.failMu.Lock()
	tail, parkedBefore := p.parkedTail[k]
	p.failMu.Unlock()
	if parkedBefore && tail.Range.To.Equal(chunk.From) {
		// The key is failing still: grow the parked range it reported instead of reporting
		// (and waiting out the attempts) again for every chunk of one outage.
		grown := tail
		grown.Range.To, grown.Attempts, grown.LastTry = chunk.To, tail.Attempts+1, now
		if err := p.parts.Timelines.Park(ctx, grown); err != nil {
			return false, err
		}
		if err := p.parts.Timelines.Unpark(ctx, tail); err != nil {
			return false, err
		}
		p.failMu.Lock()
		p.parkedTail[k] = grown
		p.failMu.Unlock()
		return true, nil
	}
	p.failMu.Lock()
	f := p.failures[k]
	// The key's next chunk grows while it fails (it ends at now − settle, up to the max
	// span): it is the same failure as long as it starts where the last one did. Comparing
	// whole chunks restarted the count at every attempt of a key with fresh hints, which then
	// held its records until the chunk reached the max span.
	if f == nil || !f.chunk.From.Equal(chunk.From) {
		f = &failure{since: now}
		p.failures[k] = f
	}
	f.chunk = chunk
	f.attempts++
	attempts, since := f.attempts, f.since
	p.failMu.Unlock()
	if attempts < p.cfg.ParkAttempts && now.Sub(since) < p.cfg.ParkAfter {
		return false, nil
	}
	pk := timeline.Parked{Key: k, Range: chunk, Reason: fhir.Reason(cause), Attempts: attempts, Since: since, LastTry: now}
	if err := p.parts.Timelines.Park(ctx, pk); err != nil {
		return false, err
	}
	if err := p.report(ctx, p.parts.Events.RangeFailed(event.RangeFailed{
		DatastoreID: k.DatastoreID, ResourceType: k.ResourceType,
		From: chunk.From.Format(time.RFC3339Nano), To: chunk.To.Format(time.RFC3339Nano),
		Reason: pk.Reason, Detail: cause.Error(), Attempts: attempts,
	}, now)); err != nil {
		return false, err
	}
	p.stats.Parked.Add(1)
	p.failMu.Lock()
	p.parkedTail[k] = pk
	p.failMu.Unlock()
	p.cfg.Logger.ErrorContext(ctx, "range parked: its search keeps failing; reported and acked, retried later",
		"datastoreId", k.DatastoreID, "resourceType", k.ResourceType, "from", chunk.From, "to", chunk.To,
		"reason", pk.Reason, "attempts", attempts)
	p.clearFailure(k)
	return true, nil
}

// clearFailure forgets a key's failures once a chunk of it was searched (or parked).
func (p *Pipeline) clearFailure(k coalesce.Key) {
	p.failMu.Lock()
	delete(p.failures, k)
	p.failMu.Unlock()
}

// recovered forgets the parked tail of a key whose search succeeded again.
func (p *Pipeline) recovered(k coalesce.Key) {
	p.failMu.Lock()
	delete(p.parkedTail, k)
	p.failMu.Unlock()
}

// report puts one operational event on the bus, retrying what a retry can mend; an entry
// EventBridge refuses for good is logged and counted, not looped on.
func (p *Pipeline) report(ctx context.Context, e ebtypes.PutEventsRequestEntry) error {
	policy := p.backoff()
	for n := 1; ; n++ {
		err := p.parts.Emitter.Emit(ctx, []ebtypes.PutEventsRequestEntry{e})[0]
		switch {
		case err == nil:
			return nil
		case retry.IsPermanent(err):
			p.stats.EmitFailed.Add(1)
			p.cfg.Logger.ErrorContext(ctx, "report refused by EventBridge", "detailType", *e.DetailType, "error", err)
			return nil
		}
		if werr := policy.Wait(ctx, n, 0); werr != nil {
			return fmt.Errorf("report: %w", errors.Join(err, werr))
		}
	}
}

// retryParkedLoop searches parked ranges again every ParkedRetry; a range that succeeds is
// emitted and unparked. A worker takes each range's retry lease, so one worker retries it.
func (p *Pipeline) retryParkedLoop(ctx context.Context) {
	tick := min(p.cfg.ParkedRetry, 10*time.Second)
	for clock.Sleep(ctx, p.cfg.Clock, tick) == nil {
		ps, err := p.parts.Timelines.ListParked(ctx)
		if err != nil {
			continue
		}
		now := p.cfg.Clock.Now()
		for _, pk := range ps {
			if now.Sub(pk.LastTry) < p.cfg.ParkedRetry {
				continue
			}
			if ok, err := p.parts.Timelines.LeaseParked(ctx, pk); err != nil || !ok {
				continue
			}
			p.retryParked(ctx, pk)
		}
	}
}

func (p *Pipeline) retryParked(ctx context.Context, pk timeline.Parked) {
	tls := p.parts.Timelines
	// The key's region and account name the datastore in the events' ARN.
	st, err := tls.Sync(ctx, pk.Key, timeline.Want{}, false)
	if err != nil {
		return
	}
	_, err = p.searchChunk(ctx, pk.Key, pk.Range, source{region: st.Region, account: st.Account})
	if err == nil {
		if uerr := tls.Unpark(ctx, pk); uerr == nil {
			p.stats.Unparked.Add(1)
			p.cfg.Logger.InfoContext(ctx, "parked range searched successfully", "datastoreId", pk.Key.DatastoreID,
				"resourceType", pk.Key.ResourceType, "from", pk.Range.From, "to", pk.Range.To)
		}
		return
	}
	pk.Attempts++
	pk.LastTry = p.cfg.Clock.Now()
	if retry.IsPermanent(err) {
		pk.Reason = fhir.Reason(err)
	}
	_ = tls.Park(ctx, pk)
}

package pipeline

import (
	"context"
	"time"

	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// reportRejects puts a "HealthLake CDC Record Rejected" event on the bus for every rejected
// record, in batches, and acks each record once its report is out (or cannot ever be sent).
// Operators route these to any dead-letter target with a rule.
func (p *Pipeline) reportRejects(ctx context.Context) {
	var batch []rejectMsg
	timer := p.cfg.Clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-p.rejects:
			if len(batch) == 0 {
				timer.Reset(p.cfg.RejectBatchDelay)
			}
			batch = append(batch, m)
			if len(batch) < bus.MaxEntries {
				continue
			}
			timer.Stop()
		case <-timer.C():
		}
		if p.flushRejects(ctx, batch) != nil {
			return
		}
		batch = batch[:0]
	}
}

// flushRejects sends one batch of reports, retrying what failed for a reason that can pass.
func (p *Pipeline) flushRejects(ctx context.Context, batch []rejectMsg) error {
	now := p.cfg.Clock.Now()
	todo := make([]int, len(batch))
	for i := range batch {
		todo[i] = i
	}
	policy := p.backoff()
	for n := 1; len(todo) > 0; n++ {
		entries := make([]ebtypes.PutEventsRequestEntry, len(todo))
		for j, i := range todo {
			m := batch[i]
			entries[j] = p.parts.Events.Rejected(string(m.decision.Reason), m.decision.Detail, m.shard, m.seq, now)
		}
		errs := p.parts.Emitter.Emit(ctx, entries)
		var again []int
		for j, err := range errs {
			i := todo[j]
			switch {
			case err == nil:
				p.stats.RejectsReported.Add(1)
				batch[i].done()
			case retry.IsPermanent(err):
				p.stats.EmitFailed.Add(1)
				p.cfg.Logger.Error("rejected-record report refused by EventBridge; acking the record anyway",
					"shard", batch[i].shard, "sequenceNumber", batch[i].seq, "error", err)
				batch[i].done()
			default:
				again = append(again, i)
			}
		}
		todo = again
		if len(todo) > 0 {
			if err := policy.Wait(ctx, n, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

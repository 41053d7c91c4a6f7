package pipeline

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// resolveWide turns hints that name no single type into the types to look at — every type
// known for the datastore (noted in Redis from hints and searches within the dedup TTL) plus
// the configured ones — and their range: the hint's second for a Bundle or an unknown write,
// the job's time for an import.
func (p *Pipeline) resolveWide(ctx context.Context, hs []wideHint) []wideResolved {
	out := make([]wideResolved, len(hs))
	types := make(map[string][]string) // per datastore, read once per batch
	for i, h := range hs {
		ch := h.msg.change
		out[i].hint = h
		if ch.Unrecognised {
			p.stats.Unrecognised.Add(1)
			p.met.unrecognised.Add(ctx, 1, metric.WithAttributes(attribute.String("event_name", ch.EventName)))
		}
		if ch.Operation == event.BulkDelete && ch.ResourceType != "" {
			out[i] = p.reportBulkDelete(ctx, h, []string{ch.ResourceType}) // no need for the known types
			continue
		}
		ts, ok := types[ch.DatastoreID]
		if !ok {
			known, err := p.parts.Timelines.KnownTypes(ctx, ch.DatastoreID, p.cfg.Clock.Now())
			if err != nil {
				out[i].err = err
				continue
			}
			ts = mergeTypes(known, p.cfg.Types)
			types[ch.DatastoreID] = ts
		}
		if ch.ResourceType == "Bundle" && !slices.Contains(ts, "Bundle") {
			ts = append(slices.Clone(ts), "Bundle") // the record named it: a stored Bundle changed
		}
		out[i].types = ts
		if ch.Operation == event.BulkDelete {
			out[i] = p.reportBulkDelete(ctx, h, ts)
			continue
		}
		if ch.Operation != event.Import {
			out[i].rng = p.cfg.Timeline.HintRange(ch.EventTime, h.arrived)
			continue
		}
		rng, err := p.importRange(ctx, ch)
		out[i].rng, out[i].err = rng, err
	}
	// No type known for the datastore: nothing can be searched. Say so on the bus (a range
	// that could not be searched) before the record is acked, never in silence.
	for i := range out {
		r := &out[i]
		if r.err != nil || len(r.types) > 0 {
			continue
		}
		ch := r.hint.msg.change
		r.err = p.report(ctx, p.parts.Events.RangeFailed(event.RangeFailed{
			DatastoreID: ch.DatastoreID,
			From:        r.rng.From.UTC().Format(timeMillis), To: r.rng.To.UTC().Format(timeMillis),
			Reason: "no-known-type",
			Detail: "a " + ch.EventName + " hint names no resource type and none is known for the datastore; set CDC_TYPES",
		}, p.cfg.Clock.Now()))
	}
	return out
}

// reportBulkDelete reports a `$bulk-delete` job as "HealthLake CDC Deletes Unresolved" for each
// of types — the one it names, or every type known when it names none: its deletes happen later, inside
// the job, with no hint each, and a hard delete takes their history too, so nothing can name
// them. The range is from the Unix epoch to the job's submission second: the job's default
// (resources last modified since the datastore's creation, up to its submission); a start or
// end the call chose is not in the CloudTrail record. count is 0: unknown.
func (p *Pipeline) reportBulkDelete(ctx context.Context, h wideHint, types []string) wideResolved {
	ch := h.msg.change
	r := wideResolved{hint: h, types: types, reported: true,
		rng: coalesce.Interval{From: time.Unix(0, 0).UTC(), To: ch.EventTime.Add(time.Second)}}
	for _, t := range types {
		k := coalesce.Key{DatastoreID: ch.DatastoreID, ResourceType: t}
		if r.err = p.reportUnresolved(ctx, k, r.rng, 0, 0, reasonBulkDelete); r.err != nil {
			return r // retried whole: a report may repeat, none is lost
		}
		p.stats.BulkDeletes.Add(1)
	}
	return r
}

// importRange is the `_lastUpdated` range an import job's writes fall in: from its submit
// time to its end (the event's time when DescribeFHIRImportJob gives none), widened by lead
// and lag like any hint.
func (p *Pipeline) importRange(ctx context.Context, ch cloudtrail.Change) (coalesce.Interval, error) {
	submit, end := ch.JobSubmitTime, ch.EventTime
	if p.parts.ImportJobs != nil {
		s, e, err := p.parts.ImportJobs.DescribeImport(ctx, ch.DatastoreID, ch.JobID)
		if err != nil {
			return coalesce.Interval{}, fmt.Errorf("describe import job: %w", err)
		}
		if !s.IsZero() {
			submit = s
		}
		if !e.IsZero() {
			end = e
		}
	}
	if submit.IsZero() || submit.After(end) {
		submit = end.Add(-p.cfg.ImportLookback)
	}
	first := p.cfg.Timeline.HintRange(submit, ch.EventTime)
	last := p.cfg.Timeline.HintRange(end, ch.EventTime)
	return first.Hull(last), nil
}

// mergeTypes is the sorted union of both lists.
func mergeTypes(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

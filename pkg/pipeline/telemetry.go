package pipeline

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
)

// instrumentationName names the pipeline's tracer and meter.
const instrumentationName = "github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"

// instruments are the metrics the pipeline records itself; the plain counters are observed
// from Stats instead, so each number is kept once.
type instruments struct {
	records metric.Int64Counter
	// unrecognised counts hints whose event name no list knows, by name.
	unrecognised metric.Int64Counter
	runHints     metric.Int64Histogram
	lag          metric.Float64Histogram
}

var (
	actAttrs = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "act")))
	noAttrs  = metric.WithAttributeSet(attribute.NewSet())
	// noRecordAttrs is the empty set for synchronous instruments.
	noRecordAttrs = metric.WithAttributeSet(attribute.NewSet())
)

func newInstruments(m metric.Meter, s *Stats) (instruments, error) {
	var in instruments
	var err error
	if in.records, err = m.Int64Counter("hlcdc.records",
		metric.WithDescription("Kinesis records by outcome (act, skip, reject) and, for skip and reject, reason.")); err != nil {
		return in, err
	}
	if in.unrecognised, err = m.Int64Counter("hlcdc.hints.unrecognised",
		metric.WithDescription("Successful HealthLake calls with an event name no list knows, treated as a write to every known type; by event_name.")); err != nil {
		return in, err
	}
	if in.runHints, err = m.Int64Histogram("hlcdc.run.hints",
		metric.WithDescription("Hints of this worker a run of a key's timeline covered."),
		metric.WithExplicitBucketBoundaries(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)); err != nil {
		return in, err
	}
	if in.lag, err = m.Float64Histogram("hlcdc.lag", metric.WithUnit("s"),
		metric.WithDescription("Per emitted event: emit time minus the resource's meta.lastUpdated (the change's commit time)."),
		metric.WithExplicitBucketBoundaries(0.5, 1, 2, 5, 10, 15, 20, 30, 60, 90, 120, 300, 600, 1800)); err != nil {
		return in, err
	}

	type obs struct {
		name, desc string
		attrs      metric.ObserveOption
		v          func(Snapshot) int64
	}
	dedup := func(r string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("result", r)))
	}
	list := []obs{
		{"hlcdc.runs", "Runs of a key's timeline (sync with Redis, and the search where this worker holds the key).", noAttrs, func(s Snapshot) int64 { return s.Runs }},
		{"hlcdc.run.retries", "Runs repeated after a failure or a pending claim.", noAttrs, func(s Snapshot) int64 { return s.RunRetries }},
		{"hlcdc.searches", "Ranges searched (first searches, verification re-reads and parked retries).", noAttrs, func(s Snapshot) int64 { return s.Searches }},
		{"hlcdc.ranges.verified", "Ranges verified at their horizon.", noAttrs, func(s Snapshot) int64 { return s.Verified }},
		{"hlcdc.ranges.reread", "Ranges read again because their count did not match.", noAttrs, func(s Snapshot) int64 { return s.Rereads }},
		{"hlcdc.verify.found", "Changes only a verification re-read found (written late to the search index).", noAttrs, func(s Snapshot) int64 { return s.FoundByVerify }},
		{"hlcdc.ranges.parked", "Ranges parked: their search failed for a reason retries cannot fix (reported on the bus).", noAttrs, func(s Snapshot) int64 { return s.Parked }},
		{"hlcdc.hints.wide", "Hints that name no single type (Bundles, unknown writes, imports): every known type is searched.", noAttrs, func(s Snapshot) int64 { return s.WideHints }},
		{"hlcdc.hints.untyped", "Wide hints for a datastore with no known type: nothing could be searched (set CDC_TYPES).", noAttrs, func(s Snapshot) int64 { return s.UntypedHints }},
		{"hlcdc.sweep.ranges", "Ranges no hint asked for that a sweep brought into a timeline.", noAttrs, func(s Snapshot) int64 { return s.SweepRanges }},
		{"hlcdc.sweep.skipped", "Sweep ranges whose count matched, so they were not read.", noAttrs, func(s Snapshot) int64 { return s.SweepSkipped }},
		{"hlcdc.sweep.found", "Changes found where no delivered hint reached (a sweep or a timeline gap): writes whose CloudTrail hints were lost, or came after their range was searched.", noAttrs, func(s Snapshot) int64 { return s.SweepFound }},
		{"hlcdc.ranges.unparked", "Parked ranges a retry searched successfully.", noAttrs, func(s Snapshot) int64 { return s.Unparked }},
		{"hlcdc.search.pages.min", "The fewest pages those searches could take (100 resources a page).", noAttrs, func(s Snapshot) int64 { return s.SearchPagesMin }},
		{"hlcdc.resources.read", "Resources read from FHIR search and history pages.", noAttrs, func(s Snapshot) int64 { return s.ResourcesRead }},
		{"hlcdc.dedup", "Dedup claims by result (new, duplicate, pending).", dedup("new"), func(s Snapshot) int64 { return s.DedupNew }},
		{"hlcdc.dedup", "", dedup("duplicate"), func(s Snapshot) int64 { return s.DedupDuplicate }},
		{"hlcdc.dedup", "", dedup("pending"), func(s Snapshot) int64 { return s.DedupPending }},
		{"hlcdc.events.emitted", "Change events EventBridge accepted.", noAttrs, func(s Snapshot) int64 { return s.Emitted }},
		{"hlcdc.events.failed", "Events EventBridge refused for good (reported, not retried).", noAttrs, func(s Snapshot) int64 { return s.EmitFailed }},
		{"hlcdc.rejects.reported", "Rejected records reported on the bus.", noAttrs, func(s Snapshot) int64 { return s.RejectsReported }},
		{"hlcdc.deletes.unresolved", "Delete hints that history could not resolve (reported on the bus).", noAttrs, func(s Snapshot) int64 { return s.DeletesUnresolved }},
		{"hlcdc.deletes.settle_reads", "History re-reads that settled delete hints at the verification horizon.", noAttrs, func(s Snapshot) int64 { return s.DeletesSettled }},
		{"hlcdc.deletes.found_late", "Deletes only the re-read at the verification horizon found.", noAttrs, func(s Snapshot) int64 { return s.DeletesFoundLate }},
		{"hlcdc.deletes.bulk_jobs", "Bulk delete jobs (StartFHIRBulkDeleteJob) reported as Deletes Unresolved, one report per type.", noAttrs, func(s Snapshot) int64 { return s.BulkDeletes }},
		{"hlcdc.versions.skipped", "Older versions a search skipped, read back and emitted (CDC_VERSIONS=all).", noAttrs, func(s Snapshot) int64 { return s.SkippedVersions }},
		{"hlcdc.versions.history_reads", "Instance-history reads for skipped versions (CDC_VERSIONS=all).", noAttrs, func(s Snapshot) int64 { return s.VersionReads }},
		{"hlcdc.versions.unreadable", "Skipped versions the server could not give (history off for the type).", noAttrs, func(s Snapshot) int64 { return s.VersionsUnreadable }},
	}
	counters := make(map[string]metric.Int64ObservableCounter)
	var all []metric.Observable
	for _, o := range list {
		if _, ok := counters[o.name]; ok {
			continue
		}
		c, err := m.Int64ObservableCounter(o.name, metric.WithDescription(o.desc))
		if err != nil {
			return in, err
		}
		counters[o.name] = c
		all = append(all, c)
	}
	// The callback lives as long as the meter provider: Stats outlive Run.
	_, err = m.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		snap := s.Snapshot()
		for _, o := range list {
			ob.ObserveInt64(counters[o.name], o.v(snap), o.attrs)
		}
		return nil
	}, all...)
	return in, err
}

// countRecord adds a record to hlcdc.records.
func (in instruments) countRecord(ctx context.Context, d cloudtrail.Decision) {
	if d.Outcome == cloudtrail.Act {
		in.records.Add(ctx, 1, actAttrs)
		return
	}
	outcome := "skip"
	if d.Outcome == cloudtrail.Reject {
		outcome = "reject"
	}
	in.records.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", outcome), attribute.String("reason", string(d.Reason))))
}

// runSpan starts the span that covers one run of a key's timeline — sync, searches,
// emits, verification: a new root (a run serves hints from many batches) with links to the
// batches whose hints it covers.
func (p *Pipeline) runSpan(ctx context.Context, k coalesce.Key, hints int, links []trace.SpanContext) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			attribute.String("hlcdc.datastore_id", k.DatastoreID),
			attribute.String("fhir.resource_type", k.ResourceType),
			attribute.Int("hlcdc.run.hints", hints),
		),
	}
	if len(links) > 0 {
		ls := make([]trace.Link, len(links))
		for i, sc := range links {
			ls[i] = trace.Link{SpanContext: sc}
		}
		opts = append(opts, trace.WithLinks(ls...))
	}
	return p.tracer.Start(ctx, "timeline "+k.ResourceType, opts...)
}

// chunkAttrs describe a searched range on a span event.
func chunkAttrs(iv coalesce.Interval) trace.EventOption {
	return trace.WithAttributes(
		attribute.String("hlcdc.range.from", iv.From.Format(time.RFC3339Nano)),
		attribute.String("hlcdc.range.to", iv.To.Format(time.RFC3339Nano)),
	)
}

// traceParent is the W3C traceparent of sc, or "" when sc is not valid (tracing is off).
func traceParent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

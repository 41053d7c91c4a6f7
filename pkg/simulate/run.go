package simulate

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kinesisput"
)

// Summary is what a run did.
type Summary struct {
	Seed                      uint64 // the seed used (drawn at random when Config.Seed was 0)
	Writes                    int    // FHIR writes made (= manifest lines), Bundle entries and imports included
	Creates, Updates, Deletes int
	Patches                   int // updates sent as JSON Patch (part of Updates)
	Bundles                   int // Bundles posted (their entries are counted in Writes)
	// Imported resources (part of Writes and Creates), in ImportJobs jobs.
	Imported, ImportJobs int
	// Records put into the stream. When all went well, that is one CloudTrail record per
	// single write and per Bundle, minus HintsDropped, plus Duplicates, Hostile and one import
	// event per import job.
	Records int
	// Duplicates and Hostile count the extra records produced (repeated CloudTrail records,
	// hostile records).
	Duplicates, Hostile int
	// HintsDropped counts the CloudTrail records not put (Config.DropHints and DropGap): one
	// per single write, one per Bundle.
	HintsDropped int
	Started      time.Time
	Elapsed      time.Duration
}

// RecordSink puts records into the stream; kinesisput.Sink is one. Put returns nil only when
// every record was accepted; it may reorder them (the consumer expects any order).
type RecordSink interface {
	Put(ctx context.Context, records []types.PutRecordsRequestEntry) error
}

// Run makes the writes cfg describes through writer, lists each in manifest (one JSON line,
// a ManifestEntry) and, with cfg.InjectEvents, puts the matching CloudTrail records into sink
// (nil without InjectEvents). progress, if not nil, is called after each write with the
// writes done and the total expected (0 when unknown); calls are serialized.
//
// The first error stops the run: writes in flight finish or are cancelled, records already
// produced are still put, and the Summary counts what was done. A run bounded by
// cfg.Duration ends without error at the deadline; cancelling ctx ends any run with ctx's
// error.
func Run(ctx context.Context, cfg Config, writer FHIRWriter, sink RecordSink, manifest io.Writer, progress func(done, total int)) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, fmt.Errorf("simulate: %w", err)
	}
	cfg = cfg.withDefaults()
	if writer == nil || manifest == nil || (cfg.InjectEvents && sink == nil) {
		return Summary{}, errors.New("simulate: Run needs a writer, a manifest and (with InjectEvents) a sink")
	}
	if _, ok := writer.(Patcher); cfg.PatchRatio > 0 && !ok {
		return Summary{}, errors.New("simulate: the writer cannot PATCH (PatchRatio)")
	}
	if _, ok := writer.(BundleWriter); cfg.Bundles > 0 && !ok {
		return Summary{}, errors.New("simulate: the writer cannot post Bundles")
	}
	if _, ok := writer.(Importer); cfg.Import > 0 && !ok {
		return Summary{}, errors.New("simulate: the writer cannot import")
	}
	seed := cfg.Seed
	for seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	r := &runner{
		cfg: cfg, writer: writer, sink: sink, progress: progress,
		manifest: json.NewEncoder(manifest),
		total:    expectedWrites(cfg),
		patients: map[string][]string{},
		sum:      Summary{Seed: seed, Started: cfg.Clock.Now()},
	}
	err := r.run(ctx, newPlanner(cfg, seed))
	r.sum.Elapsed = cfg.Clock.Now().Sub(r.sum.Started)
	return r.sum, err
}

type runner struct {
	cfg      Config
	writer   FHIRWriter
	sink     RecordSink
	progress func(done, total int)
	total    int

	start time.Time // when the first write was due; DropGap counts from here

	mu       sync.Mutex // guards manifest, sum and patients
	manifest *json.Encoder
	sum      Summary
	patients map[string][]string // per datastore: ids of live patients, for subject references
}

// run owns three kinds of goroutines: the dispatcher hands planned writes to the workers on
// schedule, the workers write and produce records, one batcher puts the records. Records
// still produced when a worker fails are put before run returns.
func (r *runner) run(ctx context.Context, p *planner) error {
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *op)
	records := make(chan types.PutRecordsRequestEntry, 2*kinesisput.MaxBatchRecords)

	start := r.cfg.Clock.Now()
	r.start = start
	g.Go(func() error {
		defer close(work)
		return r.dispatch(gctx, p, start, work)
	})
	g.Go(func() error {
		defer close(records)
		// Their own group, so that records is closed only after the last worker is done; its
		// context, so that one failed write stops the others at once.
		wg, wctx := errgroup.WithContext(gctx)
		for range r.cfg.Concurrency {
			wg.Go(func() error { return r.work(wctx, work, records) })
		}
		if err := wg.Wait(); err != nil || r.cfg.Import == 0 {
			return err
		}
		// After the other writes: an import job runs on its own, not among API calls.
		return r.runImport(gctx, p, records)
	})
	g.Go(func() error {
		if !r.cfg.InjectEvents {
			for range records {
			}
			return nil
		}
		return r.batch(ctx, records)
	})
	return g.Wait()
}

func (r *runner) dispatch(ctx context.Context, p *planner, start time.Time, work chan<- *op) error {
	for {
		var o *op
		if r.cfg.Bundles > 0 {
			o = p.nextBundle()
		} else {
			o = p.next()
		}
		if o == nil {
			return nil
		}
		if r.cfg.Duration > 0 && o.at >= r.cfg.Duration {
			return nil
		}
		if wait := start.Add(o.at).Sub(r.cfg.Clock.Now()); wait > 0 {
			if err := clock.Sleep(ctx, r.cfg.Clock, wait); err != nil {
				return err
			}
		}
		if r.cfg.Duration > 0 && r.cfg.Clock.Now().Sub(start) >= r.cfg.Duration {
			return nil // fell behind the schedule: the time is up all the same
		}
		select {
		case work <- o:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (r *runner) work(ctx context.Context, work <-chan *op, records chan<- types.PutRecordsRequestEntry) error {
	for o := range work {
		waits := []*op{o}
		if o.entries != nil {
			waits = o.entries
		}
		for _, w := range waits {
			if w.after == nil {
				continue
			}
			select {
			case <-w.after:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		write := r.write
		if o.entries != nil {
			write = r.writeBundle
		}
		if err := write(ctx, o, records); err != nil {
			return err
		}
	}
	return nil
}

// dropped says whether and why the CloudTrail record of o, started at started, is not put.
func (r *runner) dropped(o *op, started time.Time) string {
	switch {
	case !r.cfg.InjectEvents:
		return ""
	case r.cfg.DropGap.contains(started.Sub(r.start)):
		return DroppedGap
	case o.drop:
		return DroppedRandom
	}
	return ""
}

// hint encodes the CloudTrail record of c (plus its duplicate and o's hostile record) unless
// drop says it is lost; it returns the records to put and c's event id.
func (r *runner) hint(o *op, c cloudtrail.Change, drop string) ([]types.PutRecordsRequestEntry, string, error) {
	c.EventID, c.Region, c.Account = uuid.NewString(), r.cfg.Region, r.cfg.Account
	c.EventTime = c.EventTime.UTC().Truncate(time.Second)
	envelopeID := uuid.NewString()
	data, err := cloudtrail.Encode(c, envelopeID, uuid.NewString())
	if err != nil {
		return nil, "", err
	}
	var recs []types.PutRecordsRequestEntry
	if drop == "" {
		key := envelopeID
		if r.cfg.PartitionKey == PartitionByDatastore {
			key = c.DatastoreID
		}
		rec := types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(key)}
		recs = append(recs, rec)
		if o.dup {
			recs = append(recs, rec)
		}
	}
	if o.hostile >= 0 {
		recs = append(recs, types.PutRecordsRequestEntry{Data: hostileRecords[o.hostile].data, PartitionKey: aws.String(uuid.NewString())})
	}
	return recs, c.EventID, nil
}

// send hands records to the batcher.
func send(ctx context.Context, records chan<- types.PutRecordsRequestEntry, recs []types.PutRecordsRequestEntry) error {
	for _, rec := range recs {
		select {
		case records <- rec: // preferred while there is room, even when the run is ending
			continue
		default:
		}
		select {
		case records <- rec:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// write makes one FHIR write, lists it in the manifest, lets the resource's next write go
// and hands its records to the batcher.
func (r *runner) write(ctx context.Context, o *op, records chan<- types.PutRecordsRequestEntry) error {
	res := o.res
	started := r.cfg.Clock.Now()
	var v Version
	var err error
	switch o.kind {
	case event.Create, event.Update:
		var body []byte
		if body, err = Body(res.resourceType, res.seed, o.version, res.id, r.patientRef(res)); err != nil {
			return err
		}
		switch {
		case o.kind == event.Create:
			v, err = r.writer.Create(ctx, res.datastore, res.resourceType, body)
		case o.patch:
			var patch []byte
			if patch, err = Patch(body); err == nil {
				v, err = r.writer.(Patcher).Patch(ctx, res.datastore, res.resourceType, res.id, patch)
			}
		default:
			v, err = r.writer.Update(ctx, res.datastore, res.resourceType, res.id, body)
		}
	case event.Delete:
		v, err = r.writer.Delete(ctx, res.datastore, res.resourceType, res.id)
	}
	if err != nil {
		return fmt.Errorf("simulate: write %d (%s %s): %w", o.seq, o.kind, res.resourceType, err)
	}
	if o.kind == event.Create {
		res.id = v.ID
	}

	// CloudTrail's eventTime is when the call started, in whole seconds. Never after the
	// version's lastUpdated, even if this machine's clock runs ahead of the server's.
	eventTime := started
	if v.LastUpdated.Before(eventTime) {
		eventTime = v.LastUpdated
	}
	entry := ManifestEntry{
		DatastoreID: res.datastore, ResourceType: res.resourceType, ID: res.id, VersionID: v.VersionID,
		LastUpdated: v.LastUpdated.UTC(), Operation: o.kind, Via: ViaREST, Method: method(o),
	}
	var recs []types.PutRecordsRequestEntry
	if r.cfg.InjectEvents {
		change := cloudtrail.Change{DatastoreID: res.datastore, ResourceType: res.resourceType, Operation: o.kind, EventTime: eventTime}
		if o.patch {
			change.EventName = "PatchResource"
		}
		entry.HintDropped = r.dropped(o, started)
		if recs, entry.EventID, err = r.hint(o, change, entry.HintDropped); err != nil {
			return err
		}
	}

	r.mu.Lock()
	err = r.manifest.Encode(entry)
	if err == nil {
		r.count(o, recs, entry.HintDropped)
		if res.resourceType == "Patient" {
			r.trackPatient(res, o.kind)
		}
		if r.progress != nil {
			r.progress(r.sum.Writes, r.total)
		}
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("simulate: write manifest: %w", err)
	}
	close(o.done) // after the manifest line: a resource's lines stay in version order
	return send(ctx, records, recs)
}

// method is the HTTP method of a planned write.
func method(o *op) string {
	switch {
	case o.kind == event.Create:
		return http.MethodPost
	case o.kind == event.Delete:
		return http.MethodDelete
	case o.patch:
		return http.MethodPatch
	}
	return http.MethodPut
}

// count adds a finished write and the records it produced to the summary; r.mu is held.
func (r *runner) count(o *op, recs []types.PutRecordsRequestEntry, drop string) {
	if drop != "" {
		r.sum.HintsDropped++
	}
	if r.cfg.InjectEvents && drop == "" && o.dup {
		r.sum.Duplicates++
	}
	if r.cfg.InjectEvents && o.hostile >= 0 {
		r.sum.Hostile++
	}
	if o.entries != nil {
		r.sum.Bundles++
		for _, e := range o.entries {
			r.countWrite(e)
		}
		return
	}
	r.countWrite(o)
}

func (r *runner) countWrite(o *op) {
	r.sum.Writes++
	if o.patch {
		r.sum.Patches++
	}
	switch o.kind {
	case event.Create:
		r.sum.Creates++
	case event.Update:
		r.sum.Updates++
	case event.Delete:
		r.sum.Deletes++
	}
}

// trackPatient keeps the live patients of each datastore, for other resources' subjects;
// r.mu is held.
func (r *runner) trackPatient(res *resource, kind event.Operation) {
	ids := r.patients[res.datastore]
	switch kind {
	case event.Create:
		r.patients[res.datastore] = append(ids, res.id)
	case event.Delete:
		for i, id := range ids {
			if id == res.id {
				ids[i] = ids[len(ids)-1]
				r.patients[res.datastore] = ids[:len(ids)-1]
				break
			}
		}
	}
}

// patientRef picks a live patient of res's datastore for a subject reference, by the
// resource's seed: which patients exist depends on timing, so this is not deterministic.
func (r *runner) patientRef(res *resource) string {
	if res.resourceType == "Patient" {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.patients[res.datastore]
	if len(ids) == 0 {
		return ""
	}
	return "Patient/" + ids[res.seed%uint64(len(ids))]
}

// batch puts records as they come: it takes what is ready (up to one PutRecords call's worth)
// and puts it, so batches grow under load and records wait little when idle. ctx is the
// caller's, not the run's: after a failed write the records of the writes that succeeded are
// still put, since the manifest lists those writes.
func (r *runner) batch(ctx context.Context, records <-chan types.PutRecordsRequestEntry) error {
	for {
		first, ok := <-records
		if !ok {
			return nil
		}
		buf, size := []types.PutRecordsRequestEntry{first}, kinesisput.RecordSize(first)
		closed := false
	fill:
		for len(buf) < kinesisput.MaxBatchRecords && size < kinesisput.MaxBatchBytes/2 {
			select {
			case rec, ok := <-records:
				if !ok {
					closed = true
					break fill
				}
				buf = append(buf, rec)
				size += kinesisput.RecordSize(rec)
			default:
				break fill
			}
		}
		if err := r.sink.Put(ctx, buf); err != nil {
			return fmt.Errorf("simulate: put records: %w", err)
		}
		r.mu.Lock()
		r.sum.Records += len(buf)
		r.mu.Unlock()
		if closed {
			return nil
		}
	}
}

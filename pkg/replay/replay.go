package replay

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/google/uuid"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kinesisput"
)

// RecordSink puts records into the stream; kinesisput.Sink is one (it retries the records
// Kinesis refuses). Put returns nil only when every record was accepted.
type RecordSink interface {
	Put(ctx context.Context, records []types.PutRecordsRequestEntry) error
}

// DefaultRate is the default bound in records per second: one shard's write capacity
// (1,000 records/s), so a backfill leaves the rest of the stream's capacity to live traffic.
const DefaultRate = 1000

// Options configures a replay.
type Options struct {
	// From and To bound the eventTime of the records replayed: From ≤ eventTime < To. A zero
	// time leaves that side open.
	From, To time.Time
	// Rate bounds the records put per second; default DefaultRate.
	Rate float64
	// DryRun reads, filters and counts without putting anything.
	DryRun bool
	// Datastores, when not empty, is the consumer's allow-list: records of other datastores
	// are not put (counted as Malformed, as the consumer would reject them).
	Datastores []string
	// Clock paces the puts; default clock.Real.
	Clock clock.Clock
}

// Stats counts what a replay read and did.
type Stats struct {
	Files int // log files read: CloudTrail log files and EventBridge events files
	// NotLogFiles are JSON files that are neither (CloudTrail digest files, which share the
	// bucket); they are skipped.
	NotLogFiles int
	Records     int // CloudTrail records and EventBridge events read
	// Put: records put into the stream (in a dry run: that would have been put).
	Put int
	// PutByName counts Put by cloudtrail.Change.EventName: the CloudTrail eventName, or an
	// import event's detail-type. Unknown write-like names count under their own name.
	PutByName map[string]int
	// Ignored: records the consumer skips: other services, reads, searches, management calls,
	// job events that announce no completed import.
	Ignored int
	// Failed: HealthLake calls that failed (errorCode, or a status that is not 2xx); they
	// changed nothing, so they are skipped.
	Failed int
	// OutOfRange: records the consumer acts on with eventTime (an import event: its time)
	// outside [From, To).
	OutOfRange int
	// Malformed: records the consumer would reject (a field missing or not in the shape AWS
	// writes it: eventTime, awsRegion, account, datastoreId, resourceType…; a datastore outside
	// Options.Datastores), or too large for a Kinesis record; skipped.
	Malformed int
}

// Run replays files (see Files) into sink, in order. progress, if not nil, is called after
// each file with the files done and the total. An unreadable file stops the replay with an
// error naming it; what was put before stays put, and Stats counts it.
func Run(ctx context.Context, files []string, sink RecordSink, o Options, progress func(done, total int)) (Stats, error) {
	o.Rate = cmp.Or(o.Rate, DefaultRate)
	if !(o.Rate > 0) || math.IsInf(o.Rate, 0) {
		return Stats{}, fmt.Errorf("replay: rate %v is not a positive number of records per second", o.Rate)
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		return Stats{}, fmt.Errorf("replay: from %s is not before to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	if sink == nil && !o.DryRun {
		return Stats{}, errors.New("replay: no sink (and not a dry run)")
	}
	o.Clock = clock.Or(o.Clock)
	v, err := cloudtrail.NewValidator(o.Datastores)
	if err != nil {
		return Stats{}, fmt.Errorf("replay: %w", err)
	}
	p := &putter{
		sink: sink, o: o, start: o.Clock.Now(), batchSize: max(1, min(kinesisput.MaxBatchRecords, int(o.Rate/10))),
		v: v, stats: Stats{PutByName: map[string]int{}},
	}
	for i, f := range files {
		if err := p.file(ctx, f); err != nil {
			return p.stats, err
		}
		if progress != nil {
			progress(i+1, len(files))
		}
	}
	err = p.flush(ctx)
	return p.stats, err
}

// putter paces and batches the kept records. A batch holds at most a tenth of a second's
// worth, and starts no earlier than the rate allows for the records before it, so the rate
// holds over any window longer than that.
type putter struct {
	sink      RecordSink
	o         Options
	v         *cloudtrail.Validator
	start     time.Time
	batchSize int
	pending   []types.PutRecordsRequestEntry
	names     []string // the event names of pending, for Stats.PutByName
	sent      int
	stats     Stats
}

func (p *putter) file(ctx context.Context, name string) error {
	records, kind, err := readLogFile(name)
	if err != nil {
		return fmt.Errorf("replay: %s: %w", name, err)
	}
	if kind == notLog {
		p.stats.NotLogFiles++
		return nil
	}
	p.stats.Files++
	for _, raw := range records {
		p.stats.Records++
		id := uuid.NewString()
		if kind == eventsFile {
			id = cmp.Or(eventID(raw), id)
		}
		data, dec := judge(p.v, raw, kind == eventsFile, id)
		if p.stats.count(dec) {
			continue
		}
		if !inRange(dec.Change.EventTime, p.o.From, p.o.To) {
			p.stats.OutOfRange++
			continue
		}
		// Without PartitionKeyPath a rule partitions by the event id; so do we.
		if len(data)+len(id) > kinesisput.MaxRecordBytes {
			p.stats.Malformed++
			continue
		}
		if p.o.DryRun {
			p.stats.Put++
			p.stats.PutByName[dec.Change.EventName]++
			continue
		}
		p.names = append(p.names, dec.Change.EventName)
		p.pending = append(p.pending, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(id)})
		if len(p.pending) >= p.batchSize {
			if err := p.flush(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *putter) flush(ctx context.Context) error {
	if len(p.pending) == 0 {
		return nil
	}
	due := p.start.Add(time.Duration(float64(p.sent) * float64(time.Second) / p.o.Rate))
	if err := clock.Sleep(ctx, p.o.Clock, due.Sub(p.o.Clock.Now())); err != nil {
		return err
	}
	if err := p.sink.Put(ctx, p.pending); err != nil {
		return fmt.Errorf("replay: put %d records: %w", len(p.pending), err)
	}
	p.sent += len(p.pending)
	p.stats.Put += len(p.pending)
	for _, n := range p.names {
		p.stats.PutByName[n]++
	}
	p.pending, p.names = p.pending[:0], p.names[:0]
	return nil
}

// fileKind is what an input file holds.
type fileKind int

const (
	notLog     fileKind = iota // JSON that is neither: a CloudTrail digest file, say
	cloudTrail                 // a CloudTrail log file: {"Records": [...]}
	// eventsFile: EventBridge events, one JSON object after another (JSON lines): what an
	// EventBridge archive, the rule's dead-letter queue or a capture of the stream holds. Import
	// job events reach EventBridge only this way, never through CloudTrail's log files.
	eventsFile
)

// readLogFile reads one input file, gzipped or not (judged by its first bytes, not its name):
// a CloudTrail log file, or a file of EventBridge events (judged by its first JSON value).
func readLogFile(name string) (records []json.RawMessage, kind fileKind, err error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, notLog, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, notLog, err
		}
		defer zr.Close()
		r = zr
	}
	dec := json.NewDecoder(r)
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return nil, notLog, fmt.Errorf("not a CloudTrail log file: %w", err)
	}
	var probe struct {
		Records    *[]json.RawMessage `json:"Records"`
		DetailType any                `json:"detail-type"`
	}
	if json.Unmarshal(first, &probe) != nil {
		return nil, notLog, nil // JSON, but not an object
	}
	switch {
	case probe.Records != nil:
		return *probe.Records, cloudTrail, nil
	case probe.DetailType == nil:
		return nil, notLog, nil
	}
	records = append(records, first)
	for n := 2; ; n++ {
		var ev json.RawMessage
		err := dec.Decode(&ev)
		if errors.Is(err, io.EOF) {
			return records, eventsFile, nil
		}
		if err != nil {
			return nil, notLog, fmt.Errorf("events file, event %d: %w", n, err)
		}
		records = append(records, ev)
	}
}

package replay

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// RecordSink puts records into the stream; simulate.KinesisSink is one. Put returns nil only
// when every record was accepted.
type RecordSink interface {
	Put(ctx context.Context, records []types.PutRecordsRequestEntry) error
}

// DefaultRate is the default bound in records per second: one shard's write capacity
// (1,000 records/s), so a backfill leaves the rest of the stream's capacity to live traffic.
const DefaultRate = 1000

// maxRecordBytes is the Kinesis limit on one record (data and partition key).
const maxRecordBytes = 1 << 20

// Options configures a replay.
type Options struct {
	// From and To bound the eventTime of the records replayed: From ≤ eventTime < To. A zero
	// time leaves that side open.
	From, To time.Time
	// Rate bounds the records put per second; default DefaultRate.
	Rate float64
	// DryRun reads, filters and counts without putting anything.
	DryRun bool
	// Now and Sleep are the clock, for tests; default the real ones.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Stats counts what a replay read and did.
type Stats struct {
	Files int // log files read
	// NotLogFiles are JSON files without a "Records" array (CloudTrail digest files, which
	// share the bucket); they are skipped.
	NotLogFiles int
	Records     int // CloudTrail records read
	// Put: records put into the stream (in a dry run: that would have been put).
	Put int
	// Ignored: records that are no HealthLake mutation (other services, reads, searches).
	Ignored int
	// Failed: HealthLake mutations that failed (errorCode, or a status that is not 2xx);
	// they changed nothing, so they are skipped.
	Failed int
	// OutOfRange: successful mutations with eventTime outside [From, To).
	OutOfRange int
	// Malformed: HealthLake mutations lacking a field the envelope needs (eventTime,
	// awsRegion, account), or too large for a Kinesis record; skipped.
	Malformed int
}

// Run replays files (see Files) into sink, in order. progress, if not nil, is called after
// each file with the files done and the total. An unreadable file stops the replay with an
// error naming it; what was put before stays put, and Stats counts it.
func Run(ctx context.Context, files []string, sink RecordSink, o Options, progress func(done, total int)) (Stats, error) {
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if !(o.Rate > 0) || math.IsInf(o.Rate, 0) {
		return Stats{}, fmt.Errorf("replay: rate %v is not a positive number of records per second", o.Rate)
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.From.Before(o.To) {
		return Stats{}, fmt.Errorf("replay: from %s is not before to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	if sink == nil && !o.DryRun {
		return Stats{}, errors.New("replay: no sink (and not a dry run)")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	p := &putter{sink: sink, o: o, start: o.Now(), batchSize: max(1, min(500, int(o.Rate/10)))}
	for i, f := range files {
		if err := p.file(ctx, f); err != nil {
			return p.stats, err
		}
		if progress != nil {
			progress(i+1, len(files))
		}
	}
	err := p.flush(ctx)
	return p.stats, err
}

// putter paces and batches the kept records. A batch holds at most a tenth of a second's
// worth, and starts no earlier than the rate allows for the records before it, so the rate
// holds over any window longer than that.
type putter struct {
	sink      RecordSink
	o         Options
	start     time.Time
	batchSize int
	pending   []types.PutRecordsRequestEntry
	sent      int
	stats     Stats
}

func (p *putter) file(ctx context.Context, name string) error {
	records, ok, err := readLogFile(name)
	if err != nil {
		return fmt.Errorf("replay: %s: %w", name, err)
	}
	if !ok {
		p.stats.NotLogFiles++
		return nil
	}
	p.stats.Files++
	for _, raw := range records {
		p.stats.Records++
		out, r := classify(raw, p.o.From, p.o.To)
		switch out {
		case ignored:
			p.stats.Ignored++
			continue
		case failed:
			p.stats.Failed++
			continue
		case outOfRange:
			p.stats.OutOfRange++
			continue
		case malformed:
			p.stats.Malformed++
			continue
		}
		id := newUUID()
		data, err := wrap(raw, r, id)
		if err != nil {
			return fmt.Errorf("replay: %s: %w", name, err)
		}
		// Without PartitionKeyPath a rule partitions by the event id; so do we.
		if len(data)+len(id) > maxRecordBytes {
			p.stats.Malformed++
			continue
		}
		if p.o.DryRun {
			p.stats.Put++
			continue
		}
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
	if wait := due.Sub(p.o.Now()); wait > 0 {
		if err := p.o.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	if err := p.sink.Put(ctx, p.pending); err != nil {
		return fmt.Errorf("replay: put %d records: %w", len(p.pending), err)
	}
	p.sent += len(p.pending)
	p.stats.Put += len(p.pending)
	p.pending = p.pending[:0]
	return nil
}

// readLogFile reads one CloudTrail log file, gzipped or not (judged by its first bytes, not
// its name). ok is false for JSON without a "Records" array, such as a digest file.
func readLogFile(name string) (records []json.RawMessage, ok bool, err error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, err
		}
		defer zr.Close()
		r = zr
	}
	var log struct {
		Records *[]json.RawMessage `json:"Records"`
	}
	if err := json.NewDecoder(r).Decode(&log); err != nil {
		return nil, false, fmt.Errorf("not a CloudTrail log file: %w", err)
	}
	if log.Records == nil {
		return nil, false, nil
	}
	return *log.Records, true, nil
}

// newUUID returns a random (version 4) UUID, the shape of an EventBridge event id.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

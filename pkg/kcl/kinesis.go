package kcl

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"
	rec "github.com/awslabs/kinesis-aggregation/go/v2/records"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// kplMagic starts every KPL aggregated record; md5.Size bytes of digest end it.
var kplMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

// iteratorTTL is how long Kinesis honours a shard iterator (5 minutes); positions of
// iterators older than this are forgotten.
const iteratorTTL = 5 * time.Minute

// iteratorCallTimeout bounds a GetShardIterator call the library makes.
const iteratorCallTimeout = 5 * time.Second

// kinesisShaper shapes what the library sees of Kinesis, through middleware on a copy of the
// caller's client (the library takes a *kinesis.Client, so middleware is the only way in):
//
//   - GetRecords: a record that looks like a KPL aggregate but would break the library's
//     de-aggregator (every such record, unless KPL aggregation is enabled) gets its first
//     byte changed, so the library passes it on as one plain record; the processor restores
//     the original bytes (restore) before the Handler sees it.
//   - GetRecords: an expired shard iterator (ProcessRecords blocked longer than 5 minutes)
//     is replaced by a fresh one at the same position and the call repeated, instead of
//     failing the library's reader — which would release the lease and start a second
//     reader of the shard while the first one's records are still in flight.
type kinesisShaper struct {
	base *kinesis.Client // the caller's client: fresh iterators are got through it
	kpl  bool            // KPL aggregation enabled: valid aggregates go to the library as they are
	now  func() time.Time

	mu sync.Mutex
	// pos is where each live iterator reads: what GetShardIterator would need to re-create it.
	pos map[string]iterPos
	// escaped holds the original bytes of records whose first byte was changed, by shard and
	// sequence number, until the processor takes them back.
	escaped   map[recKey][]byte
	lastPrune time.Time
}

type recKey struct{ shard, seq string }

type iterPos struct {
	in *kinesis.GetShardIteratorInput
	at time.Time
}

func newKinesisShaper(base *kinesis.Client, kpl bool, now func() time.Time) *kinesisShaper {
	return &kinesisShaper{base: base, kpl: kpl, now: now, pos: map[string]iterPos{}, escaped: map[recKey][]byte{}}
}

// client returns a copy of the base client with the shaping middleware installed.
func (s *kinesisShaper) client() *kinesis.Client {
	return kinesis.New(s.base.Options(), func(o *kinesis.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("hlcdcKCLShaper", s.handle), middleware.Before)
		})
	})
}

func (s *kinesisShaper) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	switch p := in.Parameters.(type) {
	case *kinesis.GetShardIteratorInput:
		// The library calls with context.TODO(): a hung call would hold the reader, and with
		// it Worker.Shutdown, forever. (kinesalite never answers AT_TIMESTAMP while no record
		// of the shard is at or after the timestamp; the reader then retries at the next
		// shard sync, and starts once a record arrived.)
		ctx, cancel := context.WithTimeout(ctx, iteratorCallTimeout)
		defer cancel()
		out, md, err := next.HandleInitialize(ctx, in)
		if err == nil {
			if r, ok := out.Result.(*kinesis.GetShardIteratorOutput); ok && r.ShardIterator != nil {
				s.remember(aws.ToString(r.ShardIterator), iterPos{in: copyIterInput(p), at: s.now()})
			}
		}
		return out, md, err
	case *kinesis.GetRecordsInput:
		iter := aws.ToString(p.ShardIterator)
		out, md, err := next.HandleInitialize(ctx, in)
		var expired *types.ExpiredIteratorException
		if errors.As(err, &expired) {
			if r, rerr := s.renew(ctx, iter, p); rerr == nil {
				out.Result, err = r, nil
			}
		}
		if err == nil {
			if r, ok := out.Result.(*kinesis.GetRecordsOutput); ok {
				s.shape(iter, r)
			}
		}
		return out, md, err
	}
	return next.HandleInitialize(ctx, in)
}

// renew gets a fresh iterator at iter's position and repeats the GetRecords call with it.
func (s *kinesisShaper) renew(ctx context.Context, iter string, p *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	s.mu.Lock()
	pos, ok := s.pos[iter]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("unknown iterator")
	}
	gi := copyIterInput(pos.in)
	if gi.ShardIteratorType == types.ShardIteratorTypeLatest {
		// LATEST again would skip what was put since the first iterator was made.
		gi.ShardIteratorType, gi.Timestamp = types.ShardIteratorTypeAtTimestamp, aws.Time(pos.at)
	}
	ictx, cancel := context.WithTimeout(ctx, iteratorCallTimeout)
	defer cancel()
	it, err := s.base.GetShardIterator(ictx, gi)
	if err != nil {
		return nil, err
	}
	next := *p
	next.ShardIterator = it.ShardIterator
	r, err := s.base.GetRecords(ctx, &next)
	if err != nil {
		return nil, err
	}
	// The caller shapes the response under the old iterator: give it the new position.
	s.mu.Lock()
	s.pos[iter] = iterPos{in: gi, at: s.now()}
	s.mu.Unlock()
	return r, nil
}

// shape moves iter's position to the response's next iterator and escapes the records the
// library's de-aggregator must not see.
func (s *kinesisShaper) shape(iter string, r *kinesis.GetRecordsOutput) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, known := s.pos[iter]
	delete(s.pos, iter)
	shard := ""
	if known {
		shard = aws.ToString(pos.in.ShardId)
		if n := len(r.Records); n > 0 {
			in := copyIterInput(pos.in)
			in.ShardIteratorType, in.StartingSequenceNumber, in.Timestamp = types.ShardIteratorTypeAfterSequenceNumber, r.Records[n-1].SequenceNumber, nil
			pos.in = in
		}
		if r.NextShardIterator != nil {
			pos.at = s.now()
			s.pos[aws.ToString(r.NextShardIterator)] = pos
		}
	}
	for i := range r.Records {
		d := r.Records[i].Data
		if !bytes.HasPrefix(d, kplMagic) || (s.kpl && validAggregate(d)) {
			continue
		}
		changed := bytes.Clone(d)
		changed[0] ^= 0xFF // no longer the magic: the library passes the record on as it is
		if shard != "" {
			s.escaped[recKey{shard, aws.ToString(r.Records[i].SequenceNumber)}] = d
		}
		r.Records[i].Data = changed
	}
	s.pruneLocked()
}

// restore returns the original bytes of an escaped record, once.
func (s *kinesisShaper) restore(shard, seq string) ([]byte, bool) {
	if s == nil {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.escaped[recKey{shard, seq}]
	delete(s.escaped, recKey{shard, seq})
	return d, ok
}

func (s *kinesisShaper) remember(iter string, p iterPos) {
	s.mu.Lock()
	s.pos[iter] = p
	s.pruneLocked()
	s.mu.Unlock()
}

// pruneLocked drops, once a minute, the positions of iterators Kinesis no longer honours
// (readers that ended leave their last one behind).
func (s *kinesisShaper) pruneLocked() {
	now := s.now()
	if now.Sub(s.lastPrune) < time.Minute {
		return
	}
	s.lastPrune = now
	for it, p := range s.pos {
		if now.Sub(p.at) > 2*iteratorTTL {
			delete(s.pos, it)
		}
	}
}

func copyIterInput(in *kinesis.GetShardIteratorInput) *kinesis.GetShardIteratorInput {
	c := *in
	return &c
}

// validAggregate reports whether the library's de-aggregator would expand d without an error
// or a panic: the digest matches, the protobuf decodes, and every record names a partition
// key that is in the table. (A digest mismatch makes the de-aggregator pass the record on
// as it is, but such a record is escaped too: it is not an aggregate.)
func validAggregate(d []byte) bool {
	body := d[len(kplMagic):]
	if len(body) <= md5.Size {
		return false
	}
	msg, sum := body[:len(body)-md5.Size], body[len(body)-md5.Size:]
	if digest := md5.Sum(msg); !bytes.Equal(digest[:], sum) {
		return false
	}
	var agg rec.AggregatedRecord
	if err := proto.Unmarshal(msg, protoadapt.MessageV2Of(&agg)); err != nil {
		return false
	}
	for _, r := range agg.Records {
		if r == nil || r.PartitionKeyIndex == nil || *r.PartitionKeyIndex >= uint64(len(agg.PartitionKeyTable)) {
			return false
		}
	}
	return true
}

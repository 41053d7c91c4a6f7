package event

import (
	"cmp"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// MaxRejectedDetailBytes bounds the free text of a rejected-record entry.
const MaxRejectedDetailBytes = 1024

// Rejected builds the "HealthLake CDC Record Rejected" entry for an input record the pipeline
// acked without acting on it, so operators can route reports to any dead-letter target with a
// rule. It carries where the record is (shard, sequence number) and why it was rejected (a
// reason code and a short text, cut to MaxRejectedDetailBytes) — never the record's data, which
// may hold PHI: the detail text must not quote it. Time is at (when it was rejected).
func (b Builder) Rejected(reason, detail, shardID, sequenceNumber string, at time.Time) types.PutEventsRequestEntry {
	return b.operational(DetailTypeRejected, Rejected{
		Reason:         reason,
		Detail:         truncate(detail, MaxRejectedDetailBytes),
		ShardID:        shardID,
		SequenceNumber: sequenceNumber,
	}, at)
}

// operational builds an entry of the consumer's own reports (Record Rejected, Range Failed)
// at time at: the deployment's Source and bus, the detail as JSON.
func (b Builder) operational(detailType string, detail any, at time.Time) types.PutEventsRequestEntry {
	js, err := marshal(detail)
	if err != nil {
		// Strings always marshal (invalid UTF-8 becomes U+FFFD); keep the entry valid anyway.
		js = `{"reason":"unencodable"}`
	}
	source := cmp.Or(b.opts.Source, DefaultSource)
	e := types.PutEventsRequestEntry{
		Source:       aws.String(source),
		DetailType:   aws.String(detailType),
		Detail:       aws.String(js),
		EventBusName: b.busName(),
	}
	if !at.IsZero() {
		t := at.UTC()
		e.Time = &t
	}
	return e
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 {
		r, size := utf8.DecodeLastRuneInString(s)
		if r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}

package bus

import "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

// Limits of one PutEvents call.
const (
	// MaxEntries is the most entries one PutEvents call takes.
	MaxEntries = 10
	// MaxRequestBytes is the most the entries of one call may weigh together, by EntrySize, as
	// AWS documents it; the default of Options.MaxRequestBytes. Also the default entry limit
	// (Options.MaxEntryBytes).
	MaxRequestBytes = 256 * 1024
	// timeBytes is what a set Time counts, whatever its value.
	timeBytes = 14
)

// EntrySize is the size EventBridge charges an entry against MaxRequestBytes, as the AWS
// EventBridge User Guide documents it in "Calculating Amazon EventBridge PutEvents event entry
// size": 14 bytes if Time is set, plus the UTF-8 byte length of Source, DetailType and Detail,
// plus that of each Resources string. EventBusName and TraceHeader are not counted. Go strings
// hold UTF-8, so their byte length is the UTF-8 length.
//
// The event EventBridge delivers is always larger than this (it adds the envelope's keys), but
// the limit is on the entry.
func EntrySize(e types.PutEventsRequestEntry) int {
	n := 0
	if e.Time != nil {
		n += timeBytes
	}
	n += strLen(e.Source) + strLen(e.DetailType) + strLen(e.Detail)
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

func strLen(s *string) int {
	if s == nil {
		return 0
	}
	return len(*s)
}

// pack splits the indexes of entries (in order) into calls of at most MaxEntries entries and
// maxBytes bytes, greedily: a call is closed when the next entry does not fit. An entry marked
// solo goes in a call of its own. Every entry must fit a call on its own
// (sizes[i] <= maxBytes).
func pack(indexes []int, sizes []int, solo []bool, maxBytes int) [][]int {
	calls := make([][]int, 0, len(indexes)/MaxEntries+1)
	start, curBytes := 0, 0
	for k, i := range indexes {
		n := k - start
		if n > 0 && (n == MaxEntries || curBytes+sizes[i] > maxBytes || solo[i] || solo[indexes[k-1]]) {
			calls = append(calls, indexes[start:k:k])
			start, curBytes = k, 0
		}
		curBytes += sizes[i]
	}
	if start < len(indexes) {
		calls = append(calls, indexes[start:len(indexes):len(indexes)])
	}
	return calls
}

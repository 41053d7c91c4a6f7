package replay

import (
	"encoding/json"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
)

// judge returns the Kinesis record data the rule would have delivered for raw and the
// consumer's own Decision on it (cloudtrail.Validator.Decide), so a replay puts exactly what
// the consumer acts on. A CloudTrail record (wrapped false) goes into a new envelope with event
// id id (cloudtrail.WrapRecord); an EventBridge event (wrapped true: a line of an events file)
// is judged and put as it is. A record WrapRecord cannot wrap (not a JSON object) is decided
// as the consumer decides such data: rejected, undecodable.
func judge(v *cloudtrail.Validator, raw json.RawMessage, wrapped bool, id string) ([]byte, cloudtrail.Decision) {
	if wrapped {
		return raw, v.Decide(raw)
	}
	data, err := cloudtrail.WrapRecord(raw, id)
	if err != nil {
		return nil, cloudtrail.Decision{Outcome: cloudtrail.Reject, Reason: cloudtrail.Undecodable, Detail: "record is not a JSON object"}
	}
	return data, v.Decide(data)
}

// count adds a record the consumer does not act on to the Stats counter for its Decision,
// and reports whether it did: Skip is Ignored (Failed for a failed call, which changed
// nothing), Reject is Malformed. An Act decision is counted by the caller.
func (s *Stats) count(d cloudtrail.Decision) bool {
	switch {
	case d.Outcome == cloudtrail.Act:
		return false
	case d.Outcome == cloudtrail.Skip && d.Reason == cloudtrail.FailedCall:
		s.Failed++
	case d.Outcome == cloudtrail.Skip:
		s.Ignored++
	default:
		s.Malformed++
	}
	return true
}

// inRange reports whether t is in [from, to); a zero bound leaves that side open.
func inRange(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

// eventID is an EventBridge event's id, or "" if it has none.
func eventID(data []byte) string {
	var e struct {
		ID any `json:"id"`
	}
	json.Unmarshal(data, &e)
	s, _ := e.ID.(string)
	return s
}

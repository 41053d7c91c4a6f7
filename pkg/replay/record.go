package replay

import (
	"encoding/json"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
)

// outcome is what replay does with one input record.
type outcome int

const (
	keep       outcome = iota
	ignored            // the consumer would skip it: not HealthLake, a read, a management call…
	failed             // a HealthLake call that failed: nothing changed
	outOfRange         // one the consumer acts on, outside [From, To)
	malformed          // one the consumer would reject (a missing or broken field), or too large
)

// decider turns input records into the Kinesis record data the rule would have delivered and
// judges it with the consumer's own decision (cloudtrail.Validator.Decide), so a replay keeps
// exactly what the consumer acts on: single-type writes, PATCH, Bundles, unknown write-like
// calls and completed imports.
type decider struct {
	v        *cloudtrail.Validator
	from, to time.Time
}

// decide judges one record. A CloudTrail record (wrapped false) goes into a new envelope with
// event id id; an EventBridge event (wrapped true: a line of an events file) is judged and put
// as it is. data is the record data to put.
func (d decider) decide(raw json.RawMessage, wrapped bool, id string) (out outcome, data []byte, dec cloudtrail.Decision) {
	data = raw
	if !wrapped {
		var err error
		if data, err = cloudtrail.WrapRecord(raw, id); err != nil {
			return malformed, nil, dec
		}
	}
	dec = d.v.Decide(data)
	switch dec.Outcome {
	case cloudtrail.Act:
	case cloudtrail.Skip:
		if dec.Reason == cloudtrail.FailedCall {
			return failed, nil, dec
		}
		return ignored, nil, dec
	default:
		return malformed, nil, dec
	}
	t := dec.Change.EventTime
	if (!d.from.IsZero() && t.Before(d.from)) || (!d.to.IsZero() && !t.Before(d.to)) {
		return outOfRange, nil, dec
	}
	return keep, data, dec
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

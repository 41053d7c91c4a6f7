package replay

import (
	"encoding/json"
	"time"
)

// outcome is what replay does with one CloudTrail record.
type outcome int

const (
	keep       outcome = iota
	ignored            // not a HealthLake mutation
	failed             // a HealthLake mutation that failed: nothing changed
	outOfRange         // a successful mutation outside [From, To)
	malformed          // a HealthLake mutation without the fields an envelope needs
)

// ctRecord holds the fields of a CloudTrail record that decide its fate and fill the
// envelope. Everything else stays in the raw record.
type ctRecord struct {
	EventSource        string `json:"eventSource"`
	EventName          string `json:"eventName"`
	EventTime          string `json:"eventTime"`
	AWSRegion          string `json:"awsRegion"`
	RecipientAccountID string `json:"recipientAccountId"`
	UserIdentity       struct {
		AccountID string `json:"accountId"`
	} `json:"userIdentity"`
	ErrorCode        string          `json:"errorCode"`
	ResponseElements json.RawMessage `json:"responseElements"`
}

var mutations = map[string]bool{"CreateResource": true, "UpdateResource": true, "DeleteResource": true}

// classify decides about one raw record; for a kept record it returns the envelope fields.
func classify(raw json.RawMessage, from, to time.Time) (outcome, ctRecord) {
	var r ctRecord
	if json.Unmarshal(raw, &r) != nil {
		// Most likely a type oddity in a field we do not need from a record we would not
		// keep; look again at only the deciding fields.
		var d struct {
			EventSource any `json:"eventSource"`
			EventName   any `json:"eventName"`
		}
		if json.Unmarshal(raw, &d) != nil || d.EventSource != "healthlake.amazonaws.com" || !isMutation(d.EventName) {
			return ignored, r
		}
		return malformed, r
	}
	if r.EventSource != "healthlake.amazonaws.com" || !mutations[r.EventName] {
		return ignored, r
	}
	if r.ErrorCode != "" || !succeeded(r.ResponseElements) {
		return failed, r
	}
	t, err := time.Parse(time.RFC3339, r.EventTime)
	if err != nil || r.AWSRegion == "" || r.account() == "" {
		return malformed, r
	}
	if (!from.IsZero() && t.Before(from)) || (!to.IsZero() && !t.Before(to)) {
		return outOfRange, r
	}
	return keep, r
}

func isMutation(v any) bool {
	s, ok := v.(string)
	return ok && mutations[s]
}

// succeeded: responseElements is an object whose statusCode is 2xx, as the consumer demands.
func succeeded(raw json.RawMessage) bool {
	var re struct {
		StatusCode *int `json:"statusCode"`
	}
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &re) != nil || re.StatusCode == nil {
		return false
	}
	return *re.StatusCode/100 == 2
}

// account is the envelope's account: the account that received the event, as EventBridge
// sets it.
func (r ctRecord) account() string {
	if r.RecipientAccountID != "" {
		return r.RecipientAccountID
	}
	return r.UserIdentity.AccountID
}

// head is the EventBridge event "AWS API Call via CloudTrail" without its detail, with the
// fields in the order EventBridge writes them.
type head struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
}

// wrap puts a kept CloudTrail record into the envelope the rule delivers, with event id id.
// The record is spliced in byte for byte: json.Marshal would re-encode it (compacting it and
// escaping <, > and &).
func wrap(raw json.RawMessage, r ctRecord, id string) ([]byte, error) {
	h, err := json.Marshal(head{
		Version: "0", ID: id, DetailType: "AWS API Call via CloudTrail", Source: "aws.healthlake",
		Account: r.account(), Time: r.EventTime, Region: r.AWSRegion, Resources: []string{},
	})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(h)+len(raw)+12)
	out = append(out, h[:len(h)-1]...) // without the closing brace
	out = append(out, `,"detail":`...)
	out = append(out, raw...)
	return append(out, '}'), nil
}

package cloudtrail

import (
	"encoding/json"
	"errors"
)

// eventHead is the EventBridge event without its detail, with the fields in the order
// EventBridge writes them. Encode, EncodeImportEvent and WrapRecord write every envelope this
// package produces with it; envelope (wire.go) is the reading side.
type eventHead struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
}

// eventBridgeEvent is an EventBridge event with a detail of type D.
type eventBridgeEvent[D any] struct {
	eventHead
	Detail D `json:"detail"`
}

// WrapRecord returns the Kinesis record data the EventBridge rule delivers for one CloudTrail
// record as CloudTrail writes it to its S3 log files: the "AWS API Call via CloudTrail"
// envelope with event id envelopeID, time the record's eventTime, region its awsRegion and
// account its recipientAccountId (else userIdentity.accountId), as EventBridge sets them. The
// record goes into detail byte for byte, so Decide judges exactly what CloudTrail wrote.
//
// WrapRecord judges nothing: a record of another service, a failed call or one lacking these
// fields is wrapped all the same (a missing field stays empty), and Decide on the result says
// what the consumer would do with it. The error is only for a record that is not a JSON object.
func WrapRecord(record []byte, envelopeID string) ([]byte, error) {
	// any, not string: a field of another JSON type must not hide the others; it stays empty
	// and Decide names it.
	var r struct {
		EventTime          any `json:"eventTime"`
		AWSRegion          any `json:"awsRegion"`
		RecipientAccountID any `json:"recipientAccountId"`
		UserIdentity       any `json:"userIdentity"`
	}
	if err := json.Unmarshal(record, &r); err != nil {
		return nil, errors.New("cloudtrail: wrap record: not a JSON object")
	}
	str := func(v any) string { s, _ := v.(string); return s }
	account := str(r.RecipientAccountID)
	if ui, ok := r.UserIdentity.(map[string]any); ok && account == "" {
		account = str(ui["accountId"])
	}
	h, err := json.Marshal(eventHead{
		Version: "0", ID: envelopeID, DetailType: detailTypeAPICall, Source: "aws.healthlake",
		Account: account, Time: str(r.EventTime), Region: str(r.AWSRegion), Resources: []string{},
	})
	if err != nil {
		return nil, err
	}
	// Spliced, not marshalled: json.Marshal would compact the record and escape <, > and &.
	out := make([]byte, 0, len(h)+len(record)+12)
	out = append(out, h[:len(h)-1]...) // without the closing brace
	out = append(out, `,"detail":`...)
	out = append(out, record...)
	return append(out, '}'), nil
}

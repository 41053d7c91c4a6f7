package cloudtrail

import (
	"encoding/json"
	"fmt"
	"time"
)

// Encode returns the Kinesis record data an EventBridge rule delivers for c: the
// "AWS API Call via CloudTrail" envelope around the CloudTrail record of one successful
// HealthLake mutation, shaped like the fixtures (resourceId hidden, eventTime in whole
// seconds). envelopeID is the EventBridge event id; requestID the API request id. The producer
// uses it where no real CloudTrail exists; Decide(Encode(c)) gives c back.
func Encode(c Change, envelopeID, requestID string) ([]byte, error) {
	names := map[Operation]struct {
		event  string
		status int
	}{Create: {"CreateResource", 201}, Update: {"UpdateResource", 200}, Delete: {"DeleteResource", 204}}
	op, ok := names[c.Operation]
	if !ok {
		return nil, fmt.Errorf("cloudtrail: encode: operation %v", c.Operation)
	}
	at := c.EventTime.UTC().Truncate(time.Second).Format(time.RFC3339)
	type params struct {
		DatastoreID  string `json:"datastoreId"`
		ResourceType string `json:"resourceType"`
		ResourceID   string `json:"resourceId"`
	}
	type response struct {
		StatusCode int `json:"statusCode"`
	}
	type identity struct {
		Type        string `json:"type"`
		PrincipalID string `json:"principalId"`
		AccountID   string `json:"accountId"`
	}
	type detail struct {
		EventVersion       string   `json:"eventVersion"`
		UserIdentity       identity `json:"userIdentity"`
		EventTime          string   `json:"eventTime"`
		EventSource        string   `json:"eventSource"`
		EventName          string   `json:"eventName"`
		AWSRegion          string   `json:"awsRegion"`
		RequestParameters  params   `json:"requestParameters"`
		ResponseElements   response `json:"responseElements"`
		RequestID          string   `json:"requestID"`
		EventID            string   `json:"eventID"`
		ReadOnly           bool     `json:"readOnly"`
		EventType          string   `json:"eventType"`
		ManagementEvent    bool     `json:"managementEvent"`
		RecipientAccountID string   `json:"recipientAccountId"`
		EventCategory      string   `json:"eventCategory"`
	}
	type envelope struct {
		Version    string   `json:"version"`
		ID         string   `json:"id"`
		DetailType string   `json:"detail-type"`
		Source     string   `json:"source"`
		Account    string   `json:"account"`
		Time       string   `json:"time"`
		Region     string   `json:"region"`
		Resources  []string `json:"resources"`
		Detail     detail   `json:"detail"`
	}
	return json.Marshal(envelope{
		Version: "0", ID: envelopeID, DetailType: "AWS API Call via CloudTrail", Source: "aws.healthlake",
		Account: c.Account, Time: at, Region: c.Region, Resources: []string{},
		Detail: detail{
			EventVersion: "1.08",
			UserIdentity: identity{Type: "AssumedRole", PrincipalID: "AROAEXAMPLEID:healthlake-cdc-producer", AccountID: c.Account},
			EventTime:    at, EventSource: "healthlake.amazonaws.com", EventName: op.event, AWSRegion: c.Region,
			RequestParameters: params{DatastoreID: c.DatastoreID, ResourceType: c.ResourceType, ResourceID: "HIDDEN_DUE_TO_SECURITY_REASONS"},
			ResponseElements:  response{StatusCode: op.status},
			RequestID:         requestID, EventID: c.EventID, EventType: "AwsApiCall", ManagementEvent: true,
			RecipientAccountID: c.Account, EventCategory: "Management",
		},
	})
}

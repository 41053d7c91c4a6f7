// Package cloudtrail decides what the consumer does with one Kinesis record: the EventBridge
// event ("AWS API Call via CloudTrail") that wraps the CloudTrail record of a HealthLake FHIR
// API call. A Validator turns the record's data into a Decision: Act on a successful
// CreateResource, UpdateResource or DeleteResource (with the validated Change), Skip anything
// else that is well formed (reads, searches, failed calls, other sources), or Reject a broken or
// hostile record with a Reason that is safe as a metric label.
//
// The checks run in this order, and the first that fails decides:
//
//  1. Decode. Data above MaxDataSize is too-large; data that is not one JSON object (garbage,
//     truncated, null, an array, a string) is undecodable.
//  2. Skip what is not a successful HealthLake mutation, reading only the fields that say so.
//     source must be aws.healthlake and detail.eventSource healthlake.amazonaws.com
//     (else not-healthlake); detail.eventName CreateResource, UpdateResource or DeleteResource
//     (else not-a-mutation); detail.errorCode absent, detail.responseElements not null and its
//     statusCode 2xx (else failed-call). These fields must have the right JSON type
//     (bad-field-type), source, detail and statusCode must be present (missing-field), and
//     statusCode must be an HTTP status code (bad-field).
//  3. Validate the mutation. detail.eventID, detail.eventTime,
//     detail.requestParameters.datastoreId and .resourceType, account and region must be
//     present (missing-field) and strings (bad-field-type). Then, in this order: eventID must
//     look like a CloudTrail event id (bad-field); eventTime must be RFC 3339 in the years 2000
//     to 9998 (bad-event-time); datastoreId 32 lower-case hex characters (bad-datastore-id);
//     resourceType a FHIR R4 resource type name (bad-resource-type); account 12 digits and
//     region a region name (bad-field); last, the datastore must be in the allow-list, if one
//     is configured (datastore-not-allowed).
//
// Step 2 comes before step 3 on purpose: a read, a search or a failed call with odd request
// parameters is ordinary traffic to ignore, not an incident to report. Only values that passed
// step 3 leave this package, so they are safe in a URL.
//
// DeleteResource is an Act with Operation Delete: how to resolve it (a history search, see the
// design) is the consumer's decision.
//
// The package decodes with encoding/json into small structs holding only the fields above, and
// a Decision's Detail never repeats a value from the record (records may carry PHI).
package cloudtrail

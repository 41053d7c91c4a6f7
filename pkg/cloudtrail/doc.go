// Package cloudtrail decides what the consumer does with one Kinesis record: an aws.healthlake
// EventBridge event. Most are "AWS API Call via CloudTrail" events around the CloudTrail record
// of a HealthLake FHIR call (delivered best effort); a few are the "Import Job Completed" events
// HealthLake sends straight to EventBridge (durable). A Validator turns the record's data into a
// Decision: Act on a successful FHIR data write or a completed import (with the validated
// Change), Skip anything else that is well formed (reads, searches, management calls, failed
// calls, other job events, other sources), or Reject a broken or hostile record with a Reason
// that is safe as a metric label.
//
// What a Change says:
//
//   - CreateResource, UpdateResource (a conditional update too), PatchResource (Update) and
//     DeleteResource of one named R4 type: Operation event.Create, event.Update or event.Delete of
//     ResourceType.
//   - A Bundle (ProcessBundle, Transaction, or a mutation whose resourceType is Bundle), a
//     mutation without resourceType, another write-level FHIR operation (MutationEventNames):
//     Operation event.Mixed, AllTypes. The consumer looks at every type it knows for the datastore.
//   - An unknown write-like eventName (in no list and not Read…, Search…, Get…, List… or
//     Describe…; see ActsOnEventName): as Mixed, plus Unrecognised, so it is counted by name
//     and never skipped in silence.
//   - "Import Job Completed" / "Import Job Completed With Errors": Operation event.Import, AllTypes,
//     JobID, JobStatus, JobSubmitTime; EventTime is the event's time (the job's end).
//   - StartFHIRBulkDeleteJob (`$bulk-delete`): Operation event.BulkDelete of the type it names,
//     or AllTypes when it names none. Its deletes happen later, inside the job, with no hint
//     each (and, hard-deleted, without history): the consumer reports them, it cannot name them.
//
// Read-only names (ReadOnlyEventNames) and management names (ManagementEventNames: datastore,
// job, tag and transformation-profile calls) are skipped: StartFHIRImportJob's changes are
// announced by the durable job events, DeleteFHIRDatastore leaves nothing to find. Job events
// other than a completed import, export and datastore events are skipped; an aws.healthlake
// detail-type HealthLake does not document is skipped as unknown-event-type.
//
// The checks run in this order, and the first that fails decides:
//
//  1. Decode. Data above MaxDataSize is too-large; data that is not one JSON object (garbage,
//     truncated, null, an array, a string) is undecodable.
//  2. Skip what announces no change, reading only the fields that say so. source must be
//     aws.healthlake (else not-healthlake). detail-type, if present, must be a string
//     (bad-field-type); an import detail-type goes to the import checks below; another
//     documented one is not-a-mutation, an undocumented one unknown-event-type. For an API call
//     (detail-type "AWS API Call via CloudTrail", or none): detail.eventSource must be
//     healthlake.amazonaws.com (else not-healthlake); detail.eventName must be present
//     (missing-field) and not empty (bad-field); a read-only or management name is
//     not-a-mutation; detail.errorCode absent, detail.responseElements not null and its
//     statusCode 2xx (else failed-call). These fields must have the right JSON type
//     (bad-field-type), statusCode must be present (missing-field) and an HTTP status code
//     (bad-field).
//  3. Validate the write. detail.eventID, detail.eventTime, detail.requestParameters and its
//     datastoreId, account and region must be present (missing-field) and of the right type
//     (bad-field-type); resourceType may be absent or null, else it must be a string. Then, in
//     this order: eventID must look like a CloudTrail event id (bad-field); eventTime must be
//     RFC 3339 in the years 2000 to 9998 (bad-event-time); datastoreId 32 lower-case hex
//     characters (bad-datastore-id); a resourceType present must be a FHIR R4 resource type name
//     (bad-resource-type); account 12 digits and region a region name (bad-field); last, the
//     datastore must be in the allow-list, if one is configured (datastore-not-allowed).
//     An import event is validated the same way: id, time, detail.datastoreId, detail.jobId,
//     account and region present; detail.jobStatus (undocumented) and detail.submitTime, if
//     present, strings; a jobStatus must agree with the detail-type (bad-field); then id
//     (bad-field), time (bad-event-time), datastoreId (bad-datastore-id), jobId 32 lower-case
//     hex (bad-job-id), submitTime (bad-event-time), account, region, allow-list.
//
// Step 2 comes before step 3 on purpose: a read, a search or a failed call with odd request
// parameters is ordinary traffic to ignore, not an incident to report. Only values that passed
// step 3 leave this package, so they are safe in a URL; Change.EventName is safe as a metric
// label (letters only, at most 64, else OtherEventName).
//
// Decide reads the JSON itself, in one pass that checks every byte's syntax but keeps only the
// fields above (wire.go): it runs on every record, and encoding/json cost it five times as
// much. It decides every input exactly as encoding/json decoding did (same case-insensitive
// keys, duplicate-key and syntax rules), which the tests check against a copy of that
// decoder. A Decision's Detail never repeats a value from the record (records may carry PHI).
package cloudtrail

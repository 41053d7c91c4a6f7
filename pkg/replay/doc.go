// Package replay backfills the stream after an outage of the rule, the stream or the
// consumer. It reads CloudTrail's own log files as CloudTrail delivers them to S3 (gzipped or
// plain JSON {"Records": [...]}), wraps each record in the EventBridge envelope the rule would
// have delivered (cloudtrail.WrapRecord), and puts into the stream, at a bounded rate, exactly
// the records the consumer would act on: the decision is the consumer's own
// (cloudtrail.Validator.Decide), so Create/Update/Patch/DeleteResource, Bundles
// (ProcessBundle, or a write of type Bundle or without a type) and unknown write-like calls
// are kept, and reads, management calls, failed calls and records the consumer would reject
// are counted and skipped. The CloudTrail record goes into the envelope's detail byte for
// byte, so the consumer validates exactly what CloudTrail wrote.
//
// Import job events ("Import Job Completed") never appear in CloudTrail's log files: HealthLake
// sends them straight to EventBridge. Files of EventBridge events (one JSON event after
// another, as an EventBridge archive, the rule's dead-letter queue or a capture of the stream
// holds them) are replayed too, each event judged the same way and put unchanged.
//
// Replayed records may repeat hints the consumer already handled; its dedup makes that cost
// a search, never a duplicate event. The rate bound keeps a backfill from starving live
// traffic of the stream's write capacity.
package replay

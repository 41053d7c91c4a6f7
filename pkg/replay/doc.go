// Package replay backfills the stream from CloudTrail's own log files after an outage of the
// rule, the stream or the consumer: it reads the files as CloudTrail delivers them to S3
// (gzipped JSON {"Records": [...]}, or plain JSON), keeps the successful HealthLake
// mutations in a time range, wraps each in the EventBridge envelope the rule would have
// delivered, and puts them into the stream at a bounded rate.
//
// Only calls the consumer would act on are replayed: eventSource healthlake.amazonaws.com,
// eventName CreateResource, UpdateResource or DeleteResource, no errorCode and a 2xx
// responseElements.statusCode. Failed calls changed nothing and are counted as skipped. The
// CloudTrail record goes into the envelope's detail byte for byte, so the consumer validates
// exactly what CloudTrail wrote.
//
// Replayed records may repeat hints the consumer already handled; its dedup makes that cost
// a search, never a duplicate event. The rate bound keeps a backfill from starving live
// traffic of the stream's write capacity.
package replay

// Package verify checks a run end to end: it reads the manifest a producer run wrote (one line
// per FHIR write) and the events the EventBridge recorder received, and says which writes were
// never announced, which changes were announced twice, what was rejected and how long
// announcements took.
//
// Its rules follow the consumer's guarantees rather than a one-event-per-write ideal. The
// consumer searches by _lastUpdated and sees only a resource's current version, so a write
// counts as covered by any change event for the same resource whose lastUpdated is at or after
// the write's: several quick updates may be announced as one event for the last version.
// A resource deleted later is covered by its delete event. Deletes are counted apart and must
// be announced only when the caller expects it (the consumer may not resolve them). A
// duplicate is the same (datastore, type, id, versionId, action) announced twice, which the
// dedup store exists to prevent.
//
// Latency is measured from the write's lastUpdated (the FHIR server's clock) to the time the
// recorder received the first event covering it (the recorder's clock); on the local stack
// both are the same machine's clock. Percentiles use the nearest-rank method.
//
// Nothing here prints or keeps a resource body: events are decoded into their identifying
// fields only.
package verify

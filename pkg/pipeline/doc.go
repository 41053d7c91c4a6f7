// Package pipeline wires the parts of the consumer together and is the only package that
// knows all of them. Data flows one way:
//
//	record ─ decide (cloudtrail) ─ window (coalesce) ─ search (fhir) ─ claim (dedup)
//	       ─ emit (bus) ─ mark done (dedup) ─ ack (the caller's done func → checkpoint)
//
// A record's ack runs only when every window it fed has emitted, or found already emitted,
// every change in its range — so a checkpoint never passes a change that was not delivered.
// Failures that a retry can mend (FHIR throttling, Redis or EventBridge outages, another
// worker's pending claim) re-run the whole window after a backoff; dedup makes that cheap and
// keeps it from emitting twice. Bad records are acked at once and reported on the bus.
package pipeline

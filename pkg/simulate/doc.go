// Package simulate produces traffic for local runs, demos and load tests where no real
// HealthLake and CloudTrail exist: it writes synthetic FHIR resources (creates, updates,
// deletes; steady or in bursts) to a FHIR endpoint, and for each write puts the CloudTrail
// record the EventBridge rule would deliver into a Kinesis stream — optionally with
// duplicates and hostile records mixed in, because the real input contract has both. Every
// write is listed in a manifest (JSON lines) so that the verify package can check that the
// consumer announced each change.
//
// Writes to one resource are serialized (an update starts only after the write before it
// returned), so the manifest lists each resource's versions in order, and a CloudTrail
// record's eventTime — the second the call started, as CloudTrail writes it — is never after
// the version's lastUpdated. Writes to different resources run concurrently.
//
// Besides single REST writes it makes the other changes HealthLake sees: JSON Patch updates
// (hinted as PatchResource), batch and transaction Bundles with one Bundle-shaped hint each,
// and imports through the local FHIR server's admin import followed by one "Import Job
// Completed" event per job. For tests of sweeps it can leave hints out (a random fraction, and
// all of a stretch of the run); the manifest marks each such write.
//
// The plan (which datastore, type, operation and resource; the resource bodies; which records
// are duplicated or hostile) is drawn from Config.Seed, so a run can be repeated. Server-
// assigned ids and versions, event ids and timing are not deterministic.
//
// The resources are obviously synthetic: fictional names, 555-01xx phone numbers, and a
// meta.tag marking them as simulated. They describe no real person.
//
// The package talks to the outside through two small interfaces, FHIRWriter and RecordSink,
// with an HTTP implementation here and the Kinesis one in kinesisput; tests substitute fakes
// for failure injection.
package simulate

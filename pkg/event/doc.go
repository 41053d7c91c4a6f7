// Package event builds the EventBridge entries this project emits, exactly as DESIGN.md's
// "Output contract" says: one "FHIR Resource Created|Updated|Deleted" entry per change, and one
// "HealthLake CDC Record Rejected" entry per bad input record.
//
// The size rule and the 256 KB limit come from package bus (bus.EntrySize,
// bus.MaxRequestBytes): one definition of an AWS rule, used both to decide here when a
// resource must be left out and there to pack calls. bus does not import event.
package event

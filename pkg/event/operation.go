package event

import "strconv"

// Operation is the kind of change, the one name of it from the input to the output: what a
// CloudTrail or import hint announces (cloudtrail.Change.Operation) and what happened to one
// resource (Change.Action, the detail's "action" field). Only Create, Update and Delete are an
// action; Mixed and Import are hints that name no single kind and resolve, resource by
// resource, into those three; BulkDelete resolves into a report.
type Operation string

const (
	Create Operation = "create"
	Update Operation = "update" // also a conditional update, which may create, and a patch
	Delete Operation = "delete"
	// Mixed: any of create, update and delete, in resource types the hint does not name: a
	// Bundle, a mutation without a resourceType, another write-level FHIR operation, or an
	// unknown write-like event name.
	Mixed Operation = "mixed"
	// Import: an import job completed ("Import Job Completed" or "… With Errors"): any number
	// of creates and updates, of any type, between the job's submit time and the event's time.
	Import Operation = "import"
	// BulkDelete: a `$bulk-delete` job was started (StartFHIRBulkDeleteJob): every resource of
	// the type (of every type when none is named) last modified before the job's submission, or
	// in a start/end the call chose, is deleted later, asynchronously, with no hint per resource
	// — and with its history too where the job hard-deletes. Nothing can name them: it resolves
	// into a "Deletes Unresolved" report, not into actions.
	BulkDelete Operation = "bulk-delete"
)

// String is the operation's name: "create", "update", "delete", "mixed", "import" or
// "bulk-delete", as in the output contract and the metric labels.
func (op Operation) String() string { return string(op) }

// detailType is the entry's DetailType for an action; empty if op is not one (Mixed, Import
// or no operation at all).
func (op Operation) detailType() string {
	switch op {
	case Create:
		return DetailTypeCreated
	case Update:
		return DetailTypeUpdated
	case Delete:
		return DetailTypeDeleted
	}
	return ""
}

// ActionFor tells a create from an update for a resource a search found (deletes come from
// history and are Delete without asking). creates and updates say whether the window that
// found it held CreateResource and UpdateResource CloudTrail events.
//
// HealthLake numbers versions 1, 2, 3…, so a numeric versionId decides exactly: 1 is a create,
// anything higher an update. Servers with opaque versionIds (UUIDs on the local FHIR server)
// leave only a heuristic: a window that saw creates and no updates reports create, anything
// else update. It can be wrong — a resource updated in a neighbouring second that the window's
// range also covers is reported as created — so consumers that care should treat create and
// update alike (an upsert), which is safe either way.
func ActionFor(versionID string, creates, updates bool) Operation {
	if n, err := strconv.ParseUint(versionID, 10, 64); err == nil && n > 0 {
		if n == 1 {
			return Create
		}
		return Update
	}
	if creates && !updates {
		return Create
	}
	return Update
}

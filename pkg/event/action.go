package event

import "strconv"

// Action is what happened to the resource: the detail's "action" field.
type Action string

const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
)

// detailType is the entry's DetailType for a; empty if a is not an Action.
func (a Action) detailType() string {
	switch a {
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
func ActionFor(versionID string, creates, updates bool) Action {
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

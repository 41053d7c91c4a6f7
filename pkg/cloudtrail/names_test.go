package cloudtrail

import (
	"slices"
	"strings"
	"testing"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// TestEventNameLists: the lists are disjoint, letters only (so each is its own metric label),
// and every name in them gets the decision its list promises.
func TestEventNameLists(t *testing.T) {
	create := readTestdata(t, "create-patient.json")
	v := mustValidator(t)
	seen := map[string]string{}
	for list, names := range map[string][]string{
		"mutation": MutationEventNames(), "read-only": ReadOnlyEventNames(), "management": ManagementEventNames(),
	} {
		if len(names) == 0 {
			t.Errorf("%s list is empty", list)
		}
		for _, name := range names {
			if other, dup := seen[name]; dup {
				t.Errorf("%s is in the %s and the %s list", name, other, list)
			}
			seen[name] = list
			if !isLabel(name, false) {
				t.Errorf("%s: not letters only", name)
			}
			d := v.Decide(patch(t, create, pEvName, name))
			switch list {
			case "mutation":
				if d.Outcome != Act || d.Change.EventName != name || d.Change.Unrecognised || !ActsOnEventName(name) {
					t.Errorf("%s: %v %s %+v, want a recognised act", name, d.Outcome, d.Reason, d.Change)
				}
			default:
				if d.Outcome != Skip || d.Reason != NotAMutation || ActsOnEventName(name) {
					t.Errorf("%s: %v %s, want skip not-a-mutation", name, d.Outcome, d.Reason)
				}
			}
		}
	}
	for _, must := range []string{"CreateResource", "UpdateResource", "PatchResource", "DeleteResource", "ProcessBundle"} {
		if seen[must] != "mutation" {
			t.Errorf("%s is not a mutation", must)
		}
	}
	for _, must := range []string{"ReadResource", "SearchWithGet", "SearchWithPost", "GetCapabilities", "VersionReadResource", "GetHistoryByResourceId"} {
		if seen[must] != "read-only" {
			t.Errorf("%s is not read-only", must)
		}
	}
	for _, must := range []string{"StartFHIRImportJob", "DeleteFHIRDatastore", "CreateFHIRDatastore", "TagResource", "UntagResource", "StartFHIRExportJob"} {
		if seen[must] != "management" {
			t.Errorf("%s is not management", must)
		}
	}
	names := MutationEventNames()
	names[0] = "Changed"
	if slices.Contains(MutationEventNames(), "Changed") {
		t.Error("MutationEventNames returned the package's own slice")
	}
	if got := ImportEventDetailTypes(); !slices.Equal(got, []string{"Import Job Completed", "Import Job Completed With Errors"}) {
		t.Errorf("ImportEventDetailTypes = %q", got)
	}
}

// TestUnknownEventNames: the rule for names in no list. Read-like by prefix skips; anything
// else acts on every type, flagged, labelled "other" when the name is no safe label.
func TestUnknownEventNames(t *testing.T) {
	create := readTestdata(t, "create-patient.json")
	v := mustValidator(t)
	for _, c := range []struct {
		name  string
		acts  bool
		label string
	}{
		{"SearchByMagic", false, ""},
		{"ReadSomething", false, ""},
		{"GetAnything", false, ""},
		{"ListMore", false, ""},
		{"DescribeNewJob", false, ""},
		{"EraseResource", true, "EraseResource"},
		{"PurgePatientCompartment", true, "PurgePatientCompartment"},
		{"StartFHIRBulkPatchJob", true, "StartFHIRBulkPatchJob"}, // a new job kind is not skipped by prefix
		{"Getaway", true, "Getaway"},                             // "Get" + lower case: not read-like
		{"Read", true, "Read"},
		{"createresource", true, "createresource"},
		{"Create2Resource", true, OtherEventName},
		{"Patch Resource", true, OtherEventName},
		{"Jane-Doe-1970", true, OtherEventName},
		{strings.Repeat("A", 65), true, OtherEventName},
		{strings.Repeat("A", 64), true, strings.Repeat("A", 64)},
	} {
		d := v.Decide(patch(t, create, pEvName, c.name))
		if ActsOnEventName(c.name) != c.acts {
			t.Errorf("ActsOnEventName(%q) = %v", c.name, !c.acts)
		}
		if !c.acts {
			if d.Outcome != Skip || d.Reason != NotAMutation {
				t.Errorf("%q: %v %s, want skip", c.name, d.Outcome, d.Reason)
			}
			continue
		}
		ch := d.Change
		if d.Outcome != Act || ch.Operation != event.Mixed || !ch.AllTypes || !ch.Unrecognised || ch.EventName != c.label || ch.ResourceType != "" {
			t.Errorf("%q: %v %s %+v, want an unrecognised mixed act labelled %q", c.name, d.Outcome, d.Reason, ch, c.label)
		}
		// Failed unknown writes are failed calls like any other.
		if d := v.Decide(patch(t, create, pEvName, c.name, pStatus, 500)); d.Reason != FailedCall {
			t.Errorf("%q with status 500: %v %s", c.name, d.Outcome, d.Reason)
		}
	}
	if ActsOnEventName("") {
		t.Error("ActsOnEventName(\"\")")
	}
}

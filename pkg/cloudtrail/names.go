package cloudtrail

import (
	"strings"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// The CloudTrail event names of calls to healthlake.amazonaws.com, as far as AWS documents
// them, sorted into what Decide does with a successful call. Sources (see testdata/README.md):
// the HealthLake CloudTrail page (the names it lists), the IAM Service Authorization Reference
// for HealthLake (its actions and their access levels: an IAM action is usually, not always,
// the CloudTrail eventName of the call it allows) and the HealthLake CloudWatch page of the
// older developer guide (its Operation names: Transaction, SearchAll, GetFullHistory,
// GetHistoryByResourceType, ValidateExistingResource). A name in none of the three lists is
// judged by ActsOnEventName's rule.
type eventClass uint8

const (
	// classUnknown: not in any list. Read-like by prefix, else an unknown write.
	classUnknown eventClass = iota
	// classMutation: changes FHIR data; op says how (Mixed: types unknown).
	classMutation
	// classReadOnly: reads, searches, validations, terminology look-ups, describe and list.
	classReadOnly
	// classManagement: datastore, job, tag and transformation-profile management. Either no
	// FHIR data changes, or the change is announced elsewhere (StartFHIRImportJob: the durable
	// "Import Job Completed" events) or has nothing left to find (DeleteFHIRDatastore).
	classManagement
)

type eventNameInfo struct {
	name  string
	class eventClass
	op    event.Operation // classMutation only
}

var eventNameTable = [...]eventNameInfo{
	// FHIR data writes with one resource type each.
	{"CreateResource", classMutation, event.Create},
	{"UpdateResource", classMutation, event.Update}, // also conditional update, which may create
	{"PatchResource", classMutation, event.Update},
	{"DeleteResource", classMutation, event.Delete},
	// FHIR data writes that may touch any resource type: batch and transaction Bundles (IAM
	// action ProcessBundle; "Transaction" is the older CloudWatch operation name), and the
	// write-level FHIR operations whose stored effect AWS does not document per type (Da Vinci
	// ATR member add/remove and attribution, PAS $submit, $member-match, $document).
	{"ProcessBundle", classMutation, event.Mixed},
	{"Transaction", classMutation, event.Mixed},
	{"MemberAdd", classMutation, event.Mixed},
	{"MemberRemove", classMutation, event.Mixed},
	{"MemberMatch", classMutation, event.Mixed},
	{"ConfirmAttributionList", classMutation, event.Mixed},
	{"RetrieveAttributionStatus", classMutation, event.Mixed},
	{"SubmitPreAuthClaim", classMutation, event.Mixed},
	{"GenerateDocumentWithGet", classMutation, event.Mixed},
	{"GenerateDocumentWithPost", classMutation, event.Mixed},
	// `$bulk-delete` of a type (the IAM action; the deletes come later, from the job, with no
	// hint per resource): reported, since nothing can name them.
	{"StartFHIRBulkDeleteJob", classMutation, event.BulkDelete},

	{"ReadResource", classReadOnly, ""},
	{"VersionReadResource", classReadOnly, ""},
	{"GetHistoryByResourceId", classReadOnly, ""},
	{"GetHistoryByResourceType", classReadOnly, ""},
	{"GetFullHistory", classReadOnly, ""},
	{"SearchWithGet", classReadOnly, ""},
	{"SearchWithPost", classReadOnly, ""},
	{"SearchAll", classReadOnly, ""},
	{"SearchEverything", classReadOnly, ""},
	{"GetCapabilities", classReadOnly, ""},
	{"ValidateResource", classReadOnly, ""},
	{"ValidateExistingResource", classReadOnly, ""},
	{"ValidateSource", classReadOnly, ""},
	{"ExpandValueSetWithGet", classReadOnly, ""},
	{"ExpandValueSetWithPost", classReadOnly, ""},
	{"LookupCodeSystemWithGet", classReadOnly, ""},
	{"LookupCodeSystemWithPost", classReadOnly, ""},
	{"TranslateConceptMapWithGet", classReadOnly, ""},
	{"TranslateConceptMapWithPost", classReadOnly, ""},
	{"QuestionnairePackage", classReadOnly, ""},
	{"InquirePreAuthClaim", classReadOnly, ""},
	{"GetExportedFile", classReadOnly, ""},
	{"GetDataTransformationProfile", classReadOnly, ""},
	{"DescribeFHIRDatastore", classReadOnly, ""},
	{"DescribeFHIRImportJob", classReadOnly, ""},
	{"DescribeFHIRExportJob", classReadOnly, ""},
	{"DescribeFHIRExportJobWithGet", classReadOnly, ""},
	{"DescribeFHIRBulkDeleteJob", classReadOnly, ""},
	{"DescribeFHIRBulkMemberMatchJob", classReadOnly, ""},
	{"DescribeDataTransformationJob", classReadOnly, ""},
	{"ListFHIRDatastores", classReadOnly, ""},
	{"ListFHIRImportJobs", classReadOnly, ""},
	{"ListFHIRExportJobs", classReadOnly, ""},
	{"ListTagsForResource", classReadOnly, ""},
	{"ListDataTransformationJobs", classReadOnly, ""},
	{"ListDataTransformationProfiles", classReadOnly, ""},
	{"ListDataTransformationProfileVersions", classReadOnly, ""},

	{"CreateFHIRDatastore", classManagement, ""},
	{"UpdateFHIRDatastore", classManagement, ""},
	{"DeleteFHIRDatastore", classManagement, ""},
	{"RestoreFHIRDatastore", classManagement, ""},
	{"StartFHIRImportJob", classManagement, ""},
	{"StartFHIRExportJob", classManagement, ""},
	{"StartFHIRExportJobWithGet", classManagement, ""},
	{"StartFHIRExportJobWithPost", classManagement, ""},
	{"CancelFHIRExportJobWithDelete", classManagement, ""},
	{"StartFHIRBulkMemberMatchJob", classManagement, ""},
	{"StartDataTransformationJob", classManagement, ""},
	{"CreateDataTransformationProfile", classManagement, ""},
	{"UpdateDataTransformationProfile", classManagement, ""},
	{"DeleteDataTransformationProfile", classManagement, ""},
	{"PublishDataTransformationProfile", classManagement, ""},
	{"UpdateProfileWithAgent", classManagement, ""},
	{"TransformData", classManagement, ""},
	{"TagResource", classManagement, ""},
	{"UntagResource", classManagement, ""},
}

var eventNameIndex = func() map[string]eventNameInfo {
	m := make(map[string]eventNameInfo, len(eventNameTable))
	for _, e := range eventNameTable {
		m[e.name] = e
	}
	return m
}()

// readOnlyPrefixes: an event name not in the lists that starts with one of these, followed by
// an upper-case letter, is taken for a read (AWS names its reads so). Everything else unknown
// is taken for a write: a needless search costs little, a write taken for a read is lost.
var readOnlyPrefixes = [...]string{"Read", "Search", "Get", "List", "Describe"}

// classify says what kind of call name is; op is set for classMutation.
func classify(name string) (eventClass, event.Operation) {
	if e, ok := eventNameIndex[name]; ok {
		return e.class, e.op
	}
	for _, p := range readOnlyPrefixes {
		if len(name) > len(p) && strings.HasPrefix(name, p) && name[len(p)] >= 'A' && name[len(p)] <= 'Z' {
			return classReadOnly, ""
		}
	}
	return classUnknown, event.Mixed
}

// ActsOnEventName reports whether Decide acts on a successful healthlake.amazonaws.com call
// with this eventName: a name in MutationEventNames, or an unknown name that is not read-like
// (not in ReadOnlyEventNames or ManagementEventNames, and not Read…, Search…, Get…, List… or
// Describe… followed by an upper-case letter). Replays and event rules can use it to keep
// exactly the calls the consumer would act on.
func ActsOnEventName(name string) bool {
	c, _ := classify(name)
	return name != "" && (c == classMutation || c == classUnknown)
}

// MutationEventNames returns the CloudTrail event names Decide knows as FHIR data writes:
// CreateResource, UpdateResource, PatchResource and DeleteResource (one resource type each),
// and the names whose changes may touch any type (ProcessBundle, Transaction, and other
// write-level FHIR operations). Decide also acts on unknown write-like names (see
// ActsOnEventName), so an EventBridge rule that must not lose changes matches every eventName
// except ReadOnlyEventNames, not just these.
func MutationEventNames() []string { return namesOf(classMutation) }

// ReadOnlyEventNames returns the known read-only CloudTrail event names of HealthLake (reads,
// searches, history, validation, terminology, describe and list calls). Decide skips them.
func ReadOnlyEventNames() []string { return namesOf(classReadOnly) }

// ManagementEventNames returns the known datastore, job, tag and transformation-profile
// management calls. Decide skips them: none changes FHIR resources in a way a search of the
// call's time could find (an import's changes are announced by its durable job events).
func ManagementEventNames() []string { return namesOf(classManagement) }

func namesOf(c eventClass) []string {
	var out []string
	for _, e := range eventNameTable {
		if e.class == c {
			out = append(out, e.name)
		}
	}
	return out
}

// The EventBridge detail-types HealthLake sends straight to EventBridge (source aws.healthlake),
// from the HealthLake EventBridge page and the EventBridge event reference.
const (
	detailTypeAPICall                      = "AWS API Call via CloudTrail"
	DetailTypeImportJobCompleted           = "Import Job Completed"
	DetailTypeImportJobCompletedWithErrors = "Import Job Completed With Errors"
)

// The job status an import event stands for. The event itself carries no status field: its
// detail-type is the status (HealthLake EventBridge page, "State - COMPLETED").
const (
	JobStatusCompleted           = "COMPLETED"
	JobStatusCompletedWithErrors = "COMPLETED_WITH_ERRORS"
)

// serviceEventTypes are the other detail-types of aws.healthlake: well-formed events that
// announce no change a search could find (jobs not finished, exports, datastore lifecycle).
var serviceEventTypes = [...]string{
	"Import Job Submitted", "Import Job Queued", "Import Job In Progress", "Import Job Failed",
	"Export Job Submitted", "Export Job Queued", "Export Job In Progress", "Export Job Completed",
	"Export Job Completed With Errors", "Export Job Failed",
	"Data Store Creating", "Data Store Creation Failed", "Data Store Active", "Data Store Deleting",
	"Data Store Deleted",
}

// detailKind is what an envelope's detail-type says the event is.
type detailKind uint8

const (
	kindAPICall         detailKind = iota // "AWS API Call via CloudTrail", or no detail-type
	kindImportCompleted                   // an import job finished: act
	kindImportCompletedWithErrors
	kindService // another documented aws.healthlake event: skip
	kindUnknown // any other string
)

// kindOf compares string(s) with constants only, which the compiler does without a copy: the
// detail-type is read on every record and never kept.
func kindOf(s []byte) detailKind {
	switch string(s) {
	case detailTypeAPICall:
		return kindAPICall
	case DetailTypeImportJobCompleted:
		return kindImportCompleted
	case DetailTypeImportJobCompletedWithErrors:
		return kindImportCompletedWithErrors
	}
	for _, t := range serviceEventTypes {
		if string(s) == t {
			return kindService
		}
	}
	return kindUnknown
}

// ImportEventDetailTypes returns the detail-types Decide acts on as imports: the ones an
// EventBridge rule must forward besides "AWS API Call via CloudTrail".
func ImportEventDetailTypes() []string {
	return []string{DetailTypeImportJobCompleted, DetailTypeImportJobCompletedWithErrors}
}

// isLabel: safe as a metric label and in logs. CloudTrail event names are letters only.
func isLabel(s string, spaces bool) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (!spaces || c != ' ') {
			return false
		}
	}
	return true
}

// OtherEventName is Change.EventName for an unknown event name that is not safe as a label.
const OtherEventName = "other"

package event

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
)

// DetailTypes of the entries built here.
const (
	DetailTypeCreated  = "FHIR Resource Created"
	DetailTypeUpdated  = "FHIR Resource Updated"
	DetailTypeDeleted  = "FHIR Resource Deleted"
	DetailTypeRejected = "HealthLake CDC Record Rejected"
	// DetailTypeRangeFailed reports a parked range: a search that failed for a reason
	// retries cannot fix. Its records were acked; the range is retried periodically.
	DetailTypeRangeFailed = "HealthLake CDC Range Failed"
	// DetailTypeWatermark says, per datastore, that every change before its lowWatermark is
	// on the bus (or was reported as a Range Failed).
	DetailTypeWatermark = "HealthLake CDC Watermark"
	// DetailTypeDeletesUnresolved reports deletes that history could not name.
	DetailTypeDeletesUnresolved = "HealthLake CDC Deletes Unresolved"
)

// DefaultSource is the Source of every entry unless Options.Source says otherwise.
const DefaultSource = "healthlake.cdc"

// MaxTriggerEventIDs bounds the CloudTrail event ids carried in an event's trigger; the count
// is always complete.
const MaxTriggerEventIDs = 10

// Values of the detail's "contentOmitted": why "resource" is missing.
const (
	OmittedIDOnly = "id-only" // the deployment emits ids only (Content IDOnly)
	OmittedSize   = "size"    // the entry with the resource would exceed the PutEvents limit
)

// Content says whether events carry the resource.
type Content string

const (
	// FullResource embeds the FHIR resource in the event (the default), unless it would make
	// the entry exceed the PutEvents limit.
	FullResource Content = "full-resource"
	// IDOnly leaves every resource out; consumers read it from HealthLake.
	IDOnly Content = "id-only"
)

// Change is one resource version to announce.
type Change struct {
	// DatastoreID, ResourceType and ID are required; VersionID too, except for a Delete whose
	// history entry has none.
	DatastoreID, ResourceType, ID, VersionID string
	// LastUpdated is the version's meta.lastUpdated: the entry's Time and the detail's
	// lastUpdated. Required.
	LastUpdated time.Time
	// Action is Create, Update or Delete; the hint operations Mixed and Import are no action.
	Action Operation
	// Resource is the FHIR JSON of the version. Required for Create and Update with
	// FullResource content; ignored for Delete and with IDOnly.
	Resource json.RawMessage
	Trigger  Trigger
	// TraceParent is the W3C traceparent of the window that found the change.
	TraceParent string
	// Region and Account of the datastore, from the CloudTrail records that led here; they
	// override the Builder's Options for the datastore ARN.
	Region, Account string
}

// Trigger is what made the pipeline look: the window's CloudTrail events and the
// _lastUpdated range it searched. Its wire form, in the detail, is TriggerDetail.
type Trigger struct {
	EventIDs []string
	From, To time.Time
}

// Options configures a Builder.
type Options struct {
	// Source of every entry; default DefaultSource.
	Source string
	// BusName is the entries' EventBusName (name or ARN); empty means the account's default bus.
	BusName string
	// Region and Account of the HealthLake datastores, for their ARNs, when a Change does not
	// carry its own (it normally does: CloudTrail records name both). Optional.
	Region, Account string
	// Content is FullResource (default) or IDOnly.
	Content Content
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	var errs []error
	if o.Region != "" && !validRegion(o.Region) {
		errs = append(errs, fmt.Errorf("region %q is not valid", o.Region))
	}
	if o.Account != "" && !isDigits(o.Account, 12) {
		errs = append(errs, fmt.Errorf("account %q is not a 12-digit AWS account id", o.Account))
	}
	switch o.Content {
	case "", FullResource, IDOnly:
	default:
		errs = append(errs, fmt.Errorf("content %q: want %q or %q", o.Content, FullResource, IDOnly))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("event: options: %w", err)
	}
	return nil
}

// Builder turns changes and rejected records into PutEvents entries. Make one with NewBuilder;
// it is a small value, safe to copy and to use concurrently.
type Builder struct {
	opts Options
	made bool
}

// NewBuilder returns a Builder for opts, defaulted and validated.
func NewBuilder(opts Options) (Builder, error) {
	if err := opts.Validate(); err != nil {
		return Builder{}, err
	}
	opts.Source = cmp.Or(opts.Source, DefaultSource)
	opts.Content = cmp.Or(opts.Content, FullResource)
	return Builder{opts: opts, made: true}, nil
}

// DatastoreARN is the ARN of a HealthLake datastore, the entries' only Resources element:
// arn:aws:healthlake:{region}:{account}:datastore/fhir/{datastoreId}.
func DatastoreARN(region, account, datastoreID string) string {
	return "arn:" + partition(region) + ":healthlake:" + region + ":" + account + ":datastore/fhir/" + datastoreID
}

// where is the region and account of c's datastore: c's own, else the Builder's.
func (b Builder) where(c Change) (region, account string, err error) {
	region, account = cmp.Or(c.Region, b.opts.Region), cmp.Or(c.Account, b.opts.Account)
	if !validRegion(region) || !isDigits(account, 12) {
		return "", "", fmt.Errorf("event: %s change: no valid region and account for the datastore ARN", c.ResourceType)
	}
	return region, account, nil
}

func validRegion(r string) bool { return r != "" && !strings.ContainsAny(r, ": /") }

// Entry builds the entry announcing c. The resource is embedded as JSON (not as a string)
// unless the content is IDOnly, the change is a delete, or the entry would then exceed
// bus.MaxRequestBytes — in the last case it is built again without it and with
// "contentOmitted":"size". An error means c is incomplete or its resource is not valid JSON;
// sending it again will not help. Errors name the resource type, never the id: they are
// logged, and resource ids are PHI.
func (b Builder) Entry(c Change) (types.PutEventsRequestEntry, error) {
	if !b.made {
		return types.PutEventsRequestEntry{}, errors.New("event: Builder not made by NewBuilder")
	}
	if err := c.validate(b.opts.Content); err != nil {
		return types.PutEventsRequestEntry{}, err
	}
	region, account, err := b.where(c)
	if err != nil {
		return types.PutEventsRequestEntry{}, err
	}
	arn := DatastoreARN(region, account, c.DatastoreID)
	d := ChangeDetail{
		DatastoreID:  c.DatastoreID,
		ResourceType: c.ResourceType,
		ID:           c.ID,
		VersionID:    c.VersionID,
		LastUpdated:  Timestamp{c.LastUpdated},
		Action:       c.Action,
		Trigger:      boundTrigger(c.Trigger),
		TraceParent:  c.TraceParent,
	}
	switch {
	case c.Action == Delete:
	case b.opts.Content == IDOnly:
		d.ContentOmitted = OmittedIDOnly
	default:
		d.Resource = c.Resource
	}
	e, err := b.entry(c, d, arn)
	if err != nil {
		return types.PutEventsRequestEntry{}, err
	}
	if d.Resource != nil && bus.EntrySize(e) > bus.MaxRequestBytes {
		d.Resource, d.ContentOmitted = nil, OmittedSize
		if e, err = b.entry(c, d, arn); err != nil {
			return types.PutEventsRequestEntry{}, err
		}
	}
	return e, nil
}

func (b Builder) entry(c Change, d ChangeDetail, arn string) (types.PutEventsRequestEntry, error) {
	js, err := marshal(d)
	if err != nil {
		return types.PutEventsRequestEntry{}, fmt.Errorf("event: %s change: resource is not valid JSON: %w", c.ResourceType, err)
	}
	t := c.LastUpdated.UTC()
	return types.PutEventsRequestEntry{
		Source:       aws.String(b.opts.Source),
		DetailType:   aws.String(c.Action.detailType()),
		Detail:       aws.String(js),
		Resources:    []string{arn},
		Time:         &t,
		EventBusName: b.busName(),
	}, nil
}

func (b Builder) busName() *string {
	if b.opts.BusName == "" {
		return nil
	}
	return aws.String(b.opts.BusName)
}

func (c Change) validate(content Content) error {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"datastoreId", c.DatastoreID}, {"resourceType", c.ResourceType}, {"id", c.ID},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	// A delete found in history may have no version; the detail then says "versionId":"".
	if c.VersionID == "" && c.Action != Delete {
		missing = append(missing, "versionId")
	}
	if c.LastUpdated.IsZero() {
		missing = append(missing, "lastUpdated")
	}
	if c.Action != Delete && content != IDOnly && len(bytes.TrimSpace(c.Resource)) == 0 {
		missing = append(missing, "resource")
	}
	if len(missing) > 0 {
		return fmt.Errorf("event: %s change: missing %s", c.ResourceType, strings.Join(missing, ", "))
	}
	if c.Action.detailType() == "" {
		return fmt.Errorf("event: %s change: action %q is not create, update or delete", c.ResourceType, c.Action)
	}
	return nil
}

func boundTrigger(t Trigger) TriggerDetail {
	ids := t.EventIDs
	if len(ids) > MaxTriggerEventIDs {
		ids = ids[:MaxTriggerEventIDs]
	}
	if ids == nil {
		ids = []string{}
	}
	return TriggerDetail{EventIDs: ids, EventCount: len(t.EventIDs), From: Timestamp{t.From}, To: Timestamp{t.To}}
}

// formatTime is RFC 3339 in UTC with milliseconds, like HealthLake's meta.lastUpdated; empty for
// the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// marshal is json.Marshal without HTML escaping, so an embedded resource keeps its bytes (and
// its size) apart from whitespace; RawMessage values are still validated and compacted.
func marshal(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// partition is the ARN partition of an AWS region.
func partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

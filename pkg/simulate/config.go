package simulate

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/cloudtrail"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
)

// Defaults.
const (
	DefaultWrites      = 100
	DefaultBurstEvery  = 10 * time.Second
	DefaultRegion      = "us-east-1"
	DefaultAccount     = "123456789012"
	DefaultConcurrency = 8
	// BurstSpan is how long a burst lasts: its writes are spread evenly over it (or over
	// BurstEvery, if shorter), so the consumer sees them within one coalescing window.
	BurstSpan = time.Second
	// DefaultBundleSize is the entries of a Bundle unless Config.BundleSize says otherwise.
	DefaultBundleSize = 20
	// MaxBundleSize bounds Config.BundleSize. HealthLake documents no entry limit we found;
	// this keeps one request within a few megabytes.
	MaxBundleSize = 1000
)

// Bundle types (Config.BundleType): the Bundle.type of the request.
const (
	BundleBatch       = "batch"
	BundleTransaction = "transaction"
)

// Bundle hint shapes (Config.BundleHint). CloudTrail's record of a Bundle POST is not
// documented (pkg/cloudtrail/testdata/README.md); these are the two shapes the consumer acts on.
const (
	// HintProcessBundle: eventName ProcessBundle (the IAM action) with no resourceType.
	HintProcessBundle = "process-bundle"
	// HintBundleType: eventName CreateResource with resourceType Bundle.
	HintBundleType = "bundle-type"
)

// Why a write's hint was not put (ManifestEntry.HintDropped).
const (
	DroppedRandom = "random" // drawn with Config.DropHints
	DroppedGap    = "gap"    // the write started inside Config.DropGap
)

// Gap is a stretch of a run, measured from its start: [Start, Start+Duration).
type Gap struct{ Start, Duration time.Duration }

func (g Gap) contains(d time.Duration) bool {
	return g.Duration > 0 && d >= g.Start && d < g.Start+g.Duration
}

// Partition key modes.
const (
	// PartitionByEventID uses the EventBridge event id, as a rule's Kinesis target without
	// PartitionKeyPath does: records spread evenly over the shards.
	PartitionByEventID = "event-id"
	// PartitionByDatastore uses the datastore id (a rule with PartitionKeyPath
	// $.detail.requestParameters.datastoreId): one datastore's records stay on one shard.
	PartitionByDatastore = "datastore"
)

// DefaultTypes are the resource types written unless Config.Types says otherwise.
func DefaultTypes() []string { return []string{"Patient", "Observation", "Encounter", "Condition"} }

// Config describes a run. Start from DefaultConfig; Run fills zero values of numeric fields
// with the defaults as well, but InjectEvents is a plain bool, false in the zero Config.
type Config struct {
	// Datastores to write to (32 lower-case hex ids each); required.
	Datastores []string
	// Types of resources to write; default DefaultTypes. Each must be one of
	// SupportedTypes.
	Types []string

	// Writes is the number of single FHIR writes (one REST call each); Duration instead runs
	// until that much time has passed. At most one of them is set; without Bundles and Import,
	// exactly one (Writes defaults to DefaultWrites).
	Writes   int
	Duration time.Duration
	// Bundles, when positive, writes that many Bundles instead of single writes (Writes and
	// Duration zero), each of BundleSize entries (default DefaultBundleSize) drawn as single
	// writes are (creates, updates, deletes by the ratios) in one datastore; no two entries of
	// a Bundle touch one resource. BundleType is BundleBatch (default) or BundleTransaction.
	// Each Bundle gets ONE CloudTrail record, shaped as BundleHint says (default
	// HintProcessBundle). Rate counts entries per second; bursts and the hot resource are not
	// available with Bundles.
	Bundles, BundleSize int
	BundleType          string
	BundleHint          string
	// PatchRatio is the fraction of updates (single or in Bundles) sent as JSON Patch
	// (RFC 6902); a single one is hinted as PatchResource.
	PatchRatio float64
	// Import, when positive, writes that many more resources (creates of new ids, over the
	// datastores and types) after the other writes, through Importer (the local FHIR server's
	// admin import, a stand-in for HealthLake's $import): no CloudTrail record per resource,
	// but one import job per datastore and, with InjectEvents, one "Import Job Completed"
	// event each, as HealthLake sends them to EventBridge.
	Import int
	// Rate is the steady rate in writes per second. 0 means as fast as Concurrency allows —
	// unless BurstSize is set, in which case there is no steady traffic at all, only bursts
	// separated by quiet time.
	Rate float64
	// BurstSize, when positive, adds a burst of that many writes to one randomly chosen
	// (datastore, type) every BurstEvery (default DefaultBurstEvery), spread over BurstSpan;
	// the first burst starts at once. Burst writes count towards Writes.
	BurstSize  int
	BurstEvery time.Duration

	// UpdateRatio and DeleteRatio are the probabilities that a write updates or deletes an
	// existing resource of the chosen (datastore, type) rather than creating one (a write
	// with nothing to update or delete creates). Both default to 0; their sum is at most 1.
	UpdateRatio, DeleteRatio float64
	// HotResourceUpdates, when positive, starts the run with one resource (first datastore,
	// first type) created and then updated that many times in a row: a burst of versions of
	// one resource, of which a _lastUpdated search sees only the last.
	HotResourceUpdates int

	// InjectEvents puts a CloudTrail record into the stream for each write, as the
	// EventBridge rule would. Off when real CloudTrail watches the endpoint.
	InjectEvents bool
	// DuplicateFraction of the CloudTrail records is put twice (EventBridge and Kinesis
	// deliver at least once).
	DuplicateFraction float64
	// HostileFraction: after that fraction of the writes, one extra hostile record (garbage,
	// truncated JSON, a bad datastore id or resource type; see the hostile folder) is put
	// into the stream too. The consumer must reject and report each.
	HostileFraction float64
	// DropHints is the fraction of writes (Bundles: of Bundles) whose CloudTrail record is
	// not put, as best-effort delivery loses some; DropGap a stretch of the run in which no
	// record is put for writes started in it. The writes are made all the same, and the
	// manifest marks them (HintDropped). Import events are never dropped: HealthLake delivers
	// them durably.
	DropHints float64
	DropGap   Gap
	// Region and Account go into the CloudTrail records; defaults DefaultRegion and
	// DefaultAccount.
	Region, Account string
	// PartitionKey is PartitionByEventID (default) or PartitionByDatastore.
	PartitionKey string

	// Concurrency bounds the FHIR writes in flight; default DefaultConcurrency.
	Concurrency int
	// Seed draws the plan; 0 picks a random seed (reported in the Summary).
	Seed uint64

	// Clock paces the writes and times the run; default clock.Real. Tests inject a
	// clocktest.Fake.
	Clock clock.Clock
}

// DefaultConfig returns a Config with every default set and events injected; only
// Datastores is left to fill in.
func DefaultConfig() Config {
	return Config{
		Types:        DefaultTypes(),
		Writes:       DefaultWrites,
		InjectEvents: true,
		Region:       DefaultRegion,
		Account:      DefaultAccount,
		PartitionKey: PartitionByEventID,
		Concurrency:  DefaultConcurrency,
	}
}

// withDefaults fills the zero fields that have a default.
func (c Config) withDefaults() Config {
	if len(c.Types) == 0 {
		c.Types = DefaultTypes()
	}
	if c.Writes == 0 && c.Duration == 0 && c.Bundles == 0 && c.Import == 0 {
		c.Writes = DefaultWrites
	}
	if c.Bundles > 0 {
		c.BundleSize = cmp.Or(c.BundleSize, DefaultBundleSize)
		c.BundleType = cmp.Or(c.BundleType, BundleBatch)
		c.BundleHint = cmp.Or(c.BundleHint, HintProcessBundle)
	}
	if c.BurstSize > 0 && c.BurstEvery == 0 {
		c.BurstEvery = DefaultBurstEvery
	}
	c.Region = cmp.Or(c.Region, DefaultRegion)
	c.Account = cmp.Or(c.Account, DefaultAccount)
	c.PartitionKey = cmp.Or(c.PartitionKey, PartitionByEventID)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.Clock = clock.Or(c.Clock)
	return c
}

// Validate reports every problem with c (after defaults) at once.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(c.Datastores) == 0 {
		bad("no datastores")
	}
	for i, ds := range c.Datastores {
		if !cloudtrail.IsDatastoreID(ds) {
			bad("datastore %d (%q) is not 32 lower-case hex characters", i, ds)
		} else if slices.Index(c.Datastores, ds) != i {
			bad("datastore %s is listed twice", ds)
		}
	}
	for i, t := range c.Types {
		if _, ok := templates[t]; !ok {
			bad("resource type %q is not one of %s", t, strings.Join(SupportedTypes(), ", "))
		} else if slices.Index(c.Types, t) != i {
			bad("resource type %s is listed twice", t)
		}
	}
	switch {
	case c.Writes < 0 || c.Duration < 0:
		bad("writes and duration must not be negative")
	case c.Writes > 0 && c.Duration > 0:
		bad("set either writes (%d) or duration (%v), not both", c.Writes, c.Duration)
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		bad("rate %v is not a number of writes per second", c.Rate)
	}
	if c.BurstSize < 0 || c.BurstEvery < 0 {
		bad("burst size and interval must not be negative")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"update ratio", c.UpdateRatio}, {"delete ratio", c.DeleteRatio},
		{"duplicate fraction", c.DuplicateFraction}, {"hostile fraction", c.HostileFraction},
		{"patch ratio", c.PatchRatio}, {"drop-hints fraction", c.DropHints},
	} {
		if !(f.v >= 0 && f.v <= 1) {
			bad("%s %v is not between 0 and 1", f.name, f.v)
		}
	}
	if c.UpdateRatio+c.DeleteRatio > 1 {
		bad("update ratio + delete ratio is %v, above 1", c.UpdateRatio+c.DeleteRatio)
	}
	if c.HotResourceUpdates < 0 {
		bad("hot resource updates must not be negative")
	}
	if c.Writes > 0 && c.HotResourceUpdates > 0 && c.HotResourceUpdates+1 > c.Writes {
		bad("the hot resource takes %d writes, more than the %d of the run", c.HotResourceUpdates+1, c.Writes)
	}
	switch {
	case c.Bundles < 0 || c.Import < 0:
		bad("bundles and import must not be negative")
	case c.Bundles > 0 && (c.Writes > 0 || c.Duration > 0):
		bad("set either bundles (%d) or single writes (writes %d, duration %v), not both", c.Bundles, c.Writes, c.Duration)
	case c.Bundles > 0 && c.BurstSize > 0:
		bad("bursts are not available with bundles (use the rate)")
	case c.Bundles > 0 && c.HotResourceUpdates > 0:
		bad("the hot resource is not available with bundles")
	}
	if c.Bundles > 0 {
		if c.BundleSize < 1 || c.BundleSize > MaxBundleSize {
			bad("bundle size %d is not between 1 and %d", c.BundleSize, MaxBundleSize)
		}
		if c.BundleType != BundleBatch && c.BundleType != BundleTransaction {
			bad("bundle type %q is not %s or %s", c.BundleType, BundleBatch, BundleTransaction)
		}
		if c.BundleHint != HintProcessBundle && c.BundleHint != HintBundleType {
			bad("bundle hint %q is not %s or %s", c.BundleHint, HintProcessBundle, HintBundleType)
		}
	}
	if c.DropGap.Start < 0 || c.DropGap.Duration < 0 {
		bad("drop gap %v+%v must not be negative", c.DropGap.Start, c.DropGap.Duration)
	}
	if !c.InjectEvents && (c.DropHints > 0 || c.DropGap.Duration > 0) {
		bad("dropping hints needs injected events")
	}
	if c.PartitionKey != PartitionByEventID && c.PartitionKey != PartitionByDatastore {
		bad("partition key %q is not %s or %s", c.PartitionKey, PartitionByEventID, PartitionByDatastore)
	}
	if c.Concurrency < 1 {
		bad("concurrency %d is below 1", c.Concurrency)
	}
	if c.InjectEvents {
		// The consumer must act on what we inject: try a record with this region and account.
		probe := cloudtrail.Change{
			EventID: uuid.NewString(), DatastoreID: strings.Repeat("0", 32), ResourceType: "Patient",
			Operation: event.Create, EventTime: time.Unix(1e9, 0), Region: c.Region, Account: c.Account,
		}
		data, err := cloudtrail.Encode(probe, uuid.NewString(), uuid.NewString())
		validator, verr := cloudtrail.NewValidator(nil)
		if err = errors.Join(err, verr); err != nil {
			bad("cloudtrail record: %v", err)
		} else if d := validator.Decide(data); d.Outcome != cloudtrail.Act {
			bad("region %q or account %q would make the consumer %s the records: %s", c.Region, c.Account, d.Outcome, d.Detail)
		}
	}
	return errors.Join(errs...)
}

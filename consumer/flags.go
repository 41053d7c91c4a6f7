package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/bus"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/coalesce"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/pipeline"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// Flag names double as the keys of settings; each falls back to its CDC_* variable. The
// variable names are a public interface: keep them. configFromFlags reads them into a
// Config. Required flags say "(required)" first in their usage: they are checked by
// Config.Validate rather than with cli's Required, which would bind the parked
// sub-commands too (cli checks a parent's required flags for its sub-commands).
func flags() []cli.Flag {
	d := coalesce.Defaults()
	pd := pipeline.DefaultConfig()
	host, _ := os.Hostname()
	return []cli.Flag{
		// Input
		&cli.StringFlag{Name: "stream", Sources: cli.EnvVars("CDC_STREAM"), Category: "Kinesis",
			Usage: "(required) Kinesis stream the EventBridge rule delivers HealthLake's CloudTrail events to"},
		&cli.StringFlag{Name: "application", Sources: cli.EnvVars("CDC_APPLICATION"), Value: "healthlake-cdc", Category: "Kinesis",
			Usage: "KCL application name: the DynamoDB lease table's name, shared by all workers of one deployment"},
		&cli.StringFlag{Name: "worker-id", Sources: cli.EnvVars("CDC_WORKER_ID"), Value: fmt.Sprintf("%s-%d", host, os.Getpid()), Category: "Kinesis",
			Usage: "this worker's id in the lease table; unique per running process"},
		&cli.StringFlag{Name: "initial-position", Sources: cli.EnvVars("CDC_INITIAL_POSITION"), Value: "TRIM_HORIZON", Category: "Kinesis",
			Usage:     "where a shard without a checkpoint starts: TRIM_HORIZON (everything retained) or LATEST (what was put since this application first started, recorded once in the lease table; children of a reshard included)",
			Validator: oneOf("TRIM_HORIZON", "LATEST")},
		&cli.BoolFlag{Name: "kpl-aggregation", Sources: cli.EnvVars("CDC_KPL_AGGREGATION"), Category: "Kinesis",
			Usage: "de-aggregate KPL aggregated records (off: EventBridge never aggregates, and a record that only looks like an aggregate reaches the decoder as one record)"},
		&cli.IntFlag{Name: "max-in-flight", Sources: cli.EnvVars("CDC_MAX_IN_FLIGHT"), Value: 100000, Category: "Kinesis",
			Usage: "records per shard read but not yet acked; reading stops while this many wait (about 200 bytes each)"},
		&cli.DurationFlag{Name: "lease-failover", Sources: cli.EnvVars("CDC_LEASE_FAILOVER"), Value: 10 * time.Second, Category: "Kinesis",
			Usage: "a lease not renewed for this long is taken over by another worker"},
		&cli.DurationFlag{Name: "shutdown-grace", Sources: cli.EnvVars("CDC_SHUTDOWN_GRACE"), Value: 30 * time.Second, Category: "Kinesis",
			Usage: "on SIGTERM, how long in-flight searches may finish before the last checkpoint"},

		// Timeline
		&cli.DurationFlag{Name: "window", Sources: cli.EnvVars("CDC_WINDOW"), Value: d.Window, Category: "Timeline",
			Usage: "cadence: the least time between two searches of one (datastore, resource type), however many hints it gets"},
		&cli.DurationFlag{Name: "settle", Sources: cli.EnvVars("CDC_SETTLE"), Value: d.Settle, Category: "Timeline",
			Usage: "a range is searched only this long after its end (HealthLake search is eventually consistent)"},
		&cli.DurationFlag{Name: "lead", Sources: cli.EnvVars("CDC_LEAD"), Value: d.Lead, Category: "Timeline",
			Usage: "a hint's range starts this long before its second"},
		&cli.DurationFlag{Name: "lag", Sources: cli.EnvVars("CDC_LAG"), Value: d.Lag, Category: "Timeline",
			Usage: "a hint's range ends this long after its second"},
		&cli.DurationFlag{Name: "max-span", Sources: cli.EnvVars("CDC_MAX_SPAN"), Value: d.MaxSpan, Category: "Timeline",
			Usage: "the longest _lastUpdated range one search covers"},
		&cli.DurationFlag{Name: "verify-after", Sources: cli.EnvVars("CDC_VERIFY_AFTER"), Value: d.VerifyAfter, Category: "Timeline",
			Usage: "a searched range is counted again this long after its end, and re-read on a mismatch, to find writes the search index showed late (0: off)"},
		&cli.DurationFlag{Name: "key-lease-ttl", Sources: cli.EnvVars("CDC_KEY_LEASE_TTL"), Value: timeline.DefaultLeaseTTL, Category: "Timeline",
			Usage: "a worker that dies while it searches a (datastore, resource type) blocks it for at most this long"},
		&cli.IntFlag{Name: "park-attempts", Sources: cli.EnvVars("CDC_PARK_ATTEMPTS"), Value: pd.ParkAttempts, Category: "Timeline",
			Usage: "a range whose search fails for a reason retries cannot fix (403, 404, malformed page) is parked after this many attempts"},
		&cli.DurationFlag{Name: "park-after", Sources: cli.EnvVars("CDC_PARK_AFTER"), Value: pd.ParkAfter, Category: "Timeline",
			Usage: "... or after failing for this long: reported as \"HealthLake CDC Range Failed\", its records acked"},
		&cli.DurationFlag{Name: "sweep-interval", Sources: cli.EnvVars("CDC_SWEEP_INTERVAL"), Value: pd.SweepInterval, Category: "Timeline",
			Usage: "every known (datastore, type) timeline is extended to now minus settle this often, counting first and reading only on a mismatch, to find changes whose hints CloudTrail lost (0: off)"},
		&cli.DurationFlag{Name: "watermark-interval", Sources: cli.EnvVars("CDC_WATERMARK_INTERVAL"), Value: pd.WatermarkInterval, Category: "Timeline",
			Usage: "how often each datastore's \"HealthLake CDC Watermark\" event is published (0: never)"},
		&cli.StringFlag{Name: "versions", Sources: cli.EnvVars("CDC_VERSIONS"), Value: "latest", Category: "Timeline",
			Usage:     "latest (one event per resource per search: the version it shows) or all (versions a search skipped are read from the resource's history and emitted too, in order)",
			Validator: oneOf("latest", "all")},
		&cli.StringSliceFlag{Name: "types", Sources: cli.EnvVars("CDC_TYPES"), Category: "Timeline",
			Usage: "resource types always looked at for a hint that names none (a Bundle, an unknown write, an import), besides those seen in the datastore's hints"},
		&cli.BoolFlag{Name: "describe-import-jobs", Sources: cli.EnvVars("CDC_DESCRIBE_IMPORT_JOBS"), Category: "Timeline",
			Usage: "read an import's time range with DescribeFHIRImportJob (IAM healthlake:DescribeFHIRImportJob); off: from the event's submitTime to its time"},
		&cli.DurationFlag{Name: "parked-retry", Sources: cli.EnvVars("CDC_PARKED_RETRY"), Value: pd.ParkedRetry, Category: "Timeline",
			Usage: "how often parked ranges are searched again (0: only by consumer parked retry)"},

		// FHIR
		&cli.StringSliceFlag{Name: "datastores", Sources: cli.EnvVars("CDC_DATASTORES"), Category: "FHIR",
			Usage: "allow-list of datastore ids (comma separated); records for others are rejected. Empty: any"},
		&cli.StringFlag{Name: "fhir-endpoint", Sources: cli.EnvVars("CDC_FHIR_ENDPOINT"), Category: "FHIR",
			Usage: "FHIR base URL with {datastoreId}; default https://healthlake.{region}.amazonaws.com/datastore/{datastoreId}/r4/"},
		&cli.StringFlag{Name: "fhir-auth", Sources: cli.EnvVars("CDC_FHIR_AUTH"), Value: "sigv4", Category: "FHIR",
			Usage: "sigv4 (service healthlake, the AWS credential chain) or none", Validator: oneOf("sigv4", "none")},
		&cli.StringFlag{Name: "fhir-count", Sources: cli.EnvVars("CDC_FHIR_COUNT"), Value: string(fhir.CountSummary), Category: "FHIR",
			Usage:     "how verification counts a range: summary (_summary=count), total-accurate (_total=accurate&_count=0) or count-zero (_count=0); a server that ignores or refuses it has every range re-read",
			Validator: oneOf(string(fhir.CountSummary), string(fhir.CountTotalAccurate), string(fhir.CountZero))},
		&cli.IntFlag{Name: "fhir-concurrency", Sources: cli.EnvVars("CDC_FHIR_CONCURRENCY"), Value: 8, Category: "FHIR",
			Usage: "keys searching at once (bounds concurrent FHIR requests)"},

		// Dedup
		&cli.StringFlag{Name: "redis-url", Sources: cli.EnvVars("CDC_REDIS_URL"), Value: "redis://127.0.0.1:6379/0", Category: "Dedup",
			Usage: "Redis for dedup: redis://[user:pass@]host:port/db, rediss:// for TLS; several host:port separated by commas for a cluster"},
		&cli.DurationFlag{Name: "dedup-ttl", Sources: cli.EnvVars("CDC_DEDUP_TTL"), Value: 24 * time.Hour, Category: "Dedup",
			Usage: "how long an emitted (resource, version) is remembered"},
		&cli.DurationFlag{Name: "claim-ttl", Sources: cli.EnvVars("CDC_CLAIM_TTL"), Value: 60 * time.Second, Category: "Dedup",
			Usage: "how long a claim blocks other workers if its owner dies mid-emit"},
		&cli.StringFlag{Name: "dedup-prefix", Sources: cli.EnvVars("CDC_DEDUP_PREFIX"), Value: "cdc:dedup:", Category: "Dedup",
			Usage: "prefix of every dedup key (one per deployment sharing a Redis)"},
		&cli.BoolFlag{Name: "no-dedup", Sources: cli.EnvVars("CDC_NO_DEDUP"), Category: "Dedup",
			Usage: "emit without Redis (duplicates become likely); only for when Redis is gone for good"},

		// Output
		&cli.StringFlag{Name: "bus", Sources: cli.EnvVars("CDC_BUS"), Category: "Output",
			Usage: "(required) EventBridge custom bus (name or ARN) the change events go to"},
		&cli.DurationFlag{Name: "putevents-timeout", Sources: cli.EnvVars("CDC_PUTEVENTS_TIMEOUT"), Value: bus.DefaultCallTimeout, Category: "Output",
			Usage: "bound of one PutEvents call; all attempts of an emit must end within --claim-ttl"},
		&cli.StringFlag{Name: "source", Sources: cli.EnvVars("CDC_SOURCE"), Value: "healthlake.cdc", Category: "Output",
			Usage: "Source of the emitted events"},
		&cli.StringFlag{Name: "content", Sources: cli.EnvVars("CDC_CONTENT"), Value: string(event.FullResource), Category: "Output",
			Usage:     "full-resource (the FHIR JSON in each event, unless too large) or id-only",
			Validator: oneOf(string(event.FullResource), string(event.IDOnly))},

		// Operations
		&cli.StringFlag{Name: "http-addr", Sources: cli.EnvVars("CDC_HTTP_ADDR"), Value: "127.0.0.1:9090", Category: "Operations",
			Usage: "serves /healthz, /readyz and /metrics (empty: off)"},
		&cli.StringFlag{Name: "log-level", Sources: cli.EnvVars("CDC_LOG_LEVEL"), Value: "info", Category: "Operations",
			Usage: "debug, info, warn or error", Validator: oneOf("debug", "info", "warn", "error")},
	}
}

// local keeps the run flags to the consumer itself: its sub-commands (parked) need Redis only
// and must not ask for --stream or --bus.
func local(fs []cli.Flag) []cli.Flag {
	for _, f := range fs {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Local = true
		case *cli.StringSliceFlag:
			f.Local = true
		case *cli.DurationFlag:
			f.Local = true
		case *cli.IntFlag:
			f.Local = true
		case *cli.BoolFlag:
			f.Local = true
		default:
			panic(fmt.Sprintf("flag %T: add its type to local", f))
		}
	}
	return fs
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

package kcl

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"time"

	kclconfig "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	"go.opentelemetry.io/otel/metric"
)

// InitialPosition is where a shard without a checkpoint is read from.
type InitialPosition string

// The initial positions.
const (
	// TrimHorizon reads a shard from its oldest record: nothing in the stream is missed.
	TrimHorizon InitialPosition = "TRIM_HORIZON"
	// Latest reads only records put after the application (this Application name) first
	// started; every shard without a checkpoint — children of a split included — is read
	// from that moment (AT_TIMESTAMP), so nothing put since is skipped.
	Latest InitialPosition = "LATEST"
)

// Defaults of Config. They suit a stream of a few to a few dozen shards.
const (
	DefaultInitialPosition      = TrimHorizon
	DefaultShardSyncInterval    = 2 * time.Second
	DefaultFailoverTime         = 10 * time.Second
	DefaultMaxRecords           = 1000
	DefaultIdleTimeBetweenReads = time.Second
	DefaultMaxInFlightPerShard  = 1000
	DefaultCheckpointInterval   = 5 * time.Second
	DefaultShutdownTimeout      = 30 * time.Second
)

// outstandingFactor caps the records a shard holds between its checkpoint and its read
// position (in flight plus already acked behind the oldest in-flight one) at this multiple
// of MaxInFlightPerShard, so one stuck record cannot grow memory without bound.
const outstandingFactor = 16

// Config configures a Consumer. A zero field takes its default.
type Config struct {
	// Stream is the Kinesis stream name. Required.
	Stream string
	// Application names the consumer group; it is also the DynamoDB lease table's name.
	// Workers with the same Application share the shards. Required.
	Application string
	// WorkerID identifies this worker in the lease table. Default: hostname plus a random
	// suffix, so a restarted process is a new worker (its old leases expire after FailoverTime).
	WorkerID string
	// Region is the AWS region. Default: the Kinesis client's region.
	Region string

	// InitialPosition is where a shard without a checkpoint starts. Default TRIM_HORIZON.
	InitialPosition InitialPosition
	// KPLAggregation lets the library de-aggregate records written by the Kinesis Producer
	// Library. Off (the default: EventBridge never aggregates), a record that merely starts
	// with the KPL magic bytes reaches the Handler as it is, as one record. On, only records
	// that are valid aggregates are expanded; a broken one is passed on as it is too.
	KPLAggregation bool
	// ShardSyncInterval is the period of the worker's loop that lists shards, takes at most
	// one new lease and rebalances (±50% jitter). It also paces how often a child shard
	// checks whether its parent has ended. Default 2s.
	ShardSyncInterval time.Duration
	// FailoverTime is the lease duration: a worker that does not renew a lease within it
	// loses the shard to others. Default 10s.
	FailoverTime time.Duration
	// LeaseRefreshInterval is how often a held lease is renewed; it must be well below
	// FailoverTime. Default FailoverTime/4.
	LeaseRefreshInterval time.Duration
	// MaxRecords is the GetRecords limit per call (Kinesis allows up to 10000). Default 1000.
	MaxRecords int
	// IdleTimeBetweenReads is the pause after an empty GetRecords when the shard is caught
	// up. Default 1s.
	IdleTimeBetweenReads time.Duration
	// DisableLeaseStealing turns off rebalancing: by default a worker with fewer than its
	// share of leases claims one from the busiest worker each ShardSyncInterval.
	DisableLeaseStealing bool
	// MaxLeasesForWorker caps the shards this worker holds. Default 0: no cap.
	MaxLeasesForWorker int

	// MaxInFlightPerShard bounds the records of a shard handed to the Handler and not yet
	// done; ProcessRecords blocks at the bound. Set it above the shard's record rate times
	// the time a record takes to be acked, or it caps throughput. Default 1000.
	MaxInFlightPerShard int
	// CheckpointInterval is the least time between checkpoint writes of a shard (shutdown
	// and shard end write at once). Default 5s.
	CheckpointInterval time.Duration
	// ShutdownGrace is how long a stopping shard waits for its in-flight records to be done
	// before it checkpoints what was acked. Default: two thirds of ShutdownTimeout.
	ShutdownGrace time.Duration
	// ShutdownTimeout bounds Run's shutdown of the worker. Default 30s.
	ShutdownTimeout time.Duration

	// Logger receives the consumer's and the library's logs. Default slog.Default().
	Logger *slog.Logger
	// Hooks are optional observability callbacks (BatchSpans makes the tracing one).
	Hooks Hooks
	// MeterProvider gets the worker's metrics (the library's, routed through an adapter, and
	// the leases, reader lag and records in flight). Default: none recorded.
	MeterProvider metric.MeterProvider
}

func (c Config) withDefaults() Config {
	if c.WorkerID == "" {
		c.WorkerID = defaultWorkerID()
	}
	c.InitialPosition = cmp.Or(c.InitialPosition, DefaultInitialPosition)
	c.ShardSyncInterval = cmp.Or(c.ShardSyncInterval, DefaultShardSyncInterval)
	c.FailoverTime = cmp.Or(c.FailoverTime, DefaultFailoverTime)
	c.LeaseRefreshInterval = cmp.Or(c.LeaseRefreshInterval, c.FailoverTime/4)
	c.MaxRecords = cmp.Or(c.MaxRecords, DefaultMaxRecords)
	c.IdleTimeBetweenReads = cmp.Or(c.IdleTimeBetweenReads, DefaultIdleTimeBetweenReads)
	c.MaxInFlightPerShard = cmp.Or(c.MaxInFlightPerShard, DefaultMaxInFlightPerShard)
	c.CheckpointInterval = cmp.Or(c.CheckpointInterval, DefaultCheckpointInterval)
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.ShutdownGrace = cmp.Or(c.ShutdownGrace, c.ShutdownTimeout*2/3)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	return c
}

func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return host + "-" + hex.EncodeToString(b)
}

// tableName is DynamoDB's rule for table names.
var tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

// Validate reports what is wrong with c once defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Stream == "" {
		bad("stream is required")
	}
	if !tableName.MatchString(c.Application) {
		bad("application %q must be a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)", c.Application)
	}
	if c.Region == "" {
		bad("region is required (none set and none on the Kinesis client)")
	}
	if c.InitialPosition != TrimHorizon && c.InitialPosition != Latest {
		bad("initial position %q must be %s or %s", c.InitialPosition, TrimHorizon, Latest)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"shard sync interval", c.ShardSyncInterval},
		{"failover time", c.FailoverTime},
		{"lease refresh interval", c.LeaseRefreshInterval},
		{"idle time between reads", c.IdleTimeBetweenReads},
		{"checkpoint interval", c.CheckpointInterval},
		{"shutdown grace", c.ShutdownGrace},
		{"shutdown timeout", c.ShutdownTimeout},
	} {
		if d.v < time.Millisecond {
			bad("%s %s must be at least 1ms", d.name, d.v)
		}
	}
	if c.LeaseRefreshInterval >= c.FailoverTime {
		bad("lease refresh interval %s must be shorter than the failover time %s", c.LeaseRefreshInterval, c.FailoverTime)
	}
	if c.ShutdownGrace >= c.ShutdownTimeout {
		bad("shutdown grace %s must be shorter than the shutdown timeout %s", c.ShutdownGrace, c.ShutdownTimeout)
	}
	if c.MaxRecords < 1 || c.MaxRecords > 10000 {
		bad("max records %d must be in [1, 10000]", c.MaxRecords)
	}
	if c.MaxInFlightPerShard < 1 {
		bad("max in-flight per shard %d must be positive", c.MaxInFlightPerShard)
	}
	if c.MaxLeasesForWorker < 0 {
		bad("max leases for worker %d must not be negative", c.MaxLeasesForWorker)
	}
	return errors.Join(errs...)
}

// library returns the vmware-go-kcl-v2 configuration for c (defaults applied).
func (c Config) library(log *slog.Logger, mon *monitor) *kclconfig.KinesisClientLibConfiguration {
	ms := func(d time.Duration) int { return int(max(d.Milliseconds(), 1)) }
	k := kclconfig.NewKinesisClientLibConfig(c.Application, c.Stream, c.Region, c.WorkerID)
	pos := kclconfig.TRIM_HORIZON
	if c.InitialPosition == Latest {
		pos = kclconfig.LATEST
	}
	k.WithInitialPositionInStream(pos)
	k.TableName = c.Application
	k.Logger = newLibraryLogger(log)
	k.MonitoringService = mon
	k.ShardSyncIntervalMillis = ms(c.ShardSyncInterval)
	k.ParentShardPollIntervalMillis = ms(c.ShardSyncInterval)
	k.FailoverTimeMillis = ms(c.FailoverTime)
	k.LeaseRefreshWaitTime = ms(c.LeaseRefreshInterval)
	k.LeaseRefreshPeriodMillis = ms(c.LeaseRefreshInterval) // used by fan-out only
	k.MaxRecords = c.MaxRecords
	k.IdleTimeBetweenReadsInMillis = ms(c.IdleTimeBetweenReads)
	// Idle polls reach ProcessRecords too, so acks that arrive while the shard is quiet
	// still move the checkpoint.
	k.CallProcessRecordsEvenForEmptyRecordList = true
	k.EnableLeaseStealing = !c.DisableLeaseStealing
	// How often rebalancing re-reads the lease table; the library's 60s makes stealing slow.
	k.LeaseSyncingTimeIntervalMillis = ms(c.FailoverTime)
	if c.MaxLeasesForWorker > 0 {
		k.MaxLeasesForWorker = c.MaxLeasesForWorker
	}
	// A claim (lease stealing) blocks every other worker from the lease until it expires:
	// the library's 2 minutes stall the shard that long if the claimant dies mid-steal.
	k.LeaseStealingClaimTimeoutMillis = 2 * ms(c.FailoverTime)
	return k
}

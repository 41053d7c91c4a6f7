package kcl

import (
	"strings"
	"testing"
	"time"

	kclconfig "github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
)

func validConfig() Config {
	return Config{Stream: "cdc", Application: "healthlake-cdc", Region: "us-east-1"}
}

func TestConfigDefaults(t *testing.T) {
	c := validConfig().withDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.InitialPosition != TrimHorizon || c.ShardSyncInterval != 2*time.Second || c.FailoverTime != 10*time.Second ||
		c.LeaseRefreshInterval != 2500*time.Millisecond || c.MaxRecords != 1000 || c.IdleTimeBetweenReads != time.Second ||
		c.MaxInFlightPerShard != 1000 || c.CheckpointInterval != 5*time.Second || c.ShutdownTimeout != 30*time.Second ||
		c.ShutdownGrace != 20*time.Second || c.DisableLeaseStealing || c.WorkerID == "" || c.Logger == nil {
		t.Errorf("defaults: %+v", c)
	}
	if other := validConfig().withDefaults(); other.WorkerID == c.WorkerID {
		t.Errorf("two default worker ids are equal: %s", c.WorkerID)
	}

	lib := c.library(c.Logger, testMonitor(t))
	if lib.TableName != "healthlake-cdc" || lib.InitialPositionInStream != kclconfig.TRIM_HORIZON ||
		!lib.CallProcessRecordsEvenForEmptyRecordList || !lib.EnableLeaseStealing ||
		lib.ShardSyncIntervalMillis != 2000 || lib.FailoverTimeMillis != 10000 || lib.LeaseRefreshWaitTime != 2500 ||
		lib.MaxRecords != 1000 || lib.WorkerID != c.WorkerID || lib.MaxLeasesForWorker != kclconfig.DefaultMaxLeasesForWorker {
		t.Errorf("library config: %+v", lib)
	}
	if _, ok := lib.Logger.(libraryLogger); !ok {
		t.Errorf("library logger is %T, want ours", lib.Logger)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"no stream", func(c *Config) { c.Stream = "" }, "stream is required"},
		{"bad application", func(c *Config) { c.Application = "a b" }, "DynamoDB table name"},
		{"short application", func(c *Config) { c.Application = "ab" }, "DynamoDB table name"},
		{"no region", func(c *Config) { c.Region = "" }, "region is required"},
		{"bad position", func(c *Config) { c.InitialPosition = "AT_TIMESTAMP" }, "initial position"},
		{"latest", func(c *Config) { c.InitialPosition = Latest }, ""},
		{"negative duration", func(c *Config) { c.CheckpointInterval = -time.Second }, "checkpoint interval"},
		{"refresh not below failover", func(c *Config) { c.FailoverTime = 3 * time.Second; c.LeaseRefreshInterval = 3 * time.Second }, "lease refresh"},
		{"grace not below timeout", func(c *Config) { c.ShutdownTimeout = 5 * time.Second; c.ShutdownGrace = 5 * time.Second }, "shutdown grace"},
		{"max records", func(c *Config) { c.MaxRecords = 10001 }, "max records"},
		{"in flight", func(c *Config) { c.MaxInFlightPerShard = -1 }, "in-flight"},
		{"leases", func(c *Config) { c.MaxLeasesForWorker = -1 }, "max leases"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

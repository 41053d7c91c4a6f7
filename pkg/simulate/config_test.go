package simulate

import (
	"strings"
	"testing"
	"time"
)

const (
	ds1 = "0123456789abcdef0123456789abcdef"
	ds2 = "fedcba9876543210fedcba9876543210"
)

func TestDefaultConfigValidates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Datastores = []string{ds1}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	// The zero values of numeric fields take the defaults too.
	if err := (Config{Datastores: []string{ds1}, InjectEvents: true}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"no datastores", func(c *Config) { c.Datastores = nil }, "no datastores"},
		{"bad datastore", func(c *Config) { c.Datastores = []string{"ABC"} }, "not 32 lower-case hex"},
		{"datastore twice", func(c *Config) { c.Datastores = []string{ds1, ds1} }, "listed twice"},
		{"unsupported type", func(c *Config) { c.Types = []string{"Patient", "Medication"} }, `"Medication" is not one of`},
		{"type twice", func(c *Config) { c.Types = []string{"Patient", "Patient"} }, "listed twice"},
		{"writes and duration", func(c *Config) { c.Duration = time.Minute }, "not both"},
		{"negative writes", func(c *Config) { c.Writes = -1 }, "negative"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "rate -1"},
		{"update ratio", func(c *Config) { c.UpdateRatio = 1.5 }, "update ratio 1.5"},
		{"ratios sum", func(c *Config) { c.UpdateRatio, c.DeleteRatio = 0.7, 0.5 }, "above 1"},
		{"duplicates", func(c *Config) { c.DuplicateFraction = -0.1 }, "duplicate fraction"},
		{"hostile", func(c *Config) { c.HostileFraction = 2 }, "hostile fraction"},
		{"hot too big", func(c *Config) { c.Writes, c.HotResourceUpdates = 10, 10 }, "hot resource takes 11 writes"},
		{"partition key", func(c *Config) { c.PartitionKey = "shard" }, `partition key "shard"`},
		{"concurrency", func(c *Config) { c.Concurrency = -2 }, "concurrency -2"},
		{"account", func(c *Config) { c.Account = "12345" }, `account "12345"`},
		{"region", func(c *Config) { c.Region = "US_EAST" }, `region "US_EAST"`},
		{"burst", func(c *Config) { c.BurstSize = -1 }, "burst size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Datastores = []string{ds1, ds2}
			tc.modify(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}

	// Without injected events, region and account do not matter.
	cfg := DefaultConfig()
	cfg.Datastores, cfg.InjectEvents, cfg.Account = []string{ds1}, false, "x"
	if err := cfg.Validate(); err != nil {
		t.Errorf("no events, odd account: %v", err)
	}
	// All problems at once.
	cfg = Config{Rate: -1, Concurrency: -1}
	if err := cfg.Validate(); err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Errorf("want every problem, got %v", err)
	}
}

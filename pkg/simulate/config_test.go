package simulate

import (
	"encoding/json"
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
		{"bundles and writes", func(c *Config) { c.Bundles = 3 }, "either bundles"},
		{"bundle size", func(c *Config) { c.Writes, c.Bundles, c.BundleSize = 0, 3, MaxBundleSize+1 }, "bundle size 1001"},
		{"bundle type", func(c *Config) { c.Writes, c.Bundles, c.BundleType = 0, 3, "collection" }, `bundle type "collection"`},
		{"bundle hint", func(c *Config) { c.Writes, c.Bundles, c.BundleHint = 0, 3, "x" }, `bundle hint "x"`},
		{"bundles and bursts", func(c *Config) { c.Writes, c.Bundles, c.BurstSize = 0, 3, 5 }, "bursts are not available"},
		{"bundles and hot", func(c *Config) { c.Writes, c.Bundles, c.HotResourceUpdates = 0, 3, 5 }, "hot resource is not available"},
		{"patch ratio", func(c *Config) { c.PatchRatio = 2 }, "patch ratio 2"},
		{"drop hints", func(c *Config) { c.DropHints = -1 }, "drop-hints fraction -1"},
		{"drop gap", func(c *Config) { c.DropGap = Gap{-time.Second, time.Second} }, "drop gap"},
		{"drop without events", func(c *Config) { c.InjectEvents, c.DropHints = false, 0.1 }, "needs injected events"},
		{"import", func(c *Config) { c.Import = -1 }, "import must not be negative"},
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

func TestPatchAndLocalImportURL(t *testing.T) {
	body, err := Body("Patient", 42, 2, "p1", "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Patch(body)
	if err != nil {
		t.Fatal(err)
	}
	var ops []struct{ Op, Path string }
	json.Unmarshal(p, &ops)
	paths := map[string]bool{}
	for _, o := range ops {
		if o.Op != "add" {
			t.Errorf("op %q", o.Op)
		}
		paths[o.Path] = true
	}
	if !paths["/telecom"] || !paths["/name"] || paths["/id"] || paths["/meta"] || paths["/resourceType"] {
		t.Errorf("patch paths %v", paths)
	}
	for endpoint, want := range map[string]string{
		"http://127.0.0.1:18090/datastore/{datastoreId}/r4/":                     "http://127.0.0.1:18090/_admin/import",
		"http://localhost:1/datastore/{datastoreId}/r4":                          "http://localhost:1/_admin/import",
		"http://[::1]:8/datastore/{datastoreId}/r4/":                             "http://[::1]:8/_admin/import",
		"https://127.0.0.1:18090/datastore/{datastoreId}/r4/":                    "",
		"http://10.0.0.1/datastore/{datastoreId}/r4/":                            "",
		"https://healthlake.us-east-1.amazonaws.com/datastore/{datastoreId}/r4/": "",
	} {
		got, err := LocalImportURL(endpoint)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("LocalImportURL(%s) = %q, %v; want %q", endpoint, got, err, want)
		}
	}
}

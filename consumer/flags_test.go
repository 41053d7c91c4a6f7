package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kcl"
)

// parseConfig runs the consumer's flags on args (after "consumer") and returns the Config
// they map to, or the command line's own error. A new command each time: flags keep their
// values across runs of one.
func parseConfig(t *testing.T, args ...string) (Config, error) {
	t.Helper()
	var cfg Config
	cmd := &cli.Command{Name: "consumer", Flags: local(flags()), Writer: ioDiscard{}, ErrWriter: ioDiscard{},
		OnUsageError: func(_ context.Context, _ *cli.Command, err error, _ bool) error { return err },
		Action: func(_ context.Context, cmd *cli.Command) error {
			cfg = configFromFlags(cmd)
			return nil
		}}
	err := cmd.Run(context.Background(), append([]string{"consumer"}, args...))
	return cfg, err
}

type ioDiscard struct{}

func (ioDiscard) Write(p []byte) (int, error) { return len(p), nil }

// TestConfigFromFlags: every run flag reaches its Config field.
func TestConfigFromFlags(t *testing.T) {
	const ds = "0123456789abcdef0123456789abcdef"
	cfg, err := parseConfig(t, "--stream", "s", "--bus", "b", "--application", "app", "--worker-id", "w1",
		"--initial-position", "LATEST", "--kpl-aggregation", "--max-in-flight", "7", "--lease-failover", "11s",
		"--shutdown-grace", "3s", "--datastores", ds, "--window", "2s", "--settle", "3s", "--lead", "4s", "--lag", "5s",
		"--max-span", "6m", "--verify-after", "7m", "--key-lease-ttl", "8m", "--park-attempts", "9", "--park-after", "10m",
		"--sweep-interval", "11m", "--watermark-interval", "12s", "--versions", "all", "--types", "Patient,Observation",
		"--describe-import-jobs", "--parked-retry", "13m", "--fhir-endpoint", "http://127.0.0.1:1/ds/{datastoreId}/r4/",
		"--fhir-auth", "none", "--fhir-count", "count-zero", "--fhir-concurrency", "3", "--redis-url", "redis://r:1/2",
		"--dedup-ttl", "25h", "--claim-ttl", "61s", "--dedup-prefix", "p:", "--no-dedup", "--putevents-timeout", "4s",
		"--source", "src", "--content", "id-only", "--http-addr", ":0", "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pipeline
	got := []any{cfg.Stream, cfg.Bus, cfg.Application, cfg.WorkerID, cfg.InitialPosition, cfg.KPLAggregation, cfg.MaxInFlight,
		cfg.LeaseFailover, cfg.ShutdownGrace, cfg.Datastores, p.Timeline.Window, p.Timeline.Settle, p.Timeline.Lead, p.Timeline.Lag,
		p.Timeline.MaxSpan, p.Timeline.VerifyAfter, cfg.KeyLeaseTTL, p.ParkAttempts, p.ParkAfter, p.SweepInterval,
		p.WatermarkInterval, p.AllVersions, p.Types, cfg.DescribeImportJobs, p.ParkedRetry, cfg.FHIREndpoint, cfg.FHIRAuth,
		cfg.FHIRCount, p.FHIRConcurrency, cfg.RedisURL, cfg.DedupTTL, cfg.ClaimTTL, cfg.DedupPrefix, p.NoDedup,
		cfg.PutEventsTimeout, cfg.Source, cfg.Content, cfg.HTTPAddr, cfg.LogLevel}
	want := []any{"s", "b", "app", "w1", kcl.Latest, true, 7,
		11 * time.Second, 3 * time.Second, []string{ds}, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second,
		6 * time.Minute, 7 * time.Minute, 8 * time.Minute, 9, 10 * time.Minute, 11 * time.Minute,
		12 * time.Second, true, []string{"Patient", "Observation"}, true, 13 * time.Minute, "http://127.0.0.1:1/ds/{datastoreId}/r4/", "none",
		fhir.CountZero, 3, "redis://r:1/2", 25 * time.Hour, 61 * time.Second, "p:", true,
		4 * time.Second, "src", event.IDOnly, ":0", "debug"}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("field %d: %#v, want %#v", i, got[i], want[i])
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	// The defaults are a valid run once --stream and --bus are given, with content
	// full-resource.
	cfg, err = parseConfig(t, "--stream", "s", "--bus", "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if cfg.Content != event.FullResource || event.FullResource != "full-resource" {
		t.Errorf("default content %q", cfg.Content)
	}
}

// TestConfigValidate: one bad value per flag group fails Validate with the flag's name.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--stream (or CDC_STREAM) is required"},
		{[]string{"--stream", "s"}, "--bus (or CDC_BUS) is required"},
		// Kinesis
		{[]string{"--max-in-flight", "0"}, "--max-in-flight: 0 must be at least 1"},
		{[]string{"--lease-failover", "0s"}, "--lease-failover"},
		{[]string{"--shutdown-grace=-1s"}, "--shutdown-grace"},
		{[]string{"--application", "a b"}, "--application"},
		// Timeline
		{[]string{"--window=-1s"}, "--window: -1s must be positive"},
		{[]string{"--window=0s"}, "--window"},
		{[]string{"--settle=-1s"}, "--settle: -1s must not be negative"},
		{[]string{"--max-span", "10ms"}, "--max-span"},
		{[]string{"--park-attempts", "0"}, "--park-attempts"},
		{[]string{"--sweep-interval=-1m"}, "--sweep-interval"},
		{[]string{"--types", "Foo"}, `--types: "Foo"`},
		{[]string{"--key-lease-ttl", "0s"}, "--key-lease-ttl"},
		// FHIR
		{[]string{"--datastores", "abc"}, `--datastores: `},
		{[]string{"--fhir-endpoint", "http://h/r4/"}, "--fhir-endpoint"},
		{[]string{"--fhir-concurrency", "0"}, "--fhir-concurrency"},
		// Dedup
		{[]string{"--redis-url", "redis://u:secret@h:xx/0"}, "--redis-url"},
		{[]string{"--claim-ttl", "10s"}, "--claim-ttl: 10s must exceed the longest PutEvents emit"},
		{[]string{"--dedup-ttl", "500ms"}, "--dedup-ttl"},
		{[]string{"--dedup-ttl", "30s", "--key-lease-ttl", "1m"}, "--dedup-ttl: 30s is shorter than --key-lease-ttl"},
		// Output
		{[]string{"--putevents-timeout", "0s"}, "--putevents-timeout"},
		{[]string{"--source", ""}, "--source"},
		// Operations
		{[]string{"--http-addr", "nope"}, "--http-addr"},
	} {
		args := append([]string{"--stream", "s", "--bus", "b"}, tc.args...)
		switch {
		case tc.args == nil:
			args = nil
		case tc.args[0] == "--stream":
			args = tc.args
		}
		cfg, err := parseConfig(t, args...)
		if err != nil {
			t.Errorf("%v: command line: %v", tc.args, err)
			continue
		}
		err = cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: Validate() = %v, want %q", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: the error shows the Redis password: %v", tc.args, err)
		}
	}
}

// noAWS is an environment with no AWS settings, no endpoints and no shared config files.
func noAWS(t *testing.T, extra ...string) []string {
	home := t.TempDir()
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none")}, extra...)
}

// TestBadFlagIsAUsageError: a setting that cannot work stops the consumer before any AWS or
// Redis client is built, with exit status 2 and a message naming it — no network needed.
// Nothing listens on the ports used here, and no AWS region is set.
func TestBadFlagIsAUsageError(t *testing.T) {
	bin := consumerBinary(t)
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--window=-1s"}, nil, "--window: -1s must be positive"},
		{[]string{"--stream", "s", "--bus", "b", "--window=-1s"}, nil, "--window: -1s must be positive"},
		{[]string{"--stream", "s", "--bus", "b", "--window=abc"}, nil, `invalid value "abc" for flag -window`},
		{[]string{"--stream", "s", "--bus", "b"}, []string{"CDC_WINDOW=abc"}, `"CDC_WINDOW" for flag window`},
		{[]string{"--stream", "s", "--bus", "b", "--park-attempts=0"}, nil, "--park-attempts"},
		{[]string{"--stream", "s", "--bus", "b", "--types", "Foo"}, nil, `--types: "Foo"`},
		{[]string{"--stream", "s", "--bus", "b", "--max-in-flight=0"}, nil, "--max-in-flight"},
		{[]string{"--stream", "s", "--bus", "b", "--datastores", "abc"}, nil, "--datastores"},
		{[]string{"--stream", "s", "--bus", "b", "--claim-ttl", "10s"}, nil, "--claim-ttl"},
		{[]string{"--stream", "s", "--bus", "b", "--content", "full"}, nil, `invalid value "full" for flag -content`},
		{[]string{"--stream", "s", "--bus", "b", "--http-addr", "nope"}, nil, "--http-addr"},
		{[]string{"--stream", "s", "--bus", "b", "--no-such-flag"}, nil, "no-such-flag"},
		{[]string{"--bus", "b"}, nil, "--stream (or CDC_STREAM) is required"},
		{[]string{"--stream", "s"}, nil, "--bus (or CDC_BUS) is required"},
		// Every flag right, but no region: a usage error too, naming what to set.
		{[]string{"--stream", "s", "--bus", "b", "--http-addr", ""}, nil, "no AWS region: set AWS_REGION"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = noAWS(t, tc.env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v %v: %v, want exit status 2\n%s", tc.env, tc.args, err, out)
			continue
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%v %v: output %q does not say %q", tc.env, tc.args, out, tc.want)
		}
		if strings.Contains(string(out), "GLOBAL OPTIONS") {
			t.Errorf("%v: the help follows the error:\n%s", tc.args, out)
		}
	}
}

// TestUsageHelp: --help marks the required flags and groups --datastores with the FHIR
// settings; the parked sub-commands neither require nor list the run flags.
func TestUsageHelp(t *testing.T) {
	bin := consumerBinary(t)
	help := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = noAWS(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := help("--help")
	for _, flag := range []string{"--stream", "--bus"} {
		line := lineOf(out, "   "+flag+" ")
		if !strings.Contains(line, "(required)") {
			t.Errorf("--help: %s is not marked required: %q", flag, line)
		}
	}
	if n := strings.Count(out[strings.Index(out, "GLOBAL OPTIONS"):], "(required)"); n != 2 {
		t.Errorf("--help marks %d flags required, want 2 (--stream, --bus)", n)
	}
	fhirGroup := out[strings.Index(out, "   FHIR\n"):]
	fhirGroup = fhirGroup[:strings.Index(fhirGroup, "   Kinesis\n")]
	if !strings.Contains(fhirGroup, "--datastores") {
		t.Errorf("--datastores is not in the FHIR group:\n%s", fhirGroup)
	}
	for _, w := range []string{"Exit status", "full-resource", "--version"} {
		if !strings.Contains(out, w) {
			t.Errorf("--help lacks %q", w)
		}
	}

	for _, args := range [][]string{{"parked", "list", "--help"}, {"parked", "retry", "--help"}} {
		out := help(args...)
		if !strings.Contains(out, "--redis-url") || strings.Contains(out, "--stream") || strings.Contains(out, "(required)") {
			t.Errorf("%v:\n%s", args, out)
		}
	}
	// Without --stream and --bus, parked list gets as far as Redis: nothing listens on
	// port 1, so it fails as a run (exit 1), not for a missing flag.
	cmd := exec.Command(bin, "parked", "list", "--redis-url", "redis://127.0.0.1:1/0")
	cmd.Env = noAWS(t)
	out2, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || strings.Contains(string(out2), "required") {
		t.Errorf("parked list with Redis down: %v, want exit status 1 and no required flag\n%s", err, out2)
	}
}

func lineOf(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestVersion: a build stamped as `make build` and the image stamp it prints the stamp;
// a plain build says dev.
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "consumer")
	if out, err := exec.Command("go", "build", "-ldflags=-X main.version=1.2.3-test", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for b, want := range map[string]string{bin: "consumer version 1.2.3-test\n", consumerBinary(t): "consumer version dev\n"} {
		cmd := exec.Command(b, "--version")
		cmd.Env = noAWS(t)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != want {
			t.Errorf("%s --version: %v %q, want %q", b, err, out, want)
		}
	}
}

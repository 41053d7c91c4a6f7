package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v3"
	"go.uber.org/goleak"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/simulate"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// run runs the producer with args and returns its stdout and stderr.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(context.Background(), append([]string{"producer"}, args...))
	return out.String(), errOut.String(), err
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"simulate", "replay", "verify", "Exit status"}},
		{[]string{"simulate", "--help"}, []string{
			"--fhir-endpoint", "CDC_FHIR_ENDPOINT", "--fhir-auth", "--datastores", "--datastore-count", "--stream", "CDC_STREAM",
			"--manifest", "--types", "--writes", "--duration", "--rate", "--burst-size", "--burst-every", "--update-ratio",
			"--delete-ratio", "--hot-resource-updates", "--concurrency", "--seed", "--inject-events", "--duplicate-fraction",
			"--hostile-fraction", "--partition-key", "--region", "--account", "--quiet",
			"--bundles", "CDC_SIM_BUNDLES", "--bundle-size", "--bundle-type", "--bundle-hint", "--patch-ratio", "CDC_SIM_PATCH_RATIO",
			"--import", "CDC_SIM_IMPORT", "loopback", "--drop-hints", "CDC_SIM_DROP_HINTS", "--drop-gap", "CDC_SIM_DROP_GAP",
		}},
		{[]string{"replay", "--help"}, []string{"PATH...", "--stream", "--from", "--to", "--rate", "--dry-run", "--datastores", "PatchResource", "ProcessBundle", "Import Job Completed"}},
		{[]string{"verify", "--help"}, []string{"--manifest", "--events", "--recorder", "--source", "--expect-deletes", "--all-datastores", "--wait", "--json"}},
	} {
		out, _, err := run(t, tc.args...)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: help lacks %q", tc.args, w)
			}
		}
	}
}

// Every simulate flag reaches the Config.
func TestSimulateFlags(t *testing.T) {
	var cfg simulate.Config
	// A new command for every run: flags keep their values across runs of one.
	app := appFunc(func() *cli.Command {
		cmd := simulateCommand()
		cmd.Action = func(_ context.Context, c *cli.Command) (err error) {
			cfg, err = simulateConfig(c)
			return err
		}
		return &cli.Command{Name: "producer", Commands: []*cli.Command{cmd}}
	})
	const ds = "0123456789abcdef0123456789abcdef"
	err := app.Run(context.Background(), []string{"producer", "simulate", "--manifest", "m",
		"--datastores", ds, "--types", "Patient,Condition", "--duration", "90s", "--rate", "12.5",
		"--burst-size", "30", "--burst-every", "5s", "--update-ratio", "0.25", "--delete-ratio", "0.125",
		"--hot-resource-updates", "7", "--concurrency", "3", "--seed", "99", "--inject-events=false",
		"--duplicate-fraction", "0.2", "--hostile-fraction", "0.05", "--partition-key", "datastore", "--account", "111122223333",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := simulate.DefaultConfig()
	want.Datastores, want.Types, want.Writes, want.Duration, want.Rate = []string{ds}, []string{"Patient", "Condition"}, 0, 90*time.Second, 12.5
	want.BurstSize, want.BurstEvery, want.UpdateRatio, want.DeleteRatio = 30, 5*time.Second, 0.25, 0.125
	want.HotResourceUpdates, want.Concurrency, want.Seed, want.InjectEvents = 7, 3, 99, false
	want.DuplicateFraction, want.HostileFraction, want.PartitionKey, want.Account = 0.2, 0.05, "datastore", "111122223333"
	if !reflect.DeepEqual(cfg, want) { // Now and Sleep are nil in both
		t.Errorf("config\n%+v\nwant\n%+v", cfg, want)
	}

	// Defaults: two random datastores, 100 writes, events on.
	err = app.Run(context.Background(), []string{"producer", "simulate", "--manifest", "m"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Datastores) != 2 || cfg.Writes != 100 || !cfg.InjectEvents || cfg.Duration != 0 {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, bad := range [][]string{
		{"--datastores", ds, "--datastore-count", "3"},
		{"--writes", "10", "--duration", "1m"},
		{"--datastore-count", "0"},
		{"--bundles", "3", "--writes", "10"},
		{"--bundle-size", "5"},
		{"--bundles", "3", "--bundle-type", "collection"},
		{"--bundles", "3", "--bundle-hint", "Bundle"},
		{"--drop-gap", "20s"},
		{"--drop-gap", "-1s:5s"},
		{"--drop-gap", "20s:0s"},
	} {
		if err := app.Run(context.Background(), append([]string{"producer", "simulate", "--manifest", "m"}, bad...)); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}

	// Bundles, patches, imports and dropped hints.
	err = app.Run(context.Background(), []string{"producer", "simulate", "--manifest", "m", "--datastores", ds,
		"--bundles", "30", "--bundle-size", "15", "--bundle-type", "transaction", "--bundle-hint", "bundle-type",
		"--patch-ratio", "0.5", "--import", "2000", "--drop-hints", "0.05", "--drop-gap", "20s:15s"})
	if err != nil {
		t.Fatal(err)
	}
	want = simulate.DefaultConfig()
	want.Datastores, want.Writes, want.Bundles, want.BundleSize, want.BundleType, want.BundleHint = []string{ds}, 0, 30, 15, "transaction", "bundle-type"
	want.PatchRatio, want.Import, want.DropHints, want.DropGap = 0.5, 2000, 0.05, simulate.Gap{Start: 20 * time.Second, Duration: 15 * time.Second}
	want.BurstEvery = simulate.DefaultBurstEvery
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config\n%+v\nwant\n%+v", cfg, want)
	}
	// An import alone writes nothing else; with --writes, both.
	for _, tc := range []struct {
		args   []string
		writes int
	}{{[]string{"--import", "5"}, 0}, {[]string{"--import", "5", "--writes", "7"}, 7}, {[]string{"--bundles", "2"}, 0}} {
		if err := app.Run(context.Background(), append([]string{"producer", "simulate", "--manifest", "m"}, tc.args...)); err != nil || cfg.Writes != tc.writes {
			t.Errorf("%v: writes %d, err %v", tc.args, cfg.Writes, err)
		}
	}
	// Environment fallbacks.
	t.Setenv("CDC_SIM_BUNDLES", "4")
	t.Setenv("CDC_SIM_DROP_GAP", "1s:2s")
	if err := app.Run(context.Background(), []string{"producer", "simulate", "--manifest", "m"}); err != nil || cfg.Bundles != 4 || cfg.DropGap.Duration != 2*time.Second {
		t.Errorf("from the environment: %+v, %v", cfg, err)
	}
}

// Usage errors of the new flags: refused before any I/O, with a message, as exit status 2
// (main maps every error but errMissing to 2).
func TestSimulateUsageErrors(t *testing.T) {
	manifest := filepath.Join(t.TempDir(), "m.jsonl")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--import", "10", "--fhir-endpoint", "https://healthlake.us-east-1.amazonaws.com/datastore/{datastoreId}/r4/"}, "not an http loopback address"},
		{[]string{"--import", "10", "--fhir-endpoint", "http://10.1.2.3:8080/datastore/{datastoreId}/r4/"}, "not an http loopback address"},
		{[]string{"--import", "10", "--fhir-auth", "sigv4"}, "HealthLake has no admin import"},
		{[]string{"--bundles", "2", "--bundle-size", "0", "--inject-events=false"}, "--bundle-size 0"},
		{[]string{"--bundles", "2", "--bundle-size", "5000", "--inject-events=false"}, "bundle size 5000"},
		{[]string{"--drop-hints", "0.1", "--inject-events=false"}, "dropping hints needs injected events"},
		{[]string{"--drop-hints", "1.5", "--inject-events=false"}, "drop-hints fraction 1.5"},
		{[]string{"--patch-ratio", "-1", "--inject-events=false"}, "patch ratio -1"},
		{[]string{"--drop-gap", "soon"}, "START:DURATION"},
	} {
		_, _, err := run(t, append([]string{"simulate", "-q", "--manifest", manifest}, tc.args...)...)
		if err == nil || errors.Is(err, errMissing) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want one containing %q (exit 2)", tc.args, err, tc.want)
		}
	}
}

// TestSimulateBundlesAndImportOnLocalFHIR runs the new modes through the command against the
// local FHIR server, without events.
func TestSimulateBundlesAndImportOnLocalFHIR(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local FHIR server (-short)")
	}
	addr := stack.Addr(t, stack.FHIR)
	manifest := filepath.Join(t.TempDir(), "m.jsonl")
	out, _, err := run(t, "simulate", "-q", "--fhir-endpoint", "http://"+addr+"/datastore/{datastoreId}/r4/",
		"--inject-events=false", "--bundles", "3", "--bundle-size", "10", "--update-ratio", "0.3", "--patch-ratio", "0.5",
		"--import", "25", "--datastore-count", "1", "--seed", "5", "--manifest", manifest)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	m := string(b)
	if strings.Count(m, "\n") != 55 || strings.Count(m, `"via":"batch"`) != 30 || strings.Count(m, `"via":"import"`) != 25 ||
		!strings.Contains(out, "bundles      3 batch Bundles") || !strings.Contains(out, "imported     25 resources in 1 jobs") {
		t.Errorf("manifest:\n%s\noutput:\n%s", m, out)
	}
}

// appFunc runs a new command for every Run.
type appFunc func() *cli.Command

func (f appFunc) Run(ctx context.Context, args []string) error { return f().Run(ctx, args) }

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerifyCommand(t *testing.T) {
	const ds = "0123456789abcdef0123456789abcdef"
	manifest := writeFile(t, "manifest.jsonl",
		`{"datastoreId":"`+ds+`","resourceType":"Patient","id":"p1","versionId":"1","lastUpdated":"2026-11-20T09:15:00.000Z","operation":"create","eventId":"e1"}`+"\n"+
			`{"datastoreId":"`+ds+`","resourceType":"Patient","id":"p2","versionId":"1","lastUpdated":"2026-11-20T09:15:01.000Z","operation":"create","eventId":"e2"}`+"\n")
	event := func(source, id string) string {
		return `{"received":"2026-11-20T09:15:03.000Z","source":"` + source + `","detailType":"FHIR Resource Created","detail":{"datastoreId":"` + ds +
			`","resourceType":"Patient","id":"` + id + `","versionId":"1","lastUpdated":"2026-11-20T09:15:01.000Z","action":"create"}}` + "\n"
	}
	some := writeFile(t, "some.jsonl", event("healthlake.cdc", "p1")+event("other", "p2"))
	all := writeFile(t, "all.jsonl", event("test.src", "p1")+event("test.src", "p2"))

	out, _, err := run(t, "verify", "--manifest", manifest, "--events", some)
	if !errors.Is(err, errMissing) || !strings.Contains(out, "missing                  1\n") || !strings.Contains(out, "Patient/p2") {
		t.Errorf("one missing: err %v\n%s", err, out)
	}
	out, _, err = run(t, "verify", "--manifest", manifest, "--events", all, "--source", "test.src", "--json")
	if err != nil {
		t.Fatalf("none missing: %v\n%s", err, out)
	}
	var rep struct {
		Writes, Missing int
		Latency         map[string]float64
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if rep.Writes != 2 || rep.Missing != 0 || rep.Latency["p99Ms"] != 3000 {
		t.Errorf("report %+v", rep)
	}
	if _, _, err := run(t, "verify", "--manifest", manifest, "--events", filepath.Join(t.TempDir(), "none")); err == nil || errors.Is(err, errMissing) {
		t.Errorf("unreadable events: %v", err)
	}
}

func TestReplayDryRun(t *testing.T) {
	b, err := os.ReadFile("../pkg/cloudtrail/testdata/create-patient.json")
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Detail json.RawMessage `json:"detail"`
	}
	json.Unmarshal(b, &env)
	log := writeFile(t, "log.json", `{"Records":[`+string(env.Detail)+`]}`)
	out, _, err := run(t, "replay", "--dry-run", "-q", "--from", "2026-11-20T09:00:00Z", "--to", "2026-11-20T10:00:00Z", log)
	if err != nil || !strings.Contains(out, "put          1 HealthLake mutations (CreateResource 1) (dry run") {
		t.Errorf("err %v\n%s", err, out)
	}
	// Fixtures are EventBridge events: a Bundle, a PATCH and an import are kept, a read is not.
	fx := "../pkg/cloudtrail/testdata/"
	out, _, err = run(t, "replay", "--dry-run", "-q", fx+"bundle-batch.json", fx+"patch-observation.json", fx+"import-completed.json", fx+"ignore-read.json")
	if err != nil || !strings.Contains(out, "put          3 HealthLake mutations (Import Job Completed 1, PatchResource 1, ProcessBundle 1)") ||
		!strings.Contains(out, "1 other events") {
		t.Errorf("events files: err %v\n%s", err, out)
	}
	out, _, err = run(t, "replay", "--dry-run", "-q", "--from", "2026-11-20T09:15:03Z", log)
	if err != nil || !strings.Contains(out, "put          0") || !strings.Contains(out, "1 outside the time range") {
		t.Errorf("err %v\n%s", err, out)
	}
	for _, bad := range [][]string{
		{"replay", "--dry-run"},                             // no path
		{"replay", "--dry-run", "--from", "yesterday", log}, // bad time
		{"replay", log},                                     // no stream
	} {
		if _, _, err := run(t, bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

// TestSimulateOnLocalFHIR runs the command against the local FHIR server, without events.
func TestSimulateOnLocalFHIR(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local FHIR server (-short)")
	}
	addr := stack.Addr(t, stack.FHIR)
	manifest := filepath.Join(t.TempDir(), "m.jsonl")
	out, _, err := run(t, "simulate", "-q", "--fhir-endpoint", "http://"+addr+"/datastore/{datastoreId}/r4/",
		"--inject-events=false", "--writes", "30", "--update-ratio", "0.3", "--datastore-count", "1", "--seed", "5", "--manifest", manifest)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 30 || !strings.Contains(out, "writes       30 (") || !strings.Contains(out, "seed         5") {
		t.Errorf("%d manifest lines; output:\n%s", n, out)
	}
}

// TestExitStatus runs the built producer with no AWS settings and nothing listening: a usage
// error (a bad flag value, a missing required flag, no AWS region) exits 2 with a message
// naming what to fix and no help after it; verify's missing writes exit 1.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "producer")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	manifest := filepath.Join(dir, "manifest.jsonl")
	line := `{"datastoreId":"0123456789abcdef0123456789abcdef","resourceType":"Patient","id":"p1","versionId":"1","lastUpdated":"2026-01-01T00:00:00.000Z","operation":"create","eventId":"e1"}` + "\n"
	if err := os.WriteFile(manifest, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"simulate", "--manifest", filepath.Join(dir, "m"), "--rate", "abc"}, 2, `invalid value "abc" for flag -rate`},
		{[]string{"simulate", "--stream", "s"}, 2, `Required flag "manifest" not set`},
		{[]string{"simulate", "--manifest", filepath.Join(dir, "m"), "--stream", "s", "--writes", "1"}, 2, "no AWS region: set AWS_REGION or --region"},
		{[]string{"create-stream", "--stream", "s"}, 2, "no AWS region: set AWS_REGION"},
		{[]string{"replay", "--stream", "s", "--from", "yesterday", manifest}, 2, "--from"},
		{[]string{"verify", "--manifest", manifest, "--events", empty}, 1, "missing"},
	} {
		cmd := exec.Command(bin, tc.args...)
		home := t.TempDir()
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_CONFIG_FILE=" + filepath.Join(home, "none"),
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "none")}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
			t.Errorf("%v: %v, want exit status %d\n%s", tc.args, err, tc.code, out)
			continue
		}
		if !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "OPTIONS:") {
			t.Errorf("%v: output %q, want %q and no help", tc.args, out, tc.want)
		}
	}
}

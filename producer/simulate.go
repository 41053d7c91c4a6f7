package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/urfave/cli/v3"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/fhir"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/kinesisput"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/progress"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/simulate"
)

func simulateCommand() *cli.Command {
	d := simulate.DefaultConfig()
	return &cli.Command{
		Name:  "simulate",
		Usage: "write synthetic FHIR resources and put the matching CloudTrail records into the stream",
		Description: "Writes creates, updates and deletes of synthetic resources (fictional people, tagged\n" +
			"urn:healthlake-cdc:simulate) to the FHIR endpoint, steadily (--rate) or in bursts, and for\n" +
			"each write puts the CloudTrail record the EventBridge rule would deliver into --stream\n" +
			"(unless --inject-events=false, for an endpoint real CloudTrail watches). --patch-ratio sends\n" +
			"updates as JSON Patch; --bundles writes batch or transaction Bundles instead, one record per\n" +
			"Bundle; --import adds an import through the local FHIR server (one \"Import Job Completed\"\n" +
			"event per job); --drop-hints and --drop-gap leave records out, for tests of sweeps.\n" +
			"Every write is a line of --manifest (Bundle entries and imported resources too), which\n" +
			"`producer verify` checks against the emitted events.\n" +
			"Progress goes to stderr, the summary to stdout.",
		Flags: []cli.Flag{
			// Target
			&cli.StringFlag{Name: "fhir-endpoint", Sources: cli.EnvVars("CDC_FHIR_ENDPOINT"), Value: localFHIREndpoint, Category: "Target",
				Usage: "FHIR base URL with {datastoreId}; for HealthLake https://healthlake.REGION.amazonaws.com/datastore/{datastoreId}/r4/"},
			&cli.StringFlag{Name: "fhir-auth", Sources: cli.EnvVars("CDC_FHIR_AUTH"), Value: "none", Category: "Target",
				Usage: "none, or sigv4 (service healthlake, the AWS credential chain; needed for HealthLake)", Validator: oneOf("none", "sigv4")},
			&cli.StringSliceFlag{Name: "datastores", Sources: cli.EnvVars("CDC_DATASTORES"), Category: "Target",
				Usage: "datastore ids to write to (comma separated)"},
			&cli.IntFlag{Name: "datastore-count", Value: 2, Category: "Target",
				Usage: "without --datastores: write to this many new random datastore ids (the local FHIR server creates them on first use)"},
			&cli.StringFlag{Name: "stream", Sources: cli.EnvVars("CDC_STREAM"), Category: "Target",
				Usage: "Kinesis stream (name or ARN) for the CloudTrail records; required unless --inject-events=false"},
			&cli.StringFlag{Name: "manifest", Required: true, TakesFile: true, Category: "Target",
				Usage: "(required) write the manifest (one JSON line per FHIR write) to `FILE`"},

			// Traffic
			&cli.StringSliceFlag{Name: "types", Value: d.Types, Category: "Traffic",
				Usage: "resource types to write; supported: " + strings.Join(simulate.SupportedTypes(), ", ")},
			&cli.IntFlag{Name: "writes", Value: d.Writes, Sources: cli.EnvVars("CDC_SIM_WRITES"), Category: "Traffic",
				Usage: "number of single FHIR writes (ignored with --duration; 0 by default with --bundles or --import)"},
			&cli.DurationFlag{Name: "duration", Category: "Traffic",
				Usage: "write until this much time has passed, instead of --writes"},
			&cli.FloatFlag{Name: "rate", Category: "Traffic",
				Usage: "steady writes per second; 0: as fast as --concurrency allows, or only bursts when --burst-size is set"},
			&cli.IntFlag{Name: "burst-size", Category: "Traffic",
				Usage: "every --burst-every, a burst of this many writes to one (datastore, type) within a second (0: no bursts)"},
			&cli.DurationFlag{Name: "burst-every", Value: simulate.DefaultBurstEvery, Category: "Traffic",
				Usage: "time from the start of one burst to the next"},
			&cli.FloatFlag{Name: "update-ratio", Category: "Traffic",
				Usage: "fraction of writes that update an existing resource"},
			&cli.FloatFlag{Name: "delete-ratio", Category: "Traffic",
				Usage: "fraction of writes that delete an existing resource"},
			&cli.IntFlag{Name: "hot-resource-updates", Category: "Traffic",
				Usage: "start with one resource created and then updated this many times in a row"},
			&cli.IntFlag{Name: "concurrency", Value: d.Concurrency, Category: "Traffic",
				Usage: "FHIR writes in flight at once"},
			&cli.Uint64Flag{Name: "seed", Category: "Traffic",
				Usage: "seed of the plan (types, operations, bodies); 0 picks one, printed in the summary"},
			&cli.FloatFlag{Name: "patch-ratio", Sources: cli.EnvVars("CDC_SIM_PATCH_RATIO"), Category: "Traffic",
				Usage: "fraction of updates sent as JSON Patch (hinted as PatchResource; in Bundles: PATCH entries)"},

			// Bundles and imports
			&cli.IntFlag{Name: "bundles", Sources: cli.EnvVars("CDC_SIM_BUNDLES"), Category: "Bundles and imports",
				Usage: "write this many Bundles instead of single writes, each with ONE CloudTrail record (--rate counts entries)"},
			&cli.IntFlag{Name: "bundle-size", Value: simulate.DefaultBundleSize, Sources: cli.EnvVars("CDC_SIM_BUNDLE_SIZE"), Category: "Bundles and imports",
				Usage: "entries per Bundle (creates, updates, deletes by the ratios; one datastore per Bundle)"},
			&cli.StringFlag{Name: "bundle-type", Value: simulate.BundleBatch, Sources: cli.EnvVars("CDC_SIM_BUNDLE_TYPE"), Category: "Bundles and imports",
				Usage: "batch or transaction", Validator: oneOf(simulate.BundleBatch, simulate.BundleTransaction)},
			&cli.StringFlag{Name: "bundle-hint", Value: simulate.HintProcessBundle, Sources: cli.EnvVars("CDC_SIM_BUNDLE_HINT"), Category: "Bundles and imports",
				Usage:     "shape of a Bundle's CloudTrail record: process-bundle (eventName ProcessBundle, no resourceType) or bundle-type (CreateResource of type Bundle)",
				Validator: oneOf(simulate.HintProcessBundle, simulate.HintBundleType)},
			&cli.IntFlag{Name: "import", Sources: cli.EnvVars("CDC_SIM_IMPORT"), Category: "Bundles and imports",
				Usage: "after the other writes, import this many new resources through the LOCAL FHIR server's admin import (one job and one \"Import Job Completed\" event per datastore, no per-resource records); refused unless --fhir-endpoint is an http loopback address"},

			// Events
			&cli.BoolFlag{Name: "inject-events", Value: true, Category: "Events",
				Usage: "put a CloudTrail record into --stream for each write (default: true; --inject-events=false when real CloudTrail watches the endpoint)"},
			&cli.FloatFlag{Name: "duplicate-fraction", Category: "Events",
				Usage: "fraction of the CloudTrail records put twice"},
			&cli.FloatFlag{Name: "hostile-fraction", Category: "Events",
				Usage: "after this fraction of the writes, also put a hostile record (garbage, truncated, bad datastore or type)"},
			&cli.FloatFlag{Name: "drop-hints", Sources: cli.EnvVars("CDC_SIM_DROP_HINTS"), Category: "Events",
				Usage: "fraction of the CloudTrail records (one per write, one per Bundle) NOT put, as best-effort delivery loses some; the manifest marks them (hintDropped)"},
			&cli.StringFlag{Name: "drop-gap", Sources: cli.EnvVars("CDC_SIM_DROP_GAP"), Category: "Events",
				Usage: "`START:DURATION` (e.g. 20s:15s): put no CloudTrail record for writes started in that stretch of the run; the manifest marks them"},
			&cli.StringFlag{Name: "partition-key", Value: simulate.PartitionByEventID, Category: "Events",
				Usage:     "event-id (as a rule without PartitionKeyPath) or datastore",
				Validator: oneOf(simulate.PartitionByEventID, simulate.PartitionByDatastore)},
			&cli.StringFlag{Name: "region", Category: "Events",
				Usage: "region of the CloudTrail records and of SigV4 signing; default the AWS configuration's (AWS_REGION); none at all is an error"},
			&cli.StringFlag{Name: "account", Value: simulate.DefaultAccount, Category: "Events",
				Usage: "account id of the CloudTrail records (12 digits)"},

			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
		},
		Action: runSimulate,
	}
}

// simulateConfig turns the flags into a simulate.Config (not yet validated).
func simulateConfig(cmd *cli.Command) (simulate.Config, error) {
	cfg := simulate.DefaultConfig()
	cfg.Datastores = cmd.StringSlice("datastores")
	if len(cfg.Datastores) > 0 && cmd.IsSet("datastore-count") {
		return cfg, errors.New("use either --datastores or --datastore-count")
	}
	if len(cfg.Datastores) == 0 {
		n := cmd.Int("datastore-count")
		if n < 1 || n > 1000 {
			return cfg, fmt.Errorf("--datastore-count %d is not between 1 and 1000", n)
		}
		for range n {
			cfg.Datastores = append(cfg.Datastores, simulate.NewDatastoreID())
		}
	}
	cfg.Types = cmd.StringSlice("types")
	cfg.Writes, cfg.Duration = cmd.Int("writes"), cmd.Duration("duration")
	if cfg.Duration > 0 {
		if cmd.IsSet("writes") {
			return cfg, errors.New("use either --writes or --duration")
		}
		cfg.Writes = 0
	}
	cfg.Bundles, cfg.Import = cmd.Int("bundles"), cmd.Int("import")
	if cfg.Bundles > 0 || cmd.IsSet("bundle-size") || cmd.IsSet("bundle-type") || cmd.IsSet("bundle-hint") {
		if cfg.Bundles <= 0 {
			return cfg, errors.New("--bundle-size, --bundle-type and --bundle-hint need --bundles")
		}
		if cmd.IsSet("writes") || cfg.Duration > 0 {
			return cfg, errors.New("use either --bundles or --writes/--duration")
		}
		cfg.Writes = 0
		cfg.BundleSize, cfg.BundleType, cfg.BundleHint = cmd.Int("bundle-size"), cmd.String("bundle-type"), cmd.String("bundle-hint")
		if cfg.BundleSize < 1 {
			return cfg, fmt.Errorf("--bundle-size %d: want at least 1 entry", cfg.BundleSize)
		}
	}
	if cfg.Import > 0 && !cmd.IsSet("writes") && cfg.Duration == 0 && cfg.Bundles == 0 {
		cfg.Writes = 0 // an import alone
	}
	cfg.PatchRatio, cfg.DropHints = cmd.Float("patch-ratio"), cmd.Float("drop-hints")
	if g := cmd.String("drop-gap"); g != "" {
		var err error
		if cfg.DropGap, err = parseGap(g); err != nil {
			return cfg, err
		}
	}
	cfg.Rate = cmd.Float("rate")
	cfg.BurstSize, cfg.BurstEvery = cmd.Int("burst-size"), cmd.Duration("burst-every")
	cfg.UpdateRatio, cfg.DeleteRatio = cmd.Float("update-ratio"), cmd.Float("delete-ratio")
	cfg.HotResourceUpdates = cmd.Int("hot-resource-updates")
	cfg.Concurrency = cmd.Int("concurrency")
	cfg.Seed = cmd.Uint64("seed")
	cfg.InjectEvents = cmd.Bool("inject-events")
	cfg.DuplicateFraction, cfg.HostileFraction = cmd.Float("duplicate-fraction"), cmd.Float("hostile-fraction")
	cfg.PartitionKey = cmd.String("partition-key")
	cfg.Account = cmd.String("account")
	return cfg, nil
}

// parseGap reads START:DURATION, two Go durations.
func parseGap(s string) (simulate.Gap, error) {
	a, b, ok := strings.Cut(s, ":")
	start, err1 := time.ParseDuration(a)
	d, err2 := time.ParseDuration(b)
	if !ok || err1 != nil || err2 != nil || start < 0 || d <= 0 {
		return simulate.Gap{}, fmt.Errorf("--drop-gap %q is not START:DURATION such as 20s:15s", s)
	}
	return simulate.Gap{Start: start, Duration: d}, nil
}

func runSimulate(ctx context.Context, cmd *cli.Command) error {
	cfg, err := simulateConfig(cmd)
	if err != nil {
		return err
	}
	var importURL string
	if cfg.Import > 0 {
		if cmd.String("fhir-auth") != "none" {
			return errors.New("--import works only against the local FHIR server (--fhir-auth none): HealthLake has no admin import")
		}
		if importURL, err = simulate.LocalImportURL(cmd.String("fhir-endpoint")); err != nil {
			return err
		}
	}
	if cfg.InjectEvents && cmd.String("stream") == "" {
		return errors.New("--stream (or CDC_STREAM) is required to inject events; --inject-events=false writes FHIR only")
	}
	auth := cmd.String("fhir-auth")
	var awsCfg aws.Config
	if cfg.InjectEvents || auth == "sigv4" {
		if awsCfg, err = loadAWS(ctx, cmd.String("region"), "--region"); err != nil {
			return err
		}
		cfg.Region = awsCfg.Region
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.Concurrency
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	if auth == "sigv4" {
		client.Transport = fhir.SigV4Transport(transport, awsCfg.Credentials, cfg.Region, nil)
	}
	writer, err := simulate.NewHTTPWriter(simulate.HTTPWriterOptions{Endpoint: cmd.String("fhir-endpoint"), Client: client, ImportURL: importURL})
	if err != nil {
		return err
	}
	var sink simulate.RecordSink
	if cfg.InjectEvents {
		if sink, err = kinesisput.New(kinesis.NewFromConfig(awsCfg), cmd.String("stream"), kinesisput.Options{}); err != nil {
			return err
		}
	}

	f, err := os.Create(cmd.String("manifest"))
	if err != nil {
		return err
	}
	manifest := bufio.NewWriter(f)
	var report func(done, total int)
	var bar *progress.Reporter
	if !cmd.Bool("quiet") {
		bar = progress.New(cmd.Root().ErrWriter, progress.Options{Label: "writes", Interactive: progress.IsTerminal(os.Stderr)})
		report = bar.Update
	}
	sum, runErr := simulate.Run(ctx, cfg, writer, sink, manifest, report)
	if bar != nil {
		bar.Finish()
	}
	err = errors.Join(runErr, manifest.Flush(), f.Close())
	printSummary(cmd.Root().Writer, cfg, sum, cmd.String("manifest"))
	return err
}

func printSummary(w io.Writer, cfg simulate.Config, s simulate.Summary, manifest string) {
	rate := 0.0
	if s.Elapsed > 0 {
		rate = float64(s.Writes) / s.Elapsed.Seconds()
	}
	fmt.Fprintf(w, "writes       %d (%d creates, %d updates, %d deletes) in %s, %.1f/s\n",
		s.Writes, s.Creates, s.Updates, s.Deletes, s.Elapsed.Round(time.Millisecond), rate)
	if s.Patches > 0 {
		fmt.Fprintf(w, "patches      %d of the updates\n", s.Patches)
	}
	if s.Bundles > 0 {
		fmt.Fprintf(w, "bundles      %d %s Bundles of up to %d entries\n", s.Bundles, cfg.BundleType, cfg.BundleSize)
	}
	if s.ImportJobs > 0 {
		fmt.Fprintf(w, "imported     %d resources in %d jobs\n", s.Imported, s.ImportJobs)
	}
	if cfg.InjectEvents {
		fmt.Fprintf(w, "records      %d put (%d duplicates, %d hostile, %d import events); %d hints dropped\n",
			s.Records, s.Duplicates, s.Hostile, s.ImportJobs, s.HintsDropped)
	}
	fmt.Fprintf(w, "datastores   %s\n", strings.Join(cfg.Datastores, ","))
	fmt.Fprintf(w, "seed         %d\n", s.Seed)
	fmt.Fprintf(w, "manifest     %s\n", manifest)
}

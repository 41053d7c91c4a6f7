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
			"(unless --inject-events=false, for an endpoint real CloudTrail watches). Every write is a\n" +
			"line of --manifest, which `producer verify` checks against the emitted events.\n" +
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
				Usage: "write the manifest (one JSON line per FHIR write) to `FILE`"},

			// Traffic
			&cli.StringSliceFlag{Name: "types", Value: d.Types, Category: "Traffic",
				Usage: "resource types to write; supported: " + strings.Join(simulate.SupportedTypes(), ", ")},
			&cli.IntFlag{Name: "writes", Value: d.Writes, Category: "Traffic",
				Usage: "number of FHIR writes (ignored with --duration)"},
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

			// Events
			&cli.BoolFlag{Name: "inject-events", Value: true, Category: "Events",
				Usage: "put a CloudTrail record into --stream for each write (default: true; --inject-events=false when real CloudTrail watches the endpoint)"},
			&cli.FloatFlag{Name: "duplicate-fraction", Category: "Events",
				Usage: "fraction of the CloudTrail records put twice"},
			&cli.FloatFlag{Name: "hostile-fraction", Category: "Events",
				Usage: "after this fraction of the writes, also put a hostile record (garbage, truncated, bad datastore or type)"},
			&cli.StringFlag{Name: "partition-key", Value: simulate.PartitionByEventID, Category: "Events",
				Usage:     "event-id (as a rule without PartitionKeyPath) or datastore",
				Validator: oneOf(simulate.PartitionByEventID, simulate.PartitionByDatastore)},
			&cli.StringFlag{Name: "region", Category: "Events",
				Usage: "region of the CloudTrail records and of SigV4 signing; default the AWS configuration's, else us-east-1"},
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

func runSimulate(ctx context.Context, cmd *cli.Command) error {
	cfg, err := simulateConfig(cmd)
	if err != nil {
		return err
	}
	if cfg.InjectEvents && cmd.String("stream") == "" {
		return errors.New("--stream (or CDC_STREAM) is required to inject events; --inject-events=false writes FHIR only")
	}
	auth := cmd.String("fhir-auth")
	var awsCfg aws.Config
	if cfg.InjectEvents || auth == "sigv4" {
		if awsCfg, err = loadAWS(ctx, cmd.String("region")); err != nil {
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
	writer, err := simulate.NewHTTPWriter(simulate.HTTPWriterOptions{Endpoint: cmd.String("fhir-endpoint"), Client: client})
	if err != nil {
		return err
	}
	var sink simulate.RecordSink
	if cfg.InjectEvents {
		if sink, err = simulate.NewKinesisSink(kinesis.NewFromConfig(awsCfg), cmd.String("stream"), simulate.SinkOptions{}); err != nil {
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
	if cfg.InjectEvents {
		fmt.Fprintf(w, "records      %d put (%d duplicates, %d hostile)\n", s.Records, s.Duplicates, s.Hostile)
	}
	fmt.Fprintf(w, "datastores   %s\n", strings.Join(cfg.Datastores, ","))
	fmt.Fprintf(w, "seed         %d\n", s.Seed)
	fmt.Fprintf(w, "manifest     %s\n", manifest)
}

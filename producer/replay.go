package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/urfave/cli/v3"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/progress"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/replay"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/simulate"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "backfill the stream from CloudTrail log files",
		ArgsUsage: "PATH...",
		Description: "Reads CloudTrail log files as CloudTrail delivers them to S3 (gzipped or plain JSON\n" +
			"{\"Records\": [...]}). Each PATH is a file, a directory (searched recursively for *.json,\n" +
			"*.json.gz and *.gz; digest files are skipped) or a quoted glob pattern. Keeps the successful\n" +
			"HealthLake CreateResource, UpdateResource and DeleteResource calls with --from <= eventTime\n" +
			"< --to, wraps each in the EventBridge envelope the rule delivers and puts them into --stream\n" +
			"at no more than --rate records per second. Failed calls are counted and skipped.\n" +
			"Download the logs first, e.g. `aws s3 sync s3://BUCKET/AWSLogs/ACCOUNT/CloudTrail/REGION/2026/11/20 logs/`.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "stream", Sources: cli.EnvVars("CDC_STREAM"),
				Usage: "Kinesis stream (name or ARN) to put the records into; not needed with --dry-run"},
			&cli.StringFlag{Name: "from", Usage: "replay calls at or after this `RFC3339` time (default: no lower bound)"},
			&cli.StringFlag{Name: "to", Usage: "replay calls before this `RFC3339` time (default: no upper bound)"},
			&cli.FloatFlag{Name: "rate", Value: replay.DefaultRate, Usage: "records per second, at most"},
			&cli.BoolFlag{Name: "dry-run", Usage: "read and count, put nothing"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress output"},
		},
		Action: runReplay,
	}
}

func parseTime(cmd *cli.Command, name string) (time.Time, error) {
	s := cmd.String(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q is not an RFC 3339 time such as 2026-11-20T09:00:00Z", name, s)
	}
	return t, nil
}

func runReplay(ctx context.Context, cmd *cli.Command) error {
	if cmd.Args().Len() == 0 {
		return errors.New("no PATH given: name the CloudTrail log files or directories to replay")
	}
	from, err := parseTime(cmd, "from")
	if err != nil {
		return err
	}
	to, err := parseTime(cmd, "to")
	if err != nil {
		return err
	}
	files, err := replay.Files(cmd.Args().Slice())
	if err != nil {
		return err
	}
	opts := replay.Options{From: from, To: to, Rate: cmd.Float("rate"), DryRun: cmd.Bool("dry-run")}
	var sink replay.RecordSink
	if !opts.DryRun {
		if cmd.String("stream") == "" {
			return errors.New("--stream (or CDC_STREAM) is required unless --dry-run")
		}
		awsCfg, err := loadAWS(ctx, "")
		if err != nil {
			return err
		}
		if sink, err = simulate.NewKinesisSink(kinesis.NewFromConfig(awsCfg), cmd.String("stream"), simulate.SinkOptions{}); err != nil {
			return err
		}
	}
	var report func(done, total int)
	var bar *progress.Reporter
	if !cmd.Bool("quiet") {
		bar = progress.New(cmd.Root().ErrWriter, progress.Options{Label: "files", Interactive: progress.IsTerminal(os.Stderr)})
		report = bar.Update
	}
	st, err := replay.Run(ctx, files, sink, opts, report)
	if bar != nil {
		bar.Finish()
	}
	w := cmd.Root().Writer
	dry := ""
	if opts.DryRun {
		dry = " (dry run: nothing written)"
	}
	fmt.Fprintf(w, "files        %d log files (%d other JSON files skipped)\n", st.Files, st.NotLogFiles)
	fmt.Fprintf(w, "records      %d read\n", st.Records)
	fmt.Fprintf(w, "put          %d HealthLake mutations%s\n", st.Put, dry)
	fmt.Fprintf(w, "skipped      %d failed calls, %d outside the time range, %d malformed, %d other events\n",
		st.Failed, st.OutOfRange, st.Malformed, st.Ignored)
	return err
}

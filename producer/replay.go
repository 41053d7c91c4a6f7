package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/urfave/cli/v3"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/kinesisput"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/progress"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/replay"
)

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "backfill the stream from CloudTrail log files (and files of EventBridge events)",
		ArgsUsage: "PATH...",
		Description: "Reads CloudTrail log files as CloudTrail delivers them to S3 (gzipped or plain JSON\n" +
			"{\"Records\": [...]}). Each PATH is a file, a directory (searched recursively for *.json,\n" +
			"*.jsonl and *.gz; digest files are skipped) or a quoted glob pattern. Each record is wrapped\n" +
			"in the EventBridge envelope the rule delivers and kept when the consumer would act on it\n" +
			"(its own decision): successful CreateResource, UpdateResource, PatchResource and\n" +
			"DeleteResource calls, Bundles (ProcessBundle, or a write of type Bundle or without a\n" +
			"type) and unknown write-like calls, with --from <= eventTime < --to. Kept records go into --stream at no more than --rate per\n" +
			"second; reads, management and failed calls and records the consumer would reject are\n" +
			"counted and skipped.\n" +
			"A file of EventBridge events (JSON lines, e.g. from an archive or the rule's dead-letter\n" +
			"queue) is replayed the same way, each event put unchanged: the only way to replay\n" +
			"\"Import Job Completed\" events, which never appear in CloudTrail's log files.\n" +
			"Download the logs first, e.g. `aws s3 sync s3://BUCKET/AWSLogs/ACCOUNT/CloudTrail/REGION/2026/11/20 logs/`.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "stream", Sources: cli.EnvVars("CDC_STREAM"),
				Usage: "Kinesis stream (name or ARN) to put the records into; not needed with --dry-run"},
			&cli.StringFlag{Name: "from", Usage: "replay calls at or after this `RFC3339` time (default: no lower bound)"},
			&cli.StringFlag{Name: "to", Usage: "replay calls before this `RFC3339` time (default: no upper bound)"},
			&cli.FloatFlag{Name: "rate", Value: replay.DefaultRate, Usage: "records per second, at most"},
			&cli.StringSliceFlag{Name: "datastores", Sources: cli.EnvVars("CDC_DATASTORES"),
				Usage: "the consumer's datastore allow-list: records of other datastores are not put (default: any)"},
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
	opts := replay.Options{From: from, To: to, Rate: cmd.Float("rate"), DryRun: cmd.Bool("dry-run"), Datastores: cmd.StringSlice("datastores")}
	var sink replay.RecordSink
	if !opts.DryRun {
		if cmd.String("stream") == "" {
			return errors.New("--stream (or CDC_STREAM) is required unless --dry-run")
		}
		awsCfg, err := loadAWS(ctx, "", "")
		if err != nil {
			return err
		}
		if sink, err = kinesisput.New(kinesis.NewFromConfig(awsCfg), cmd.String("stream"), kinesisput.Options{}); err != nil {
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
	fmt.Fprintf(w, "files        %d log or event files (%d other JSON files skipped)\n", st.Files, st.NotLogFiles)
	fmt.Fprintf(w, "records      %d read\n", st.Records)
	fmt.Fprintf(w, "put          %d HealthLake mutations%s%s\n", st.Put, byName(st.PutByName), dry)
	fmt.Fprintf(w, "skipped      %d failed calls, %d outside the time range, %d malformed, %d other events\n",
		st.Failed, st.OutOfRange, st.Malformed, st.Ignored)
	return err
}

// byName lists counts by event name, most first: " (UpdateResource 10, ProcessBundle 2)".
func byName(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	names := slices.SortedFunc(maps.Keys(m), func(a, b string) int { return cmp.Or(m[b]-m[a], strings.Compare(a, b)) })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, m[n])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/timeline"
)

// parkedCommand lists and retries parked ranges: searches that failed for a reason retries
// cannot fix, reported as "HealthLake CDC Range Failed" and kept in Redis. It needs only
// Redis, never AWS.
func parkedCommand() *cli.Command {
	redisFlags := []cli.Flag{
		&cli.StringFlag{Name: "redis-url", Sources: cli.EnvVars("CDC_REDIS_URL"), Value: "redis://127.0.0.1:6379/0",
			Usage: "the consumers' Redis"},
		&cli.StringFlag{Name: "dedup-prefix", Sources: cli.EnvVars("CDC_DEDUP_PREFIX"), Value: "cdc:dedup:",
			Usage: "the consumers' key prefix"},
	}
	return &cli.Command{
		Name:  "parked",
		Usage: "list or retry parked ranges (searches that keep failing; their records were acked)",
		Commands: []*cli.Command{
			{
				Name:  "list",
				Usage: "print every parked range, oldest first",
				Flags: append(redisFlags, &cli.BoolFlag{Name: "json", Usage: "one JSON object per line"}),
				Action: runFailure(func(ctx context.Context, cmd *cli.Command) error {
					return withTimelines(ctx, cmd, func(ctx context.Context, s *timeline.Store) error {
						ps, err := s.ListParked(ctx)
						if err != nil {
							return err
						}
						return printParked(cmd.Root().Writer, ps, cmd.Bool("json"))
					})
				}),
			},
			{
				Name:  "retry",
				Usage: "make every parked range due for a retry now (a running consumer retries it within seconds)",
				Flags: redisFlags,
				Action: runFailure(func(ctx context.Context, cmd *cli.Command) error {
					return withTimelines(ctx, cmd, func(ctx context.Context, s *timeline.Store) error {
						n, err := s.RetryParkedNow(ctx)
						if err != nil {
							return err
						}
						fmt.Fprintf(cmd.Root().Writer, "%d parked ranges due for a retry\n", n)
						return nil
					})
				}),
			},
		},
	}
}

func withTimelines(ctx context.Context, cmd *cli.Command, do func(context.Context, *timeline.Store) error) error {
	rdb, err := newRedis(cmd.String("redis-url"))
	if err != nil {
		return err
	}
	defer rdb.Close()
	s, err := timeline.New(rdb, timeline.Options{Prefix: cmd.String("dedup-prefix") + "tl:", Owner: "cli"})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return do(ctx, s)
}

func printParked(w io.Writer, ps []timeline.Parked, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, p := range ps {
			if err := enc.Encode(p); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATASTORE\tTYPE\tFROM\tTO\tREASON\tATTEMPTS\tSINCE\tLAST TRY")
	for _, p := range ps {
		last := "due"
		if !p.LastTry.IsZero() {
			last = p.LastTry.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.Key.DatastoreID, p.Key.ResourceType,
			p.Range.From.UTC().Format(time.RFC3339Nano), p.Range.To.UTC().Format(time.RFC3339Nano),
			p.Reason, p.Attempts, p.Since.UTC().Format(time.RFC3339), last)
	}
	if len(ps) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	return tw.Flush()
}

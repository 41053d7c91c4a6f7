package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/urfave/cli/v3"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
)

func createStreamCommand() *cli.Command {
	return &cli.Command{
		Name:  "create-stream",
		Usage: "create the Kinesis stream (if missing) and wait until it is active",
		Description: "For local runs and demos; in AWS the stream belongs to the deployment's stack.\n" +
			"An existing stream is left as it is.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "stream", Sources: cli.EnvVars("CDC_STREAM"), Required: true, Usage: "(required) stream name"},
			&cli.IntFlag{Name: "shards", Value: 4, Usage: "shard count of a new stream"},
			&cli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "how long to wait for ACTIVE"},
		},
		Action: runCreateStream,
	}
}

func runCreateStream(ctx context.Context, cmd *cli.Command) error {
	awsCfg, err := loadAWS(ctx, "", "")
	if err != nil {
		return err
	}
	kc := kinesis.NewFromConfig(awsCfg)
	name := cmd.String("stream")
	_, err = kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(cmd.Int("shards")))})
	var exists *types.ResourceInUseException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.Duration("timeout"))
	defer cancel()
	for {
		out, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			fmt.Fprintf(cmd.Root().Writer, "stream %s is active with %d open shards\n", name, aws.ToInt32(out.StreamDescriptionSummary.OpenShardCount))
			return nil
		}
		if serr := clock.Sleep(ctx, clock.Real{}, 200*time.Millisecond); serr != nil {
			return fmt.Errorf("stream %s not active: %w", name, errors.Join(err, serr))
		}
	}
}

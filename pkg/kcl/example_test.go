package kcl_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/kcl"
)

// A consumer is built from clients of one aws.Config, so AWS_ENDPOINT_URL_KINESIS and
// AWS_ENDPOINT_URL_DYNAMODB point both at a local stack. Run blocks until ctx ends.
func Example() {
	ctx := context.Background()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	handler := kcl.HandlerFunc(func(ctx context.Context, r kcl.Record, done func()) error {
		// Hand r to the pipeline; call done once it is emitted, deduped, skipped or rejected.
		done()
		return nil
	})
	c, err := kcl.New(kcl.Config{
		Stream:      "healthlake-cdc",
		Application: "healthlake-cdc-consumer",
		Logger:      slog.Default(),
	}, kinesis.NewFromConfig(awsCfg), dynamodb.NewFromConfig(awsCfg), handler)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/urfave/cli/v3"
)

// Defaults that point at the local stack (deploy/local/stack.sh).
const (
	localFHIREndpoint = "http://127.0.0.1:18090/datastore/{datastoreId}/r4/"
	localRecorder     = "http://127.0.0.1:14010"
)

func newApp() *cli.Command {
	app := &cli.Command{
		Name:    "producer",
		Version: version,
		Usage:   "drive traffic into healthlake-cdc and check what comes out",
		Description: "simulate writes synthetic FHIR resources and puts the matching CloudTrail records into\n" +
			"the Kinesis stream; replay backfills the stream from CloudTrail log files; verify checks\n" +
			"a simulate run's manifest against the events the consumer emitted.\n\n" +
			"Flags fall back to the environment variables shown with them. AWS settings (region,\n" +
			"credentials, AWS_ENDPOINT_URL_KINESIS) come from the standard AWS SDK configuration;\n" +
			"`eval \"$(deploy/local/stack.sh env)\"` points everything at the local stack.\n\n" +
			"Exit status: 0 on success, 1 when verify finds missing writes, 2 on any error.",
		Commands:        []*cli.Command{simulateCommand(), replayCommand(), verifyCommand(), createStreamCommand()},
		HideHelpCommand: true,
	}
	// A flag that does not parse, an unknown flag, a value a validator refuses: the error
	// alone (it names the flag) and exit status 2, as the consumer does — not the help after it.
	usage := func(_ context.Context, _ *cli.Command, err error, _ bool) error { return err }
	app.OnUsageError = usage
	for _, c := range app.Commands {
		c.OnUsageError = usage
	}
	return app
}

// loadAWS loads the standard AWS configuration; region, when set, overrides the chain's. No
// region at all is an error, as in the consumer: a region guessed here would sign for, and
// write CloudTrail records naming, a region the user never chose. regionFlag names the
// command's flag that can set one ("" if none).
func loadAWS(ctx context.Context, region, regionFlag string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		hint := ""
		if regionFlag != "" {
			hint = " or " + regionFlag
		}
		return aws.Config{}, fmt.Errorf("no AWS region: set AWS_REGION%s (or a region in the AWS_PROFILE's config file)", hint)
	}
	return cfg, nil
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

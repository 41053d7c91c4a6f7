// Command consumer is the healthlake-cdc consumer: it reads HealthLake's CloudTrail hints
// from a Kinesis stream (as a KCL worker), searches the FHIR server for what changed, dedups
// in Redis and emits one event per changed resource version to an EventBridge bus.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"
)

// version is stamped at build time (-ldflags "-X main.version=…", see deploy/Dockerfile); a
// plain go build says "dev". `consumer --version` prints it.
var version = "dev"

func main() {
	cmd := &cli.Command{
		Name:    "consumer",
		Version: version,
		Usage:   "turn HealthLake CloudTrail hints into FHIR change events on EventBridge",
		Description: "Every flag falls back to the environment variable shown with it. AWS settings\n" +
			"(region, credentials, AWS_ENDPOINT_URL_KINESIS / _DYNAMODB / _EVENTBRIDGE) come from the\n" +
			"standard AWS SDK configuration. SIGTERM drains in-flight windows, checkpoints and exits 0.",
		Flags:    local(flags()),
		Action:   run,
		Commands: []*cli.Command{parkedCommand()},
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := cmd.Run(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

// Command consumer is the healthlake-cdc consumer: it reads HealthLake's CloudTrail hints
// from a Kinesis stream (as a KCL worker), searches the FHIR server for what changed, dedups
// in Redis and emits one event per changed resource version to an EventBridge bus.
package main

import (
	"context"
	"errors"
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
			"standard AWS SDK configuration; flags marked (required) have no default.\n\n" +
			"Exit status: 0 after a clean stop (SIGTERM drains in-flight windows and checkpoints),\n" +
			"2 for a usage error — a bad or missing setting or no AWS region, found before any\n" +
			"connection is made — and 1 when a run fails.",
		Flags:    local(flags()),
		Action:   runFailure(run),
		Commands: []*cli.Command{parkedCommand()},
		// A flag that does not parse, an unknown flag, a value a flag's validator refuses:
		// the error alone (it names the flag), not the whole help after it.
		OnUsageError: func(_ context.Context, _ *cli.Command, err error, _ bool) error { return err },
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := cmd.Run(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(exitCode(err))
	}
}

// Exit status: 0 after a clean stop, 2 for a usage error (no run started: a bad or missing
// setting), 1 when a run failed.
func exitCode(err error) int {
	var u usageError
	var f runError
	switch {
	case errors.As(err, &u):
		return 2
	case errors.As(err, &f):
		return 1
	default:
		// Not from an action: urfave/cli refused the command line or a CDC_* value.
		return 2
	}
}

// usageError is a setting that cannot work, found before anything started.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// runError is a failure of an action that started.
type runError struct{ error }

func (e runError) Unwrap() error { return e.error }

// runFailure marks the errors of action as run failures, unless they are usage errors.
func runFailure(action cli.ActionFunc) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		err := action(ctx, cmd)
		var u usageError
		if err == nil || errors.As(err, &u) {
			return err
		}
		return runError{err}
	}
}

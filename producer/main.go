// Command producer drives traffic for local runs, demos, load tests and replays: it writes
// synthetic FHIR resources and the matching CloudTrail records (simulate), backfills the
// stream from CloudTrail log files (replay), and checks that the consumer announced every
// write (verify).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped at build time (-ldflags "-X main.version=…", see deploy/Dockerfile); a
// plain go build says "dev". `producer --version` prints it.
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := newApp().Run(ctx, os.Args)
	switch {
	case err == nil:
	case errors.Is(err, errMissing):
		os.Exit(1) // the report says what is missing
	default:
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(2)
	}
}

// Command recorder is the local stand-in for EventBridge: it answers AWSEvents.PutEvents (AWS
// JSON 1.1) like AWS does for the calls the emitter makes, appends each accepted entry as a JSON
// line to a file, and can fail entries or throttle calls on purpose. See recorder.go for the
// behaviour and admin.go for the /_recorder/ admin API.
//
// Flags override the environment:
//
//	--addr           127.0.0.1:$CDC_LOCAL_EVENTBRIDGE_PORT (default port 14010); loopback only
//	--out            $CDC_RECORDER_OUT, default .local/eventbridge/events.jsonl
//	--seed           $CDC_RECORDER_SEED, default 1
//	--fail-rate      $CDC_RECORDER_FAIL_RATE, default 0
//	--fail-code      $CDC_RECORDER_FAIL_CODE, default InternalFailure
//	--throttle-rate  $CDC_RECORDER_THROTTLE_RATE, default 0
//	--log-level      $CDC_RECORDER_LOG_LEVEL, default info
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "eventbridge recorder: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("recorder", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := envOr("CDC_LOCAL_EVENTBRIDGE_PORT", "14010")
	addr := fs.String("addr", net.JoinHostPort("127.0.0.1", port), "listen address; must be a loopback address")
	out := fs.String("out", envOr("CDC_RECORDER_OUT", ".local/eventbridge/events.jsonl"), "JSON Lines file accepted entries are appended to")
	seed := fs.Uint64("seed", 1, "seed of the failure-injection randomness (env CDC_RECORDER_SEED)")
	failRate := fs.Float64("fail-rate", 0, "fraction of entries to fail (env CDC_RECORDER_FAIL_RATE)")
	failCode := fs.String("fail-code", envOr("CDC_RECORDER_FAIL_CODE", defaultFailCode), "ErrorCode of injected entry failures")
	throttleRate := fs.Float64("throttle-rate", 0, "fraction of calls to throttle (env CDC_RECORDER_THROTTLE_RATE)")
	logLevel := fs.String("log-level", envOr("CDC_RECORDER_LOG_LEVEL", "info"), "debug, info, warn or error")
	// Numeric flags take their env default here so that a bad value is reported, not ignored.
	for name, env := range map[string]string{"seed": "CDC_RECORDER_SEED", "fail-rate": "CDC_RECORDER_FAIL_RATE", "throttle-rate": "CDC_RECORDER_THROTTLE_RATE"} {
		if v := os.Getenv(env); v != "" {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("%s=%q: %w", env, v, err)
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	if err := checkLoopback(*addr); err != nil {
		return err
	}
	rec, err := New(Options{
		Out:      *out,
		Seed:     *seed,
		Failures: Failures{FailRate: *failRate, FailCode: *failCode, ThrottleRate: *throttleRate},
		Logger:   log,
	})
	if err != nil {
		return err
	}
	defer rec.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           rec.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "eventbridge recorder listening on %s, writing %s\n", ln.Addr(), rec.Out())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return rec.Close()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// checkLoopback keeps the recorder off the network: the events it records carry health data.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--addr %q: host must be a loopback IP such as 127.0.0.1", addr)
	}
	return nil
}

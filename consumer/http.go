package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
)

// health answers /healthz and /readyz.
type health struct {
	worker interface{ Running() bool }
	redis  redis.UniversalClient
	// bus says whether EventBridge refuses calls (credentials, access, a missing bus,
	// throttling, timeouts); nil: not checked.
	bus interface {
		Unavailable() (since time.Time, code string, ok bool)
	}
	version string // the build's, as --version prints it
}

// newHandler serves /healthz (the process answers: 200 and {"status":"ok","version":…}; it
// was the text "ok", and probes only look at the status), /readyz (the KCL worker runs, Redis
// answers a PING within 2 s, and EventBridge is not refusing calls) and /metrics (the meter
// provider's Prometheus handler).
func newHandler(h health, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	healthz, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}{"ok", h.version})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(append(healthz, '\n'))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !h.worker.Running() {
			http.Error(w, "kcl worker not running", http.StatusServiceUnavailable)
			return
		}
		if err := h.redis.Ping(ctx).Err(); err != nil {
			http.Error(w, "redis unreachable", http.StatusServiceUnavailable)
			return
		}
		if h.bus != nil {
			if since, code, down := h.bus.Unavailable(); down {
				// Nothing is acked meanwhile: the records wait in the stream.
				http.Error(w, fmt.Sprintf("eventbridge unavailable since %s (%s)", since.UTC().Format(time.RFC3339), code), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", metrics)
	return mux
}

func newHTTPServer(addr string, h health, metrics http.Handler) *http.Server {
	return &http.Server{Addr: addr, Handler: newHandler(h, metrics), ReadHeaderTimeout: 5 * time.Second}
}

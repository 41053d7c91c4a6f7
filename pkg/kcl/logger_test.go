package kcl

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	chk "github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	"github.com/vmware/vmware-go-kcl-v2/logger"
)

func jsonLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLibraryLogger(t *testing.T) {
	var buf bytes.Buffer
	l := newLibraryLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))

	l.Debugf("not shown %d", 1)
	l.Infof("Found new shard with id %s", "shardId-000000000001")
	l.Errorf("message", "Throughput Exceeded Error: reached max retry count", "shardId", "shardId-1", "retryCount", 6, "error", errors.New("boom"))
	l.Warnf("Error in rebalance: %+v", chk.ErrShardNotAssigned) // demoted to debug: not shown
	l.Errorf("Cannot get lease: %+v", errors.New(chk.ErrShardClaimed))
	l.WithFields(logger.Fields{"b": 2, "a": 1}).Warnf("with fields")

	lines := jsonLines(t, &buf)
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), buf.String())
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "Found new shard with id shardId-000000000001", "component": "kcl"},
		{"level": "ERROR", "msg": "Throughput Exceeded Error: reached max retry count", "shardId": "shardId-1", "retryCount": float64(6), "error": "boom"},
		{"level": "INFO", "msg": "Cannot get lease: " + chk.ErrShardClaimed},
		{"level": "WARN", "msg": "with fields", "a": float64(1), "b": float64(2)},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (line %v)", i, k, lines[i][k], v, lines[i])
			}
		}
	}
}

func TestLibraryLoggerPanics(t *testing.T) {
	var buf bytes.Buffer
	l := newLibraryLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	for _, f := range []func(string, ...any){l.Fatalf, l.Panicf} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "bad 7") {
					t.Errorf("recovered %v", r)
				}
			}()
			f("bad %d", 7)
		}()
	}
	if n := len(jsonLines(t, &buf)); n != 2 {
		t.Errorf("%d lines logged, want 2", n)
	}
}

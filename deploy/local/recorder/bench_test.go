package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkPutEvents is the recorder's cost per PutEvents call of 10 entries of 1–2 KB,
// handler only (no network, no client): decode, validate, write the lines, answer.
func BenchmarkPutEvents(b *testing.B) {
	rec, err := New(Options{Out: filepath.Join(b.TempDir(), "events.jsonl"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rec.Close() })
	var req putEventsRequest
	for i := range 10 {
		pad := strings.Repeat("x", 1000+i*100)
		ts := json.Number("1772600767")
		req.Entries = append(req.Entries, putEventsEntry{
			Time: &ts, Source: "healthlake.cdc.bench", DetailType: "FHIR Resource Updated",
			Resources: []string{"arn:aws:healthlake:us-east-1:123456789012:datastore/fhir/0123456789abcdef0123456789abcdef"},
			Detail:    fmt.Sprintf(`{"m":"%d","resource":{"resourceType":"Patient","pad":"%s"}}`, i, pad),
		})
	}
	body, _ := json.Marshal(req)
	h := rec.Handler()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", putEventsTarget)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10), "ns/entry")
}

// TestAppendLineMatchesEncoder: the hand-written line is byte for byte what json.Encoder
// wrote before, for details and strings with everything the encoder escapes.
func TestAppendLineMatchesEncoder(t *testing.T) {
	for _, detail := range []string{
		`{}`,
		`{ "a" : [1, 2, {"b": null}] ,"c":"<x> & y"}`,
		"{\"line\":\"\u2028\u2029\",\"uni\":\"é€𝄞\",\"esc\":\"\\\"\\\\\\n\\u0041\"}",
		"{\n\t\"nested\": {\"deep\": [true, false, 1.5e3]}\n}",
	} {
		for _, trace := range []string{"", "Root=1-<&>"} {
			compact, err := validateEntry(putEventsEntry{Source: "s", DetailType: "d", Detail: detail})
			if err != nil {
				t.Fatalf("%s: %v", detail, err)
			}
			rec := record{
				Received: time.Date(2026, 3, 4, 5, 6, 7, 123_000_000, time.UTC), EventID: "id", EventBusName: "bus<&>",
				Source: "healthlake.cdc\u2028", DetailType: "FHIR \"Resource\" Updated", Time: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
				Resources: []string{"arn:a", "arn:<b>"}, Detail: compact, TraceHeader: trace,
			}
			var want, got bytes.Buffer
			if err := json.NewEncoder(&want).Encode(rec); err != nil {
				t.Fatal(err)
			}
			appendLine(&got, rec)
			if got.String() != want.String() {
				t.Errorf("line differs from json.Encoder's:\n got %s\nwant %s", got.String(), want.String())
			}
		}
	}
	rec := record{Resources: []string{}, Detail: []byte(`{}`)}
	var want, got bytes.Buffer
	_ = json.NewEncoder(&want).Encode(rec)
	appendLine(&got, rec)
	if got.String() != want.String() {
		t.Errorf("empty record: got %s want %s", got.String(), want.String())
	}
}

// Package stack tells tests where the local stack's servers listen (deploy/local/stack.sh
// starts them) and stops a test cleanly when one is missing. It is imported by tests only.
package stack

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/event"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/recorded"
)

// The servers of the local stack.
const (
	Kinesis     = "KINESIS"
	DynamoDB    = "DYNAMODB"
	Redis       = "REDIS"
	FHIR        = "FHIR"
	EventBridge = "EVENTBRIDGE"
)

// defaultPorts must stay in step with port_of in deploy/local/stack.sh.
var defaultPorts = map[string]string{
	Kinesis:     "14567",
	DynamoDB:    "14568",
	Redis:       "16379",
	FHIR:        "18090",
	EventBridge: "14010",
}

// Port is the server's port: CDC_LOCAL_<NAME>_PORT, else the stack's default.
func Port(name string) string {
	if p := os.Getenv("CDC_LOCAL_" + name + "_PORT"); p != "" {
		return p
	}
	return defaultPorts[name]
}

// Addr is host:port of a running local server. When nothing listens there the test fails
// with a hint to start the stack — or, under -short, is skipped.
func Addr(t testing.TB, name string) string {
	t.Helper()
	a := net.JoinHostPort("127.0.0.1", Port(name))
	c, err := net.DialTimeout("tcp", a, 2*time.Second)
	if err != nil {
		if testing.Short() {
			t.Skipf("local %s server not reachable at %s (-short): %v", name, a, err)
		}
		t.Fatalf("local %s server is not reachable at %s (start the local stack with `make up`): %v", name, a, err)
	}
	c.Close()
	return a
}

// URL is the http:// base URL of a running local server (see Addr).
func URL(t testing.TB, name string) string {
	t.Helper()
	return "http://" + Addr(t, name)
}

// RecorderLines returns the lines the running EventBridge recorder wrote for entries whose
// Source is source, as raw JSON, in the order it received them. Tests give each run its own
// Source, so they see only their own events.
func RecorderLines(t testing.TB, source string) [][]byte {
	t.Helper()
	// A client of its own that keeps no connection: goleak in the caller's package would see
	// an idle one of the default client.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := hc.Get(URL(t, EventBridge) + "/_recorder/stats")
	if err != nil {
		t.Fatalf("recorder stats: %v", err)
	}
	defer res.Body.Close()
	var st struct {
		Out string `json:"out"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || st.Out == "" {
		t.Fatalf("recorder stats: no output file (%v)", err)
	}
	f, err := os.Open(st.Out)
	if err != nil {
		t.Fatalf("recorder output: %v", err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(source)) {
			continue // cheap pre-filter; the Source is checked exactly below
		}
		var line struct {
			Source string `json:"source"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Source == source {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("recorder output: %v", err)
	}
	return out
}

// Recorded returns the events the running EventBridge recorder wrote for source, decoded, in
// the order it received them (see RecorderLines).
func Recorded(t testing.TB, source string) []recorded.Line {
	t.Helper()
	raw := RecorderLines(t, source)
	out := make([]recorded.Line, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("recorder line: %v", err)
		}
	}
	return out
}

// Detail decodes a recorded event's detail as T: event.ChangeDetail for the FHIR Resource
// events, event.Rejected, event.RangeFailed, event.Watermark or event.DeletesUnresolved for the
// consumer's reports (the DetailType says which).
func Detail[T any](t testing.TB, l recorded.Line) T {
	t.Helper()
	var d T
	if err := json.Unmarshal(l.Detail, &d); err != nil {
		t.Fatalf("recorded %q detail: %v", l.DetailType, err)
	}
	return d
}

// Changes returns the details of the change events (FHIR Resource Created, Updated, Deleted)
// the recorder wrote for source, in the order it received them.
func Changes(t testing.TB, source string) []event.ChangeDetail {
	t.Helper()
	var out []event.ChangeDetail
	for _, l := range Recorded(t, source) {
		switch l.DetailType {
		case event.DetailTypeCreated, event.DetailTypeUpdated, event.DetailTypeDeleted:
			out = append(out, Detail[event.ChangeDetail](t, l))
		}
	}
	return out
}

// RandomHex is n random bytes in hex: names of streams, sources, prefixes and datastore ids
// (RandomHex(16) is a valid datastore id) that no other test run uses.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

package stacktest

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Default ports of the local stack; keep in step with deploy/local/stack.sh.
var defaultPorts = map[string]string{
	"KINESIS":     "14567",
	"DYNAMODB":    "14568",
	"REDIS":       "16379",
	"FHIR":        "18090",
	"EVENTBRIDGE": "14010",
}

// addr returns host:port of a local stack server, honouring CDC_LOCAL_<NAME>_PORT, and fails
// the test with a clear message when nothing listens there.
func addr(t testing.TB, name string) string {
	t.Helper()
	port := os.Getenv("CDC_LOCAL_" + name + "_PORT")
	if port == "" {
		port = defaultPorts[name]
	}
	a := net.JoinHostPort("127.0.0.1", port)
	c, err := net.DialTimeout("tcp", a, 2*time.Second)
	if err != nil {
		if testing.Short() {
			t.Skipf("local %s server not reachable at %s (-short): %v", name, a, err)
		}
		t.Fatalf("local %s server is not reachable at %s (start the stack with `make up`): %v", name, a, err)
	}
	c.Close()
	return a
}

// baseURL is the http:// URL of a local stack server.
func baseURL(t testing.TB, name string) string {
	return "http://" + addr(t, name)
}

// awsConfig is the aws.Config a program would build, with static credentials so nothing
// reaches a real credential provider; callers set BaseEndpoint per client.
func awsConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")),
	)
	if err != nil {
		t.Fatalf("load aws config: %v", err)
	}
	return cfg
}

// testContext is a context that ends with the test or after d, whichever comes first.
func testContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

package bus

import (
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// HTTPClient is the SDK's default HTTP client with an idle connection pool as large as
// MaxInFlight. The SDK keeps only 10 idle connections per host by default
// (awshttp.DefaultHTTPTransportMaxIdleConnsPerHost): with more calls in flight than that,
// every round of calls closes the surplus connections and dials (and, against AWS, TLS
// handshakes) new ones. Give it to the EventBridge client: o.HTTPClient = bus.HTTPClient(opts).
func HTTPClient(opts Options) *awshttp.BuildableClient {
	n := opts.withDefaults().MaxInFlight
	return awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, n)
		t.MaxIdleConns = max(t.MaxIdleConns, n)
	})
}

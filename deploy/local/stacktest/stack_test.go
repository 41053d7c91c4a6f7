package stacktest

import (
	"context"
	"testing"
	"time"
)

// testContext is a context that ends with the test or after d, whichever comes first.
func testContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

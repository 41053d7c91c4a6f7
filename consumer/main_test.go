package main

import (
	"testing"

	"go.uber.org/goleak"
)

// The consumer's tests start HTTP servers, clients and processes: none may leave a goroutine
// behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

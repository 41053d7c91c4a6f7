package main

import (
	"testing"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

// The consumer's tests start HTTP servers, clients and processes: none may leave a goroutine
// behind.
func TestMain(m *testing.M) { stack.VerifyTestMain(m) }

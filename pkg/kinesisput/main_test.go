package kinesisput

import (
	"testing"

	"github.com/healthlake-cdc/healthlake-cdc/deploy/local/stack"
)

func TestMain(m *testing.M) {
	stack.VerifyTestMain(m)
}

package stack

import (
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

// VerifyTestMain runs a package's tests and then fails them if a goroutine is left behind
// (goleak). The default transport's idle connections — keep-alives of the helpers here — are
// closed first: they are not leaks.
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(closingIdle{m})
}

type closingIdle struct{ m *testing.M }

func (c closingIdle) Run() int {
	code := c.m.Run()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	return code
}

package pipeline_test

import (
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(closingIdle{m})
}

// closingIdle closes the default transport's idle connections (the stack helpers' requests)
// after the tests, before goleak looks: they are not leaks, only keep-alives.
type closingIdle struct{ m *testing.M }

func (c closingIdle) Run() int {
	code := c.m.Run()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	return code
}

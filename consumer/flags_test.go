package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBadFlagIsAUsageError: a setting that cannot work stops the consumer before any AWS or
// Redis client is built, with exit status 2 and a message naming it — no network needed.
func TestBadFlagIsAUsageError(t *testing.T) {
	bin := consumerBinary(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--stream", "s", "--bus", "b", "--window=-1s"}, "window must be positive"},
		{[]string{"--stream", "s", "--bus", "b", "--park-attempts=0"}, "park attempts"},
		{[]string{"--stream", "s", "--bus", "b", "--types", "Foo"}, `--types: "Foo"`},
		{[]string{"--bus", "b"}, "--stream (or CDC_STREAM) is required"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no AWS settings, no endpoints
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit status 2\n%s", tc.args, err, out)
			continue
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: output %q does not say %q", tc.args, out, tc.want)
		}
	}
}

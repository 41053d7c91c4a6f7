package progress

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		done, total int
		elapsed     time.Duration
		want        string
	}{
		{0, 100, 0, "0/100 writes (0%)"},
		{0, 100, time.Second, "0/100 writes (0%)"},
		{25, 100, 5 * time.Second, "25/100 writes (25%), 5.0/s, ETA 15s"},
		{100, 100, 10 * time.Second, "100/100 writes (100%), 10.0/s"},
		{1, 10000, time.Second, "1/10000 writes (0%), 1.0/s, ETA 2h46m39s"},
		{999, 1000, time.Second, "999/1000 writes (99%), 999.0/s, ETA 1s"}, // ETA never rounds to 0s
		{42, 0, 2 * time.Second, "42 writes, 21.0/s"},                      // total unknown
		{7, 0, 0, "7 writes"},
	} {
		if got := Format(tc.done, tc.total, tc.elapsed, "writes"); got != tc.want {
			t.Errorf("Format(%d, %d, %v) = %q, want %q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

func TestPlainLinesEveryInterval(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var out bytes.Buffer
	r := New(&out, Options{Label: "writes", Interval: 5 * time.Second, Now: clock.Now})

	clock.Advance(time.Second)
	r.Update(10, 100) // the first update prints at once
	clock.Advance(2 * time.Second)
	r.Update(30, 100) // 2s after the last line: quiet
	clock.Advance(3 * time.Second)
	r.Update(60, 100) // 5s after: prints
	clock.Advance(4 * time.Second)
	r.Finish() // the last line showed 60/100: nothing new
	r.Finish()
	r.Update(100, 100)

	want := "progress: 10/100 writes (10%), 10.0/s, ETA 9s\n" +
		"progress: 60/100 writes (60%), 10.0/s, ETA 4s\n"
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}

	// Finish prints what the last line did not show.
	out.Reset()
	r = New(&out, Options{Label: "writes", Interval: 5 * time.Second, Now: clock.Now})
	clock.Advance(time.Second)
	r.Update(10, 100)
	clock.Advance(time.Second)
	r.Update(100, 100)
	r.Finish()
	want = "progress: 10/100 writes (10%), 10.0/s, ETA 9s\n" +
		"progress: 100/100 writes (100%), 50.0/s\n"
	if got := out.String(); got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
}

func TestInteractiveRedrawsOneLine(t *testing.T) {
	clock := clocktest.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	var out bytes.Buffer
	r := New(&out, Options{Label: "files", Interactive: true, Interval: time.Hour, Now: clock.Now})

	clock.Advance(time.Second)
	r.Update(1, 4)
	clock.Advance(50 * time.Millisecond)
	r.Update(2, 4) // within RedrawInterval: not drawn (Interval is ignored when interactive)
	clock.Advance(RedrawInterval)
	r.Update(3, 4)
	r.Finish()

	got := out.String()
	if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
		t.Errorf("want exactly one newline, at the end: %q", got)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\r")
	want := []string{"", "1/4 files (25%), 1.0/s, ETA 3s\x1b[K", "3/4 files (75%), 2.6/s, ETA 1s\x1b[K", "3/4 files (75%), 2.6/s, ETA 1s\x1b[K"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("redraws = %q, want %q", lines, want)
	}
}

func TestConcurrentUpdates(t *testing.T) {
	var out bytes.Buffer
	r := New(&out, Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				r.Update(i*100+j, 800)
			}
		})
	}
	wg.Wait()
	r.Finish()
	if !strings.Contains(out.String(), "/800 items") {
		t.Errorf("output %q", out.String())
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is no terminal")
	}
	if null, err := os.Open(os.DevNull); err == nil {
		defer null.Close()
		// /dev/null is a character device; IsTerminal only promises "redraws do no harm".
		if !IsTerminal(null) {
			t.Error("/dev/null is a character device")
		}
	}
}

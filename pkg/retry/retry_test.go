package retry_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock/clocktest"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestCapAndWorstCase(t *testing.T) {
	p := retry.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second, MaxAttempts: 6}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second}
	for n, w := range want {
		if got := p.Cap(n); got != w {
			t.Errorf("Cap(%d) = %v, want %v", n, got, w)
		}
	}
	if got := p.Cap(200); got != 5*time.Second {
		t.Errorf("Cap(200) = %v: the shift overflowed", got)
	}
	if got := p.WorstCase(); got != 3100*time.Millisecond {
		t.Errorf("WorstCase = %v, want 3.1s", got)
	}
}

func TestBackoffFullJitterAndRetryAfter(t *testing.T) {
	p := retry.Policy{Base: time.Second, Max: 4 * time.Second}
	for range 1000 {
		if d := p.Backoff(3, 0); d < 0 || d > 4*time.Second {
			t.Fatalf("Backoff(3) = %v, outside [0, 4s]", d)
		}
	}
	p.Rand = func() float64 { return 0.5 }
	if d := p.Backoff(2, 0); d != time.Second {
		t.Errorf("Backoff(2) with rand 0.5 = %v, want 1s", d)
	}
	if d := p.Backoff(2, 30*time.Second); d != 30*time.Second {
		t.Errorf("Backoff with Retry-After 30s = %v: Retry-After is the lower bound", d)
	}
}

func TestDo(t *testing.T) {
	boom := errors.New("boom")
	t.Run("succeeds after retries", func(t *testing.T) {
		c := clocktest.NewAuto(t0)
		p := retry.Policy{Base: time.Second, Max: time.Minute, Clock: c, Rand: func() float64 { return 1 }}
		calls := 0
		err := p.Do(t.Context(), func(context.Context, int) error {
			if calls++; calls < 3 {
				return boom
			}
			return nil
		})
		if err != nil || calls != 3 || fmt.Sprint(c.Waits()) != "[1s 2s]" {
			t.Fatalf("err %v, calls %d, waits %v", err, calls, c.Waits())
		}
	})
	t.Run("permanent stops at once", func(t *testing.T) {
		c := clocktest.NewAuto(t0)
		p := retry.Policy{Base: time.Second, Max: time.Minute, Clock: c}
		err := p.Do(t.Context(), func(context.Context, int) error { return fmt.Errorf("wrapped: %w", retry.Permanent(boom)) })
		if !retry.IsPermanent(err) || !errors.Is(err, boom) || len(c.Waits()) != 0 {
			t.Fatalf("err %v, waits %v", err, c.Waits())
		}
	})
	t.Run("attempts run out", func(t *testing.T) {
		p := retry.Policy{Base: time.Second, Max: time.Minute, MaxAttempts: 3, Clock: clocktest.NewAuto(t0)}
		calls := 0
		err := p.Do(t.Context(), func(context.Context, int) error { calls++; return boom })
		if calls != 3 || !errors.Is(err, retry.ErrExhausted) || !errors.Is(err, boom) || err.Error() != "boom" || retry.IsPermanent(err) {
			t.Fatalf("calls %d, err %v", calls, err)
		}
	})
	t.Run("retry-after is the least wait", func(t *testing.T) {
		c := clocktest.NewAuto(t0)
		p := retry.Policy{Base: time.Millisecond, Max: time.Millisecond, MaxAttempts: 2, Clock: c}
		_ = p.Do(t.Context(), func(context.Context, int) error { return retry.After(boom, 7*time.Second) })
		if w := c.Waits(); len(w) != 1 || w[0] != 7*time.Second {
			t.Fatalf("waits %v", w)
		}
	})
	t.Run("no wait past the deadline", func(t *testing.T) {
		c := clocktest.NewAuto(time.Now())
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		p := retry.Policy{Base: time.Hour, Max: time.Hour, Clock: c, Rand: func() float64 { return 1 }}
		calls := 0
		err := p.Do(ctx, func(context.Context, int) error { calls++; return boom })
		if calls != 1 || !errors.Is(err, retry.ErrDeadline) || !errors.Is(err, boom) || len(c.Waits()) != 0 {
			t.Fatalf("calls %d, err %v, waits %v", calls, err, c.Waits())
		}
	})
	t.Run("elapsed cap", func(t *testing.T) {
		c := clocktest.NewAuto(t0)
		p := retry.Policy{Base: time.Second, Max: time.Second, MaxElapsed: 3500 * time.Millisecond, Clock: c, Rand: func() float64 { return 1 }}
		calls := 0
		err := p.Do(t.Context(), func(context.Context, int) error { calls++; return boom })
		if calls != 4 || !errors.Is(err, retry.ErrDeadline) {
			t.Fatalf("calls %d, err %v", calls, err)
		}
	})
	t.Run("ctx ends during the wait", func(t *testing.T) {
		c := clocktest.NewAuto(t0)
		ctx, cancel := context.WithCancel(t.Context())
		c.OnWait(func(time.Duration) { cancel() })
		p := retry.Policy{Base: time.Second, Max: time.Second, Clock: c}
		err := p.Do(ctx, func(context.Context, int) error { return boom })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	})
}

type domainErr struct{ permanent bool }

func (e domainErr) Error() string     { return "domain" }
func (e domainErr) IsPermanent() bool { return e.permanent }

func TestIsPermanent(t *testing.T) {
	for err, want := range map[error]bool{
		nil:                                       false,
		errors.New("x"):                           false,
		retry.Permanent(errors.New("x")):          true,
		fmt.Errorf("a: %w", domainErr{true}):      true,
		fmt.Errorf("a: %w", domainErr{false}):     false,
		retry.After(domainErr{true}, time.Second): true,
	} {
		if got := retry.IsPermanent(err); got != want {
			t.Errorf("IsPermanent(%v) = %v, want %v", err, got, want)
		}
	}
	if retry.Permanent(nil) != nil || retry.After(nil, time.Second) != nil {
		t.Error("a nil error did not stay nil")
	}
}

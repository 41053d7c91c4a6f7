// Package retry is the one retry policy of the project: exponential backoff with full
// jitter, a server's Retry-After honoured, no retry started that could not end before the
// context's deadline, caps on attempts and elapsed time, and one permanent-error marker that
// every caller tests with IsPermanent.
//
// Which errors are permanent is each package's knowledge (fhir knows a 400 is, bus knows an
// entry EventBridge calls malformed is); they say so through this package, with Permanent or
// by a method IsPermanent() bool on their error type, so that a caller holding an error from
// any of them asks retry.IsPermanent and nothing else.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
)

// Policy is a backoff schedule and its bounds. The zero value retries for ever (until ctx
// ends or an error is permanent) with waits capped at 0: set Base and Max.
type Policy struct {
	// Base is the cap of the wait before the first retry; each further retry doubles it, up
	// to Max. Each wait is drawn uniformly from [0, cap] ("full jitter"), which spreads
	// clients that failed together best.
	Base, Max time.Duration
	// MaxAttempts bounds the calls Do makes (1: no retry); 0 means no bound.
	MaxAttempts int
	// MaxElapsed bounds the time from Do's first call to the end of a wait; a retry whose
	// wait would end later is not started. 0 means no bound.
	MaxElapsed time.Duration
	// Clock is the time of the waits and of the deadline checks; default clock.Real.
	Clock clock.Clock
	// Rand returns a number in [0, 1) for the jitter; default math/rand/v2.Float64.
	Rand func() float64
}

// ErrDeadline is wrapped (with the last error of the call) into the error Wait and Do return
// when they did not start a retry because its wait would end after ctx's deadline or after
// MaxElapsed: the caller learns why at once and keeps the rest of its time.
var ErrDeadline = errors.New("next attempt due after the deadline")

// ErrExhausted is matched (errors.Is) by the error Do returns when MaxAttempts calls all
// failed; the error's text is the last call's, unchanged.
var ErrExhausted = errors.New("attempts exhausted")

// Cap is the most the wait before retry n (1 for the first) may be: Base·2^(n-1), at most Max.
func (p Policy) Cap(n int) time.Duration {
	if n < 1 {
		return 0
	}
	if n-1 < 32 {
		if b := p.Base << (n - 1); b > 0 && b < p.Max {
			return b
		}
	}
	return max(p.Max, 0)
}

// Backoff is the wait before retry n: uniform in [0, Cap(n)], but never less than
// retryAfter, what the server asked for (a Retry-After header): retrying earlier only earns
// another refusal. So a Retry-After above Max is honoured too; callers cap absurd headers.
func (p Policy) Backoff(n int, retryAfter time.Duration) time.Duration {
	r := rand.Float64
	if p.Rand != nil {
		r = p.Rand
	}
	return max(time.Duration(r()*float64(p.Cap(n))), retryAfter)
}

// WorstCase is the longest the waits of Do may add up to: Cap(n) for each retry that
// MaxAttempts allows (a Retry-After aside). It is 0 without MaxAttempts.
func (p Policy) WorstCase() time.Duration {
	var total time.Duration
	for n := 1; n < p.MaxAttempts; n++ {
		total += p.Cap(n)
	}
	return total
}

func (p Policy) clock() clock.Clock { return clock.Or(p.Clock) }

// Wait waits Backoff(n, retryAfter) before retry n. It returns at once, with an error that
// wraps ErrDeadline, when the wait would end after ctx's deadline, and ctx.Err() when ctx
// ends during the wait. It waits on p.Clock.
func (p Policy) Wait(ctx context.Context, n int, retryAfter time.Duration) error {
	return p.wait(ctx, p.Backoff(n, retryAfter), time.Time{})
}

// Sleep waits exactly d on the policy's clock, or returns ErrDeadline at once when d would
// end after ctx's deadline: for a caller that takes a server's Retry-After as the whole wait
// rather than as the least one (Wait).
func (p Policy) Sleep(ctx context.Context, d time.Duration) error {
	return p.wait(ctx, d, time.Time{})
}

func (p Policy) wait(ctx context.Context, d time.Duration, limit time.Time) error {
	c := p.clock()
	end := c.Now().Add(d)
	if deadline, ok := ctx.Deadline(); ok && end.After(deadline) {
		return ErrDeadline
	}
	if !limit.IsZero() && end.After(limit) {
		return ErrDeadline
	}
	return clock.Sleep(ctx, c, d)
}

// Do calls f (attempt 1, 2, …) until it returns nil, a permanent error (IsPermanent), or
// MaxAttempts calls have failed, waiting Backoff between calls; an error f returned
// through After sets that wait's lower bound. It returns:
//   - nil, or f's permanent error unchanged;
//   - f's last error, matching ErrExhausted, when the attempts ran out;
//   - f's last error wrapping ErrDeadline ("…: next attempt due after the deadline") when the
//     next wait would end after ctx's deadline or MaxElapsed;
//   - ctx.Err() when ctx ended before or during a wait.
func (p Policy) Do(ctx context.Context, f func(ctx context.Context, attempt int) error) error {
	var limit time.Time
	if p.MaxElapsed > 0 {
		limit = p.clock().Now().Add(p.MaxElapsed)
	}
	for attempt := 1; ; attempt++ {
		err := f(ctx, attempt)
		switch {
		case err == nil || IsPermanent(err):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case p.MaxAttempts > 0 && attempt >= p.MaxAttempts:
			return &exhausted{err}
		}
		if werr := p.wait(ctx, p.Backoff(attempt, RetryAfter(err)), limit); werr != nil {
			if errors.Is(werr, ErrDeadline) {
				return fmt.Errorf("%w (%w)", err, ErrDeadline)
			}
			return werr
		}
	}
}

// exhausted marks the last error of a Do that ran out of attempts, keeping its text.
type exhausted struct{ err error }

func (e *exhausted) Error() string        { return e.err.Error() }
func (e *exhausted) Unwrap() error        { return e.err }
func (e *exhausted) Is(target error) bool { return target == ErrExhausted }

// Permanent marks err as one that retrying the same call cannot mend; nil stays nil. The
// mark shows through any wrapping: IsPermanent(fmt.Errorf("…: %w", Permanent(err))) is true.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

type permanent struct{ err error }

func (e *permanent) Error() string     { return e.err.Error() }
func (e *permanent) Unwrap() error     { return e.err }
func (e *permanent) IsPermanent() bool { return true }

// IsPermanent reports whether err says a retry of the same call cannot help: the first error
// in its chain that has a method IsPermanent() bool (Permanent's mark, or a package's error
// type that knows its own case, such as bus.EntryError or fhir.StatusError) decides. nil and
// errors without such a method are not permanent: they are worth another try.
func IsPermanent(err error) bool {
	var p interface{ IsPermanent() bool }
	return errors.As(err, &p) && p.IsPermanent()
}

// After attaches a server's requested wait (a Retry-After) to err, for Do: the next wait is
// at least d. The text and chain of err are unchanged; nil stays nil.
func After(err error, d time.Duration) error {
	if err == nil || d <= 0 {
		return err
	}
	return &after{err, d}
}

type after struct {
	err error
	d   time.Duration
}

func (e *after) Error() string { return e.err.Error() }
func (e *after) Unwrap() error { return e.err }

// RetryAfter is the wait attached to err by After, or 0.
func RetryAfter(err error) time.Duration {
	var a *after
	if errors.As(err, &a) {
		return a.d
	}
	return 0
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// PutEventsAPI is the part of the EventBridge client the Emitter uses; *eventbridge.Client
// implements it.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, params *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Emitter sends entries to EventBridge with PutEvents. It is safe for concurrent use; the
// MaxInFlight bound holds across all its Emit calls.
type Emitter struct {
	api    PutEventsAPI
	opts   Options
	sem    chan struct{} // one token per call in flight
	health *Health
	met    *metrics
}

// New returns an Emitter calling api. Options are defaulted and validated.
func New(api PutEventsAPI, opts Options) (*Emitter, error) {
	if api == nil {
		return nil, errors.New("bus: nil PutEvents API")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	met, err := newMetrics(opts.MeterProvider)
	if err != nil {
		return nil, err
	}
	return &Emitter{api: api, opts: opts, sem: make(chan struct{}, opts.MaxInFlight), health: newHealth(opts.Clock.Now), met: met}, nil
}

// Health is the Emitter's view of whether EventBridge takes its events (for /readyz).
func (e *Emitter) Health() *Health { return e.health }

// Options are the Emitter's options with the defaults filled in: MaxEntryBytes is the size
// limit for building entries, MaxEmitDuration the bound to check against the claim TTL.
func (e *Emitter) Options() Options { return e.opts }

// batch is the state of one Emit: each index is written by one goroutine at a time (the call
// that carries it) and read between rounds.
type batch struct {
	entries []types.PutEventsRequestEntry
	sizes   []int
	solo    []bool // send alone: its call was rejected as a whole, so find out which entry did it
	errs    []error
}

// Emit sends entries and returns, aligned by index with entries, nil for each entry EventBridge
// accepted and an error for each it did not. It returns when every entry is accepted or given
// up on; it starts no goroutine that outlives it.
//
// Entries are packed in order into calls of at most MaxEntries entries and MaxRequestBytes;
// failed entries are retried, and only those, as the package doc says. An entry's error wraps
// an *EntryError: retry.IsPermanent(err) says the entry can never be accepted (report it);
// errors.Is(err, ErrUnavailable) says the bus refused the call or the caller (do not ack, retry
// later); otherwise it ran out of attempts or ctx ended (errors.Is(err, ctx.Err())) — retry
// later too. No retry starts whose backoff would end after ctx's deadline: Emit returns the
// entries' last errors instead, leaving the time to the caller.
func (e *Emitter) Emit(ctx context.Context, entries []types.PutEventsRequestEntry) []error {
	b := &batch{
		entries: entries,
		sizes:   make([]int, len(entries)),
		solo:    make([]bool, len(entries)),
		errs:    make([]error, len(entries)),
	}
	pending := make([]int, 0, len(entries))
	for i := range entries {
		b.sizes[i] = EntrySize(entries[i])
		if b.sizes[i] > e.opts.MaxEntryBytes {
			b.errs[i] = &EntryError{
				Code:      CodeEntryTooLarge,
				Message:   fmt.Sprintf("entry is %d bytes, over the limit of %d", b.sizes[i], e.opts.MaxEntryBytes),
				Permanent: true,
			}
			continue
		}
		pending = append(pending, i)
	}
	policy := e.opts.retryPolicy()
	for attempt := 1; len(pending) > 0 && attempt <= e.opts.MaxAttempts; attempt++ {
		if attempt > 1 {
			if err := policy.Wait(ctx, attempt-1, 0); errors.Is(err, retry.ErrDeadline) {
				// The retry could not start before the caller's deadline.
				break
			} else if err != nil {
				stop(b.errs, pending, attempt-1, err)
				break
			}
		}
		pending = e.round(ctx, b, pending, attempt)
	}
	// Whatever is still pending ran out of attempts or time; errs holds its last error.
	return b.errs
}

// round sends the pending entries once, at most MaxInFlight calls at a time, records each
// entry's outcome in b.errs and returns the indexes to retry, in input order.
func (e *Emitter) round(ctx context.Context, b *batch, pending []int, attempt int) []int {
	calls := pack(pending, b.sizes, b.solo, e.opts.MaxRequestBytes)
	if len(calls) == 1 {
		// The common small Emit: no goroutine.
		if err := e.acquire(ctx); err != nil {
			stop(b.errs, calls[0], attempt-1, err)
			return nil
		}
		defer e.release()
		return e.call(ctx, b, calls[0], attempt)
	}
	retries := make([][]int, len(calls))
	var wg sync.WaitGroup
	for k, idx := range calls {
		if err := e.acquire(ctx); err != nil {
			for _, rest := range calls[k:] {
				stop(b.errs, rest, attempt-1, err)
			}
			break
		}
		wg.Go(func() {
			defer e.release()
			retries[k] = e.call(ctx, b, idx, attempt)
		})
	}
	wg.Wait()
	n := 0
	for _, r := range retries {
		n += len(r)
	}
	if n == 0 {
		return nil
	}
	retry := make([]int, 0, n)
	for _, r := range retries {
		retry = append(retry, r...)
	}
	return retry
}

func (e *Emitter) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case e.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (e *Emitter) release() { <-e.sem }

// call makes one PutEvents call with the entries at idx, records each one's outcome in b.errs
// (each goroutine owns the indexes of its call) and returns the indexes worth retrying.
func (e *Emitter) call(ctx context.Context, b *batch, idx []int, attempt int) (retry []int) {
	in := &eventbridge.PutEventsInput{Entries: make([]types.PutEventsRequestEntry, len(idx))}
	for k, i := range idx {
		in.Entries[k] = b.entries[i]
	}
	// The call's own deadline: a hung call is abandoned (and retried) long before the claims
	// of its changes expire. A deadline of ctx that comes sooner wins.
	callCtx, cancel := context.WithTimeout(ctx, e.opts.CallTimeout)
	out, err := e.api.PutEvents(callCtx, in)
	timedOut := errors.Is(callCtx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil && isContextError(ctx, err) {
		e.onCall(ctx, len(idx), len(idx), err)
		stop(b.errs, idx, attempt, err)
		return nil
	}
	var ce *CallError
	switch {
	case err != nil:
		ce = classify(timedOut, err)
	case len(out.Entries) != len(idx):
		// Results that do not line up cannot say which entry failed; send them all again.
		ce = &CallError{Kind: KindBadResponse, Err: fmt.Errorf("PutEvents answered %d results for %d entries", len(out.Entries), len(idx))}
	}
	if ce != nil {
		e.onCall(ctx, len(idx), len(idx), ce)
		if ce.unavailable() {
			e.health.fail(ce.label())
		}
		// A request rejected as invalid is about its entries: alone, the entry is the cause.
		permanent := ce.Kind == KindRejected && len(idx) == 1
		for _, i := range idx {
			b.errs[i] = &EntryError{
				Code: ce.Code, Message: ce.Message, Attempts: attempt,
				Permanent: permanent, Unavailable: ce.unavailable(), Err: ce,
			}
			if ce.Kind == KindRejected {
				b.solo[i] = true
			}
			if !permanent {
				retry = append(retry, i)
			}
		}
		return retry
	}
	failed := 0
	denied := ""
	for k, r := range out.Entries {
		i := idx[k]
		if r.ErrorCode == nil || *r.ErrorCode == "" {
			b.errs[i] = nil
			continue
		}
		failed++
		code := *r.ErrorCode
		ee := &EntryError{
			Code: code, Message: aws.ToString(r.ErrorMessage), Attempts: attempt,
			Permanent: permanentEntryCodes[code], Unavailable: deniedEntryCodes[code],
		}
		b.errs[i] = ee
		if ee.Unavailable {
			denied = code
		}
		if !ee.Permanent {
			retry = append(retry, i)
		}
	}
	if denied != "" {
		e.health.fail(denied)
	} else {
		e.health.ok()
	}
	e.onCall(ctx, len(idx), failed, nil)
	return retry
}

func (e *Emitter) onCall(ctx context.Context, entries, failed int, err error) {
	e.met.call(ctx, entries, failed)
	if e.opts.OnCall != nil {
		e.opts.OnCall(entries, failed, err)
	}
}

// stop records that the entries at idx were not sent (again) because ctx ended; the error
// keeps the entry's last failure, so that ErrUnavailable still shows through.
func stop(errs []error, idx []int, attempts int, err error) {
	for _, i := range idx {
		ee := &EntryError{Attempts: attempts, Err: err}
		if prev := errs[i]; prev != nil {
			ee.Err = fmt.Errorf("%w; last failure: %w", err, prev)
			ee.Unavailable = errors.Is(prev, ErrUnavailable)
		}
		errs[i] = ee
	}
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// PutEventsAPI is the part of the EventBridge client the Emitter uses; *eventbridge.Client
// implements it.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, params *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Emitter sends entries to EventBridge with PutEvents. It is safe for concurrent use; the
// MaxInFlight bound holds across all its Emit calls.
type Emitter struct {
	api  PutEventsAPI
	opts Options
	sem  chan struct{} // one token per call in flight
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
	return &Emitter{api: api, opts: opts, sem: make(chan struct{}, opts.MaxInFlight)}, nil
}

// Emit sends entries and returns, aligned by index with entries, nil for each entry EventBridge
// accepted and an error for each it did not. It returns when every entry is accepted or given
// up on; it starts no goroutine that outlives it.
//
// Entries are packed in order into calls of at most MaxEntries entries and MaxRequestBytes;
// failed entries are retried, and only those, as the package doc says. An entry's error wraps
// an *EntryError (see IsPermanent), or, when ctx ended first, the context's error.
func (e *Emitter) Emit(ctx context.Context, entries []types.PutEventsRequestEntry) []error {
	errs := make([]error, len(entries))
	sizes := make([]int, len(entries))
	pending := make([]int, 0, len(entries))
	for i := range entries {
		sizes[i] = EntrySize(entries[i])
		if sizes[i] > MaxRequestBytes {
			errs[i] = &EntryError{
				Code:      CodeEntryTooLarge,
				Message:   fmt.Sprintf("entry is %d bytes, over the PutEvents limit of %d", sizes[i], MaxRequestBytes),
				Permanent: true,
			}
			continue
		}
		pending = append(pending, i)
	}
	for attempt := 1; len(pending) > 0 && attempt <= e.opts.MaxAttempts; attempt++ {
		if attempt > 1 {
			if err := e.opts.Sleep(ctx, e.backoff(attempt-1)); err != nil {
				stop(errs, pending, attempt-1, err)
				break
			}
		}
		pending = e.round(ctx, entries, sizes, pending, attempt, errs)
	}
	// Whatever is still pending ran out of attempts; errs holds its last error.
	return errs
}

// round sends the pending entries once, at most MaxInFlight calls at a time, records each
// entry's outcome in errs and returns the indexes to retry, in input order.
func (e *Emitter) round(ctx context.Context, entries []types.PutEventsRequestEntry, sizes, pending []int, attempt int, errs []error) []int {
	calls := pack(pending, sizes)
	retries := make([][]int, len(calls))
	var wg sync.WaitGroup
	for k, idx := range calls {
		if err := e.acquire(ctx); err != nil {
			for _, rest := range calls[k:] {
				stop(errs, rest, attempt-1, err)
			}
			break
		}
		wg.Go(func() {
			defer e.release()
			retries[k] = e.call(ctx, entries, idx, attempt, errs)
		})
	}
	wg.Wait()
	var retry []int
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

// call makes one PutEvents call with the entries at idx, records each one's outcome in errs
// (each goroutine owns the indexes of its call) and returns the indexes worth retrying.
func (e *Emitter) call(ctx context.Context, entries []types.PutEventsRequestEntry, idx []int, attempt int, errs []error) (retry []int) {
	in := &eventbridge.PutEventsInput{Entries: make([]types.PutEventsRequestEntry, len(idx))}
	for k, i := range idx {
		in.Entries[k] = entries[i]
	}
	out, err := e.api.PutEvents(ctx, in)
	if err == nil && len(out.Entries) != len(idx) {
		// Results that do not line up cannot say which entry failed; send them all again.
		err = fmt.Errorf("bus: PutEvents answered %d results for %d entries", len(out.Entries), len(idx))
	}
	if err != nil {
		e.onCall(len(idx), len(idx), err)
		if isContextError(ctx, err) {
			stop(errs, idx, attempt, err)
			return nil
		}
		ce := callError(err)
		for _, i := range idx {
			c := *ce
			c.Attempts = attempt
			errs[i] = &c
			if !c.Permanent {
				retry = append(retry, i)
			}
		}
		return retry
	}
	failed := 0
	for k, r := range out.Entries {
		i := idx[k]
		code := aws.ToString(r.ErrorCode)
		if code == "" {
			errs[i] = nil
			continue
		}
		failed++
		permanent := permanentEntryCodes[code]
		errs[i] = &EntryError{Code: code, Message: aws.ToString(r.ErrorMessage), Attempts: attempt, Permanent: permanent}
		if !permanent {
			retry = append(retry, i)
		}
	}
	e.onCall(len(idx), failed, nil)
	return retry
}

func (e *Emitter) onCall(entries, failed int, err error) {
	if e.opts.OnCall != nil {
		e.opts.OnCall(entries, failed, err)
	}
}

// backoff is the wait before retry number n (1 for the first): BaseBackoff·2^(n-1) capped at
// MaxBackoff, jittered to [d/2, d] so that workers throttled together do not retry together.
func (e *Emitter) backoff(n int) time.Duration {
	d := e.opts.MaxBackoff
	if n-1 < 32 {
		if b := e.opts.BaseBackoff << (n - 1); b > 0 && b < d {
			d = b
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// stop records that the entries at idx were not sent (again) because ctx ended.
func stop(errs []error, idx []int, attempts int, err error) {
	for _, i := range idx {
		errs[i] = &EntryError{Attempts: attempts, Err: err}
	}
}

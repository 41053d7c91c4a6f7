package bus

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxInFlight = 4
	DefaultMaxAttempts = 10
	DefaultBaseBackoff = 100 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
)

// Options configures an Emitter. The zero value gives the defaults.
type Options struct {
	// MaxInFlight bounds the PutEvents calls running at once across all Emit calls of the
	// Emitter; default 4.
	MaxInFlight int
	// MaxAttempts bounds how many calls may carry one entry; default 10.
	MaxAttempts int
	// BaseBackoff is the wait before the first retry, doubled for each further one up to
	// MaxBackoff (defaults 100 ms and 5 s); each wait is jittered to between half and all of it.
	BaseBackoff, MaxBackoff time.Duration
	// Sleep waits d or until ctx ends, returning ctx.Err() then; default a timer. Tests inject
	// one that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnCall, if set, is called after every PutEvents call with the number of entries sent, the
	// number that failed inside the call, and the call's error (then every entry failed). It is
	// called from several goroutines at once: it must be safe for concurrent use and fast.
	OnCall func(entries, failed int, err error)
}

// Validate reports options that cannot work. Zero values are defaults, not errors.
func (o Options) Validate() error {
	var errs []error
	if o.MaxInFlight < 0 {
		errs = append(errs, fmt.Errorf("MaxInFlight %d is negative", o.MaxInFlight))
	}
	if o.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("MaxAttempts %d is negative", o.MaxAttempts))
	}
	if o.BaseBackoff < 0 || o.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("negative backoff (base %v, max %v)", o.BaseBackoff, o.MaxBackoff))
	}
	if o.BaseBackoff > 0 && o.MaxBackoff > 0 && o.MaxBackoff < o.BaseBackoff {
		errs = append(errs, fmt.Errorf("MaxBackoff %v is below BaseBackoff %v", o.MaxBackoff, o.BaseBackoff))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bus: options: %w", err)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.BaseBackoff == 0 {
		o.BaseBackoff = DefaultBaseBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.BaseBackoff)
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

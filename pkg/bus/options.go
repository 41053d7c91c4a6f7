package bus

import (
	"cmp"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/healthlake-cdc/healthlake-cdc/pkg/clock"
	"github.com/healthlake-cdc/healthlake-cdc/pkg/retry"
)

// Defaults of Options.
//
// They keep MaxEmitDuration (5 s × 6 + 0.1 + 0.2 + 0.4 + 0.8 + 1.6 s = 33.1 s) well below the
// dedup claim TTL (60 s by default), so that an Emit started right after a claim cannot still
// be sending when the claim expires and another worker takes the change over.
const (
	// DefaultMaxInFlight: calls in flight bound throughput at MaxInFlight × 10 entries / call
	// latency (Little's law). On loopback to the recorder one call in flight already carries
	// ~9,000 events/s of 1–2 KB, but with 20 ms per call (BenchmarkEmitLatency, a stand-in
	// for the round trip to EventBridge, whose latency AWS does not document) 16 calls carry
	// ~5,900/s and 32 ~10,800/s: 32 reaches HealthLake's 6,000 writes/s account quota with
	// room to spare. Size the HTTP client's idle pool to match (HTTPClient).
	DefaultMaxInFlight = 32
	DefaultMaxAttempts = 6
	DefaultBaseBackoff = 100 * time.Millisecond
	DefaultMaxBackoff  = 5 * time.Second
	// DefaultCallTimeout bounds one PutEvents call, the SDK's own retries inside it included.
	DefaultCallTimeout = 5 * time.Second
	// DefaultMaxEntryBytes is the entry size limit EventBridge had until 2026-01 and that many
	// targets (SQS before 2026-01, SNS, Step Functions…) still have.
	DefaultMaxEntryBytes = 256 * 1024
	// MaxEntryBytesLimit is the largest entry EventBridge buses accept since 2026-01 (1 MB).
	MaxEntryBytesLimit = 1024 * 1024
)

// Options configures an Emitter. The zero value gives the defaults.
type Options struct {
	// MaxInFlight bounds the PutEvents calls running at once across all Emit calls of the
	// Emitter; default DefaultMaxInFlight.
	MaxInFlight int
	// MaxAttempts bounds how many calls may carry one entry within one Emit; default 6. An
	// entry still failing after that comes back with a retryable error: the caller keeps the
	// change un-acked and tries again later.
	MaxAttempts int
	// BaseBackoff is the cap of the wait before the first retry, doubled for each further one
	// up to MaxBackoff (defaults 100 ms and 5 s); each wait is drawn uniformly from [0, cap]
	// ("full jitter"), so that workers throttled together do not retry together.
	BaseBackoff, MaxBackoff time.Duration
	// CallTimeout bounds each PutEvents call (default 5 s), so that a call that hangs is given
	// up on and retried rather than outliving the dedup claim of its changes. The rule:
	// MaxEmitDuration() — CallTimeout × MaxAttempts plus the backoff caps — must stay below
	// the claim TTL; the pipeline checks it in its Validate.
	CallTimeout time.Duration
	// MaxEntryBytes is the largest entry (by EntrySize) the Emitter sends; a larger one fails
	// at once with CodeEntryTooLarge. Default 256 KB, at most MaxEntryBytesLimit (1 MB, what
	// EventBridge buses accept since 2026-01; raise it only if every target takes 1 MB too).
	MaxEntryBytes int
	// MaxRequestBytes bounds the summed EntrySize of one call; default 256 KB, or
	// MaxEntryBytes when that is larger. AWS documents the 256 KB total (page "Calculating
	// Amazon EventBridge PutEvents event entry size"); whether the per-call total grew with the
	// 1 MB entries is not documented, so it is a setting too.
	MaxRequestBytes int
	// Clock is the time of the backoff waits, of the deadline checks and of Health; default
	// clock.Real. Tests inject a clocktest.Fake.
	Clock clock.Clock
	// OnCall, if set, is called after every PutEvents call with the number of entries sent, the
	// number that failed inside the call, and the call's error (then every entry failed): a
	// *CallError, or the context's error when Emit's context ended during the call. It is
	// called from several goroutines at once: it must be safe for concurrent use and fast.
	OnCall func(entries, failed int, err error)
	// MeterProvider gets the Emitter's instruments (hlcdc.putevents.calls, .entries and
	// .failed_entries, recorded with the Emit's context). Default: none.
	MeterProvider metric.MeterProvider
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
	if o.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("CallTimeout %v is negative", o.CallTimeout))
	}
	if o.MaxEntryBytes < 0 || o.MaxEntryBytes > MaxEntryBytesLimit {
		errs = append(errs, fmt.Errorf("MaxEntryBytes %d is outside [0, %d]", o.MaxEntryBytes, MaxEntryBytesLimit))
	}
	if o.MaxRequestBytes < 0 || o.MaxRequestBytes > MaxEntryBytesLimit {
		errs = append(errs, fmt.Errorf("MaxRequestBytes %d is outside [0, %d]", o.MaxRequestBytes, MaxEntryBytesLimit))
	}
	if d := o.withDefaults(); o.MaxRequestBytes > 0 && d.MaxRequestBytes < d.MaxEntryBytes {
		errs = append(errs, fmt.Errorf("MaxRequestBytes %d is below MaxEntryBytes %d: a largest entry could never be sent", d.MaxRequestBytes, d.MaxEntryBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bus: options: %w", err)
	}
	return nil
}

// MaxEmitDuration is the longest Emit can take with these options once its calls have
// started: every attempt's call running into CallTimeout, plus the largest backoff before each
// retry. Time spent waiting for a free call slot (MaxInFlight, shared by concurrent Emits) is
// not in it; Emit starts no call after its context ended, so give it a context that ends
// before the claim does. The pipeline checks MaxEmitDuration() < claim TTL.
func (o Options) MaxEmitDuration() time.Duration {
	o = o.withDefaults()
	return time.Duration(o.MaxAttempts)*o.CallTimeout + o.retryPolicy().WorstCase()
}

// retryPolicy is the backoff between the rounds of one Emit; Emit counts the attempts itself
// (per entry, not per call), so MaxAttempts is here only for WorstCase.
func (o Options) retryPolicy() retry.Policy {
	return retry.Policy{Base: o.BaseBackoff, Max: o.MaxBackoff, MaxAttempts: o.MaxAttempts, Clock: o.Clock}
}

func (o Options) withDefaults() Options {
	o.MaxInFlight = cmp.Or(o.MaxInFlight, DefaultMaxInFlight)
	o.MaxAttempts = cmp.Or(o.MaxAttempts, DefaultMaxAttempts)
	o.BaseBackoff = cmp.Or(o.BaseBackoff, DefaultBaseBackoff)
	o.MaxBackoff = cmp.Or(o.MaxBackoff, max(DefaultMaxBackoff, o.BaseBackoff))
	o.CallTimeout = cmp.Or(o.CallTimeout, DefaultCallTimeout)
	o.MaxEntryBytes = cmp.Or(o.MaxEntryBytes, DefaultMaxEntryBytes)
	o.MaxRequestBytes = cmp.Or(o.MaxRequestBytes, max(MaxRequestBytes, o.MaxEntryBytes))
	o.Clock = clock.Or(o.Clock)
	return o
}

// Package bus puts events onto an EventBridge bus: it packs entries into PutEvents calls within
// the API's limits, runs a bounded number of calls at once, and retries exactly the entries that
// failed, reporting the outcome of each entry by its index in the input (DESIGN.md, "Output
// contract").
//
// Retries: an entry that EventBridge failed with a code that can succeed later (InternalFailure,
// ThrottlingException, or a code this package does not know) and every entry of a call that
// failed as a whole with a retryable error (throttling, 5xx, network) is sent again, with
// exponential backoff and jitter, until Options.MaxAttempts. A failure that cannot succeed on
// retry (InvalidArgument, MalformedDetail, AccessDeniedException, a call-level
// ValidationException or ResourceNotFoundException for a missing bus, an entry over the size
// limit) is returned at once. The SDK client retries a failed call by itself too (3 attempts
// with the standard retryer); the emitter's retries come on top and are the ones that also
// cover entries failed inside a successful call.
package bus

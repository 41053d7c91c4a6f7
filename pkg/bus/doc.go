// Package bus puts events onto an EventBridge bus: it packs entries into PutEvents calls within
// the API's limits, runs a bounded number of calls at once, each with a timeout, and retries
// exactly the entries that failed, reporting the outcome of each entry by its index in the
// input (DESIGN.md, "Output contract").
//
// Two kinds of failure, two answers:
//
//   - A call that fails as a whole says nothing about its entries: expired or invalid
//     credentials, AccessDeniedException, a missing bus (ResourceNotFoundException),
//     throttling, a server error, a timeout, no connection. Its entries are retried with
//     backoff and, when attempts or time run out, come back retryable and matching
//     ErrUnavailable — never permanent: the caller must not ack them. Health tells the caller
//     that the bus is unavailable as a whole while it lasts (for /readyz). The same holds for
//     entries EventBridge denied permission (AccessDeniedException, NotAuthorizedForSource…,
//     NotAuthorizedForDetailType…, InvalidAccountId…): documented as non-retryable, they
//     succeed once the policy is fixed.
//   - Only an entry that can never be accepted as it is fails permanently, by its index:
//     InvalidArgument, MalformedDetail, RedactionFailure or ValidationException on the entry,
//     an entry over Options.MaxEntryBytes (never sent), or an entry whose single-entry call was
//     rejected as invalid (a call with several entries rejected like that is split into
//     single-entry calls to find out which). Other entry codes (InternalFailure,
//     ThrottlingException, unknown ones) are retried until Options.MaxAttempts.
//
// The SDK client may retry a failed call by itself too (the consumer turns that off); the
// emitter's retries are the ones that also cover entries failed inside a successful call, and
// Options.CallTimeout bounds a call with the SDK's retries inside it.
package bus

// Package fhir is the FHIR R4 client the consumer uses to turn a coalesced range of anonymous
// CloudTrail hints into the resources that actually changed, against AWS HealthLake or the
// local stand-in in deploy/local/fhir:
//   - Client.Search: a `_lastUpdated` range search, every page;
//   - Client.Count: the same range counted with one count-only request, to verify a range
//     later (ok is false when the server cannot count: read the range again instead);
//   - Client.HistoryRange: the type-level history of a range, for deletes, paging only as far
//     as the range needs (Client.History, open-ended, is kept for the current pipeline only);
//   - Client.InstanceHistory and Client.VRead: the versions of one resource.
//
// Safety rules, because the values that end up in a URL come from CloudTrail records:
//   - A URL is built only from the configured endpoint and values validated again here: a
//     datastore id of 32 lower-case hex digits, a resource type name, a FHIR id. Anything else
//     is a permanent error before any request is made.
//   - A `next` link is followed only when it has the scheme, host and base path
//     (/datastore/{id}/r4/) of the configured endpoint for that datastore; otherwise the walk
//     stops with a permanent error and the link is never requested. HTTP redirects are never
//     followed either, so signed requests cannot be steered elsewhere.
//   - A walk ends with ErrPagingLoop on a repeated page URL or after Config.MaxPages pages,
//     and a page body larger than Config.MaxPageBytes is refused, so memory stays bounded.
//   - Response bodies hold PHI: errors and the OnRequest hook carry only the HTTP status and
//     the OperationOutcome issue codes, never a URL, a body, a resource id or a diagnostics
//     text.
//
// Errors: every failure belongs to a class matched with errors.Is (ErrForbidden, ErrNotFound,
// ErrUnsupported, ErrHistoryUnsupported, ErrPagingLoop, ErrForeignNextLink, ErrMalformedBundle,
// …) and Reason names it with a short stable string for reports. Throttling (429), server
// errors (500, 502, 503, 504) and network errors are retried with exponential backoff and
// full jitter, honouring Retry-After (the policy of pkg/retry); retry.IsPermanent tells
// callers whether a later retry of the whole call can help.
//
// Pages are handed to a visit callback one at a time, so callers can dedup and emit page by
// page. A page is decoded in one pass that keeps each resource's bytes exactly as sent and
// reads only resourceType, id, meta.versionId and meta.lastUpdated.
//
// SigV4Transport signs requests for HealthLake (service name "healthlake").
package fhir

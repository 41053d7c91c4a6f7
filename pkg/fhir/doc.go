// Package fhir is the FHIR R4 search client the consumer uses to turn a coalesced window of
// anonymous CloudTrail hints into the resources that actually changed: a `_lastUpdated` range
// search (Client.Search) and a type-level history read for deletes (Client.History), against
// AWS HealthLake or the local stand-in in deploy/local/fhir.
//
// Safety rules, because the values that end up in a URL come from CloudTrail records:
//   - A URL is built only from the configured endpoint and values validated again here: a
//     datastore id of 32 lower-case hex digits and a resource type name. Anything else is a
//     permanent error before any request is made.
//   - A `next` link is followed only when it has the scheme, host and base path
//     (/datastore/{id}/r4/) of the configured endpoint for that datastore; otherwise the walk
//     stops with a permanent error and the link is never requested. HTTP redirects are never
//     followed either, so signed requests cannot be steered elsewhere.
//   - A walk ends with an error on a repeated page URL or after Config.MaxPages pages, and a
//     page body larger than Config.MaxPageBytes is refused, so memory stays bounded.
//   - Response bodies hold PHI: errors and the OnRequest hook carry only the HTTP status and
//     the OperationOutcome issue codes, never a body, a resource or a diagnostics text.
//
// Pages are handed to a visit callback one at a time, so callers can dedup and emit page by
// page. Throttling (429) and server errors (500, 502, 503, 504) and network errors are retried
// with exponential backoff and full jitter, honouring Retry-After; IsPermanent tells callers
// whether a later retry of the whole call can help.
//
// SigV4Transport signs requests for HealthLake (service name "healthlake").
package fhir

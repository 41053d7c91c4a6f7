// Package coalesce groups CloudTrail hints into windows per (datastore, resource type) and
// computes the `_lastUpdated` range each window must search.
//
// HealthLake's CloudTrail record says only "someone changed an Observation in datastore D at
// second S". One search per hint cannot keep up with ingestion (searches are rate limited to
// about 100/s per datastore against thousands of writes/s), so hints for the same key that
// arrive close together share one bounded range query. Everything here is pure: the caller
// passes the time in, so window bounds are table-tested rather than slept through.
package coalesce

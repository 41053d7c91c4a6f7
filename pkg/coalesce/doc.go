// Package coalesce is the range arithmetic of a key's timeline: which `_lastUpdated` range a
// CloudTrail hint needs searched, and which parts of a (datastore, resource type) timeline are
// due for a search or a verification at a given time.
//
// HealthLake's CloudTrail record says only "someone changed an Observation in datastore D at
// second S". One search per hint cannot keep up with ingestion (searches are rate limited to
// about 100/s per datastore against thousands of writes/s), and neither can one search per
// window of hints when windows overlap. So each key has one timeline: the contiguous
// `_lastUpdated` range [Start, Frontier) that has been searched, each part at least Settle
// after its end. Hints only say how far the timeline must reach; the part between the
// frontier and the furthest hint is searched once, in chunks of at most MaxSpan, at most once
// per Window (the cadence), however many hints asked for it. A hint whose range lies inside
// the timeline is covered, however late it arrives.
//
// Everything here is pure: the caller passes the time in, so the arithmetic is table-tested
// rather than slept through. The shared state (the timeline of each key, who searches it) lives
// in Redis, see package timeline.
package coalesce

// Package timeline keeps, in Redis, the state that lets several workers search each part of
// a (datastore, resource type) timeline once between them:
//
//   - the timeline [start, frontier) searched so far, and the range hints want searched
//     (hash <prefix>tl:{ds/type}); it only grows, by compare-and-set;
//   - the key's search lease (<prefix>tl:{ds/type}:lease): SET NX PX with this worker's
//     owner token; only its holder searches and moves the timeline;
//   - verification obligations (<prefix>tl:{ds/type}:verify, a sorted set of searched chunks
//     scored by when they are due), written in the same script that moves the frontier, so a
//     crash after a search cannot lose its verification; an index of keys with obligations
//     (<prefix>verify-due) lets any worker pick them up;
//   - the latest version's lastUpdated of each resource emitted recently
//     (<prefix>tl:{ds/type}:latest), from which verification knows how many resources a
//     range should hold now;
//   - ranges wanting a history read for deletes (<prefix>tl:{ds/type}:dels);
//   - parked ranges (<prefix>parked): searches that failed for a reason a retry cannot fix.
//
// Every key of one (datastore, type) shares the hash tag {ds/type}, so the scripts work on
// Redis Cluster. Times are stored as Unix milliseconds. Any Redis error is returned: the
// caller fails closed (acks nothing) and tries again.
package timeline

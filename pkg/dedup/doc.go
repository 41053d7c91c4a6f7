// Package dedup makes sure each change (datastore, resource type, id, versionId) is emitted once
// per dedup TTL across all workers, using claims in Redis.
//
// The protocol (DESIGN.md, "Dedup (Redis)"), pipelined so a page of results costs one round
// trip per step:
//
//  1. Claim: SET key "pending:<owner>" NX PX claim-ttl, then GET key. We set it, or it already
//     holds our own token from an earlier attempt: New, emit it. It holds "done": Duplicate,
//     skip it. It holds another worker's token: Pending, that worker is mid-emit; do not skip and
//     do not ack, look again later (its claim expires after claim-ttl if it died).
//  2. MarkDone after EventBridge accepted the entry: SET key "done" EX dedup-ttl.
//  3. Release if the emit failed: delete the key only while it still holds our token (a Lua
//     compare-and-delete), so a claim that expired and was taken over is left alone.
//
// Any Redis error is returned as an error, never as a Result: the caller fails closed (does not
// ack) and retries.
//
// Keys have the form
//
//	<prefix>{<datastoreId>/<resourceType>/<id>}/<versionId>
//
// with each part path-escaped (a no-op for valid FHIR ids), so no part can contain the "/"
// separator or a brace and two identities never share a key. The hash tag covers the resource,
// not the datastore: on Redis Cluster all versions of one resource share a slot while the
// resources of a busy datastore still spread over every shard. Pipelines may span slots; the
// cluster client splits them per node.
package dedup

'use strict';
// One HealthLake datastore, kept in memory: every version of every resource (numbered "1",
// "2", … as HealthLake numbers them; a delete is a version too), a write log per resource type
// for type-level history, and a search index that lags the writes by the visibility delay, as
// HealthLake's search does.
//
// Cost: reads, writes and vreads are O(1) (an update of a resource in the middle of the
// _lastUpdated order shifts the index array, a memmove). Searches binary-search the index on
// (lastUpdated, id), so a _lastUpdated window costs O(log n + k) for k resources in it, and a
// page after a cursor starts where the cursor points. History walks the type's log newest first
// and stops at _since. O(n) paths, all outside the CDC reader's path: filters that cannot
// narrow on _lastUpdated (e.g. `code=…` alone), conditional create/update/delete (they match
// every current resource of the type), and the catch-up of pending writes (O(pending)).

const { Settings, TokenBucket, Stats } = require('./knobs');

class Datastore {
  constructor(id) {
    this.id = id;
    this.settings = new Settings(); // overrides of the global knobs for this datastore
    this.bucket = new TokenBucket();
    this.searchBucket = new TokenBucket();
    this.stats = new Stats();
    this.seq = 0;
    this.lastMs = 0; // lastUpdated of the newest write: stamps never go back
    this.current = new Map(); // resourceType -> Map(id -> { versions: [entry, …] })
    this.logs = new Map(); // resourceType -> { entries: [entry, …] in seq order, monotone }
    this.pending = []; // writes search cannot see yet
    this.nextVisibleAt = Infinity;
    this.index = new Map(); // resourceType -> SortedIndex of newest visible versions
    this.jobs = new Map(); // import job id -> job
  }

  // stamp is the lastUpdated of a write made at `now`: never before an earlier write, so
  // history in write order is also newest-first by time.
  stamp(now) {
    this.lastMs = Math.max(this.lastMs, now);
    return this.lastMs;
  }

  record(type, id) {
    return this.current.get(type)?.get(id);
  }

  // latest returns the newest version entry of a resource, or undefined if never written.
  latest(type, id) {
    const rec = this.record(type, id);
    return rec ? rec.versions[rec.versions.length - 1] : undefined;
  }

  // live returns the current resource, or undefined if it is absent or deleted.
  live(type, id) {
    return this.latest(type, id)?.resource;
  }

  // write appends a new version of type/id: resource (a fresh object the store now owns) for
  // a create/update, undefined for a delete. ms is its lastUpdated (epoch ms). It returns the
  // entry; nothing here waits, so a write is atomic with respect to other requests.
  write(method, type, id, resource, ms, visibleAt) {
    let byId = this.current.get(type);
    if (!byId) {
      byId = new Map();
      this.current.set(type, byId);
    }
    let rec = byId.get(id);
    if (!rec) {
      rec = { versions: [] };
      byId.set(id, rec);
    }
    const prev = rec.versions[rec.versions.length - 1];
    const versionId = String(rec.versions.length + 1);
    const lastUpdated = new Date(ms).toISOString();
    if (resource) {
      resource.id = id;
      resource.meta = { ...resource.meta, versionId, lastUpdated };
    }
    const entry = {
      seq: ++this.seq,
      method, // POST, PUT, PATCH or DELETE, as a history entry's request.method
      created: resource !== undefined && (prev === undefined || prev.resource === undefined),
      type,
      id,
      versionId,
      ms,
      lastUpdated,
      visibleAt,
      resource,
    };
    rec.versions.push(entry);
    let log = this.logs.get(type);
    if (!log) {
      log = { entries: [], monotone: true };
      this.logs.set(type, log);
    }
    const last = log.entries[log.entries.length - 1];
    if (last && last.ms > ms) {
      log.monotone = false; // an import that kept an older lastUpdated: _since cannot stop early
    }
    log.entries.push(entry);
    this.pending.push(entry);
    this.nextVisibleAt = Math.min(this.nextVisibleAt, visibleAt);
    return entry;
  }

  // catchUp moves writes whose delay has passed into the search index. The delay can shrink at
  // runtime, so a later write may become visible first; seq keeps an older write of the same
  // resource from replacing it.
  catchUp(now) {
    if (this.nextVisibleAt > now) {
      return;
    }
    const still = [];
    let next = Infinity;
    for (const e of this.pending) {
      if (e.visibleAt > now) {
        still.push(e);
        next = Math.min(next, e.visibleAt);
        continue;
      }
      let idx = this.index.get(e.type);
      if (!idx) {
        idx = new SortedIndex();
        this.index.set(e.type, idx);
      }
      idx.put(e);
    }
    this.pending = still;
    this.nextVisibleAt = next;
  }

  visibleTypes(now) {
    this.catchUp(now);
    return [...this.index.keys()];
  }

  searchIndex(type, now) {
    this.catchUp(now);
    return this.index.get(type);
  }
}

// compareKey orders entries by (ms, id): the search order, total because ids are unique per type.
function compareKey(ms, id, e) {
  if (ms !== e.ms) return ms < e.ms ? -1 : 1;
  if (id !== e.id) return id < e.id ? -1 : 1;
  return 0;
}

// SortedIndex holds the newest visible version of each resource of one type (deletes
// removed), sorted by (lastUpdated, id).
class SortedIndex {
  constructor() {
    this.rows = [];
    this.byId = new Map();
  }

  // lowerBound is the first position whose key is >= (ms, id); id '' sorts before every id.
  lowerBound(ms, id = '') {
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKey(ms, id, this.rows[mid]) > 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // upperBound is the first position whose key is > (ms, id).
  upperBound(ms, id) {
    let lo = 0;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKey(ms, id, this.rows[mid]) >= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  put(e) {
    const old = this.byId.get(e.id);
    if (old) {
      if (old.seq > e.seq) {
        return;
      }
      this.rows.splice(this.lowerBound(old.ms, old.id), 1);
      this.byId.delete(e.id);
    }
    if (!e.resource) {
      return; // a delete leaves the index
    }
    this.byId.set(e.id, e);
    const last = this.rows[this.rows.length - 1];
    if (!last || compareKey(e.ms, e.id, last) > 0) {
      this.rows.push(e); // the usual case: the newest write sorts last
    } else {
      this.rows.splice(this.lowerBound(e.ms, e.id), 0, e);
    }
  }
}

module.exports = { Datastore, SortedIndex };

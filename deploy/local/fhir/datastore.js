'use strict';
// One HealthLake datastore: medplum's MemoryRepository for create/read/vread/update/delete, plus
// what MemoryRepository lacks and a CDC reader needs — a write log (MemoryRepository records no
// deletes and has no type-level history) and a search index that lags the writes by the
// visibility delay, as HealthLake's search does.

const { MemoryRepository } = require('@medplum/fhir-router');
const { generateId, matchesSearchRequest } = require('@medplum/core');
const { Settings, TokenBucket, Stats } = require('./knobs');

class Datastore {
  constructor(id) {
    this.id = id;
    this.repo = new MemoryRepository();
    this.settings = new Settings(); // overrides of the global knobs for this datastore
    this.bucket = new TokenBucket();
    this.stats = new Stats();
    this.seq = 0;
    this.log = []; // every write in order: source of _history
    this.pending = []; // writes search cannot see yet
    this.index = new Map(); // resourceType -> Map(id -> newest visible write)
  }

  // record appends a write to the log. The server calls it in the same tick as the repository
  // write (MemoryRepository never waits on I/O), so log order is write order.
  // created tells an update that created the resource from one that replaced a version.
  record(method, created, resourceType, id, resource, now, visibilityDelayMs) {
    const entry = {
      seq: ++this.seq,
      method, // POST, PUT or DELETE, as a history entry's request.method
      created,
      type: resourceType,
      id,
      versionId: resource ? resource.meta.versionId : generateId(),
      lastUpdated: resource ? resource.meta.lastUpdated : new Date(now).toISOString(),
      visibleAt: now + visibilityDelayMs,
      resource, // undefined for a delete
    };
    this.log.push(entry);
    this.pending.push(entry);
    return entry;
  }

  // catchUp moves writes whose delay has passed into the search index. The delay can shrink at
  // runtime, so a later write may become visible first; seq keeps an older write of the same
  // resource from replacing it.
  catchUp(now) {
    const still = [];
    for (const e of this.pending) {
      if (e.visibleAt > now) {
        still.push(e);
        continue;
      }
      let byId = this.index.get(e.type);
      if (!byId) {
        byId = new Map();
        this.index.set(e.type, byId);
      }
      const current = byId.get(e.id);
      if (!current || current.seq < e.seq) {
        byId.set(e.id, e);
      }
    }
    this.pending = still;
  }

  // search returns the visible current versions matching the request's filters, unsorted.
  search(searchRequest, now) {
    this.catchUp(now);
    const result = [];
    for (const e of this.index.get(searchRequest.resourceType)?.values() ?? []) {
      if (e.resource && matchesSearchRequest(e.resource, searchRequest)) {
        result.push(e.resource);
      }
    }
    return result;
  }

  // history returns log entries of a type (or one resource) written at or after sinceMs.
  // Type-level history goes through the search index on HealthLake, so it honours the
  // visibility delay; instance history, like read, does not.
  history(resourceType, id, sinceMs, now) {
    return this.log.filter(
      (e) =>
        e.type === resourceType &&
        (id === undefined ? e.visibleAt <= now : e.id === id) &&
        Date.parse(e.lastUpdated) >= sinceMs
    );
  }
}

module.exports = { Datastore };

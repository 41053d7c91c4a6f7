'use strict';
// Searches (type-level and system-level), counts and history, answered from the datastore's
// index and logs without scanning the whole store (see datastore.js for the costs).

const core = require('@medplum/core');
const { fail, HttpError, bundle } = require('./respond');
const { parseCount, encodeCursor, decodeCursor } = require('./paging');

const FHIR_INSTANT = /^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})$/;

// Query parameters that shape the answer rather than filter it.
const SEARCH_CONTROLS = new Set(['_count', '_sort', '_cursor', '_format', '_pretty', '_summary', '_total']);

// instantRange is the time range [start, end) in epoch ms that a _lastUpdated value with a time
// and a zone stands for, by its precision (FHIR search on dates: a value covers its whole
// precision). Values without a time are left to medplum, which owns their zone rule.
function instantRange(value) {
  const m = DATETIME.exec(value);
  if (!m) {
    return undefined;
  }
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const ms = (frac ?? '').padEnd(3, '0').slice(0, 3);
  const start = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}.${ms}${tz}`);
  if (Number.isNaN(start)) {
    return undefined;
  }
  const span = s === undefined ? 60000 : frac === undefined ? 1000 : frac.length === 1 ? 100 : frac.length === 2 ? 10 : 1;
  return [start, start + span];
}

// A lastUpdated (an instant with milliseconds) matches each prefix when its millisecond lies in
// the range below; the index is sorted on it, so these filters become a slice of the index.
const PREFIX_BOUNDS = {
  eq: ([s, e]) => [s, e],
  ge: ([s]) => [s, Infinity],
  gt: ([, e]) => [e, Infinity],
  sa: ([, e]) => [e, Infinity],
  le: ([, e]) => [-Infinity, e],
  lt: ([s]) => [-Infinity, s],
  eb: ([s]) => [-Infinity, s],
};

// plan splits a parsed search into a [lo, hi) slice of the index on lastUpdated and the filters
// left for medplum's matcher (undefined when none are).
function plan(searchRequest) {
  let lo = -Infinity;
  let hi = Infinity;
  const rest = [];
  for (const f of searchRequest.filters ?? []) {
    const range = f.code === '_lastUpdated' && PREFIX_BOUNDS[f.operator] ? instantRange(f.value) : undefined;
    if (!range) {
      rest.push(f);
      continue;
    }
    const [a, b] = PREFIX_BOUNDS[f.operator](range);
    lo = Math.max(lo, a);
    hi = Math.min(hi, b);
  }
  const other = rest.length > 0 ? { resourceType: searchRequest.resourceType, filters: rest } : undefined;
  return { lo, hi, other };
}

// parseFilters checks and parses the filtering parameters of a search of one type. medplum
// would turn an unknown parameter into a filter that silently matches nothing, hiding a client
// bug, so those answer 400.
function parseFilters(type, q, skip = new Set()) {
  const filters = {};
  for (const [key, value] of q) {
    if (SEARCH_CONTROLS.has(key) || skip.has(key)) {
      continue;
    }
    const code = key.split(':')[0];
    if (!core.globalSchema.types[type]?.searchParams?.[code]) {
      throw fail(400, 'not-supported', `unsupported search parameter ${code}`);
    }
    (filters[key] ??= []).push(value);
  }
  try {
    return core.parseSearchRequest(type, filters);
  } catch (err) {
    throw err instanceof core.OperationOutcomeError ? new HttpError(400, err.outcome) : fail(400, 'invalid', 'invalid search');
  }
}

function single(q, name) {
  const values = q.getAll(name);
  if (values.length > 1) {
    throw fail(400, 'invalid', `${name} given more than once`);
  }
  return values.length ? values[0] : null;
}

// controls reads the parameters that shape a search answer. With ignoreCount the server acts
// like a lenient one that does not implement counting: _summary=count, _total and _count=0 are
// ignored, pages carry entries and no total.
function controls(q, config) {
  const summary = single(q, '_summary');
  if (summary !== null && summary !== 'count' && summary !== 'false') {
    throw fail(400, 'not-supported', 'only _summary=count (or false) is supported here');
  }
  const totalMode = single(q, '_total');
  if (totalMode !== null && !['none', 'estimate', 'accurate'].includes(totalMode)) {
    throw fail(400, 'invalid', '_total must be none, estimate or accurate');
  }
  let count = parseCount(single(q, '_count'));
  let countOnly = summary === 'count' || count === 0;
  if (config.ignoreCount) {
    return { count: countOnly ? parseCount(null) : count, countOnly: false, total: 'never' };
  }
  if (countOnly) {
    count = 0;
  }
  // Without _total a first page carries the total and later pages do not: counting every page
  // of a long walk would cost O(n) per page.
  const total = countOnly || totalMode === 'accurate' || totalMode === 'estimate' ? 'always' : totalMode === 'none' ? 'never' : 'first';
  return { count, countOnly, total };
}

function matches(e, other) {
  return other === undefined || core.matchesSearchRequest(e.resource, other);
}

// slice returns the [a, b) positions of the index that a plan's lastUpdated bounds allow.
function slice(idx, p) {
  const a = p.lo === -Infinity ? 0 : idx.lowerBound(p.lo);
  const b = p.hi === Infinity ? idx.rows.length : idx.lowerBound(p.hi);
  return [a, Math.max(a, b)];
}

function countIn(rows, a, b, other) {
  if (other === undefined) {
    return b - a;
  }
  let n = 0;
  for (let i = a; i < b; i++) {
    if (matches(rows[i], other)) n++;
  }
  return n;
}

// searchType answers GET /{type}: a page in (lastUpdated, id) order after the cursor.
function searchType(ctx) {
  const { type } = ctx.params;
  const q = ctx.url.searchParams;
  const c = controls(q, ctx.config);
  const sort = single(q, '_sort') ?? '_lastUpdated';
  if (sort !== '_lastUpdated' && sort !== '-_lastUpdated') {
    throw fail(400, 'not-supported', 'only _sort=_lastUpdated and _sort=-_lastUpdated are supported here');
  }
  const descending = sort.startsWith('-');
  const p = plan(parseFilters(type, q));
  const rawCursor = single(q, '_cursor');
  const cursor = rawCursor === null ? undefined : decodeCursor(rawCursor, ['number', 'string']);
  const idx = ctx.ds.searchIndex(type, Date.now());
  const page = [];
  let total;
  let next;
  if (idx) {
    let [a, b] = slice(idx, p);
    if (c.total === 'always' || (c.total === 'first' && !cursor)) {
      total = countIn(idx.rows, a, b, p.other);
    }
    if (cursor) {
      if (descending) b = Math.min(b, idx.lowerBound(cursor[0], cursor[1]));
      else a = Math.max(a, idx.upperBound(cursor[0], cursor[1]));
    }
    const step = descending ? -1 : 1;
    let more = false;
    for (let i = descending ? b - 1 : a; c.count > 0 && i >= a && i < b; i += step) {
      const e = idx.rows[i];
      if (!matches(e, p.other)) continue;
      if (page.length === c.count) {
        more = true;
        break;
      }
      page.push(e);
    }
    if (more) {
      const last = page[page.length - 1];
      next = encodeCursor([last.ms, last.id]);
    }
  } else if (c.total !== 'never' && !(c.total === 'first' && cursor)) {
    total = 0;
  }
  return finishSearch(ctx, c, total, next, page, [type]);
}

// searchSystem answers GET / with _type (a knob, off by default: HealthLake's support for it is
// not confirmed). Pages are in (lastUpdated, type, id) order, ascending only.
function searchSystem(ctx) {
  if (!ctx.config.systemSearch) {
    throw fail(400, 'not-supported', 'system-level search is not supported (knob systemSearch)');
  }
  const q = ctx.url.searchParams;
  const c = controls(q, ctx.config);
  const sort = single(q, '_sort') ?? '_lastUpdated';
  if (sort !== '_lastUpdated') {
    throw fail(400, 'not-supported', 'system-level search supports only _sort=_lastUpdated');
  }
  const now = Date.now();
  const rawTypes = single(q, '_type');
  const types = rawTypes === null ? ctx.ds.visibleTypes(now).sort() : [...new Set(rawTypes.split(','))].sort();
  for (const t of types) {
    if (!core.isResourceType(t)) {
      throw fail(400, 'not-supported', 'unknown resource type in _type');
    }
  }
  const rawCursor = single(q, '_cursor');
  const cursor = rawCursor === null ? undefined : decodeCursor(rawCursor, ['number', 'string', 'string']);
  let total = c.total === 'never' || (c.total === 'first' && cursor) ? undefined : 0;
  const candidates = [];
  for (const type of types) {
    const p = plan(parseFilters(type, q, new Set(['_type'])));
    const idx = ctx.ds.searchIndex(type, now);
    if (!idx) continue;
    let [a, b] = slice(idx, p);
    if (total !== undefined) {
      total += countIn(idx.rows, a, b, p.other);
    }
    if (cursor) {
      const [ms, ctype, cid] = cursor;
      // Entries after (ms, ctype, cid): a later millisecond, or the same one and a later type or id.
      const from = type < ctype ? idx.lowerBound(ms + 1) : type > ctype ? idx.lowerBound(ms) : idx.upperBound(ms, cid);
      a = Math.max(a, from);
    }
    let taken = 0;
    for (let i = a; i < b && taken <= c.count && c.count > 0; i++) {
      if (matches(idx.rows[i], p.other)) {
        candidates.push(idx.rows[i]);
        taken++;
      }
    }
  }
  candidates.sort((x, y) => x.ms - y.ms || (x.type < y.type ? -1 : x.type > y.type ? 1 : x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const page = candidates.slice(0, c.count);
  let next;
  if (candidates.length > c.count && page.length > 0) {
    const last = page[page.length - 1];
    next = encodeCursor([last.ms, last.type, last.id]);
  }
  return finishSearch(ctx, c, total, next, page, types);
}

function finishSearch(ctx, c, total, next, page, types) {
  const { stats } = ctx.ds;
  for (const s of [ctx.stats, stats]) {
    if (c.countOnly) s.countRequests++;
    s.searchResources += page.length;
  }
  if (types.length === 1) {
    for (const s of [ctx.stats.type(types[0]), stats.type(types[0])]) {
      if (c.countOnly) s.countRequests++;
      s.searchResources += page.length;
    }
  } else {
    for (const e of page) {
      ctx.stats.type(e.type).searchResources++;
      stats.type(e.type).searchResources++;
    }
  }
  return bundle(ctx, 'searchset', {
    total,
    next,
    entry: page.map((e) => ({
      fullUrl: `${ctx.base}/${e.type}/${e.id}`,
      resource: e.resource,
      search: { mode: 'match' },
    })),
  });
}

// history serves type and instance history newest first, as FHIR orders it, from the write
// log. A delete is an entry with request.method DELETE and no resource. Type-level history goes
// through the search index on HealthLake, so it honours the visibility delay; instance
// history, like read, does not.
function history(ctx) {
  const { type, id } = ctx.params;
  if (id === undefined && !ctx.config.typeHistory) {
    throw fail(400, 'not-supported', 'type-level history is not supported (knob typeHistory)');
  }
  const q = ctx.url.searchParams;
  for (const key of q.keys()) {
    if (!['_since', '_count', '_cursor', '_format', '_pretty'].includes(key)) {
      throw fail(400, 'not-supported', `unsupported history parameter ${key}`);
    }
  }
  const rawSince = single(q, '_since');
  if (rawSince !== null && !FHIR_INSTANT.test(rawSince)) {
    throw fail(400, 'invalid', '_since must be a FHIR instant, e.g. 2026-11-20T09:15:00.000Z');
  }
  const since = rawSince === null ? -Infinity : Date.parse(rawSince);
  const count = parseCount(single(q, '_count'));
  const rawCursor = single(q, '_cursor');
  const cursor = rawCursor === null ? undefined : decodeCursor(rawCursor, ['number'])[0];
  const now = Date.now();

  let entries;
  let monotone = true;
  let visible = () => true;
  if (id === undefined) {
    const log = ctx.ds.logs.get(type);
    entries = log ? log.entries : [];
    monotone = log ? log.monotone : true;
    visible = (e) => e.visibleAt <= now;
  } else {
    const rec = ctx.ds.record(type, id);
    if (!rec) {
      throw fail(404, 'not-found', 'resource not found');
    }
    entries = rec.versions;
  }
  // entries are in seq order: the cursor (a seq) is found by binary search.
  let start = entries.length - 1;
  if (cursor !== undefined) {
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (entries[mid].seq < cursor) lo = mid + 1;
      else hi = mid;
    }
    start = lo - 1;
  }
  const page = [];
  let more = false;
  let total = cursor === undefined ? 0 : undefined;
  for (let i = start; i >= 0; i--) {
    const e = entries[i];
    if (e.ms < since) {
      if (monotone) break; // every older entry is older still
      continue;
    }
    if (!visible(e)) continue;
    if (total !== undefined) total++;
    if (page.length < count) {
      page.push(e);
    } else {
      more = true;
      if (total === undefined) break;
    }
  }
  for (const s of [ctx.stats, ctx.ds.stats, ctx.stats.type(type), ctx.ds.stats.type(type)]) {
    s.historyEntries += page.length;
  }
  const next = more && page.length > 0 ? encodeCursor([page[page.length - 1].seq]) : undefined;
  return bundle(ctx, 'history', { total, next, entry: page.map((e) => historyEntry(ctx.base, e)) });
}

function historyEntry(base, e) {
  const response = { etag: `W/"${e.versionId}"`, lastModified: e.lastUpdated };
  const fullUrl = `${base}/${e.type}/${e.id}`;
  if (e.method === 'DELETE') {
    return {
      fullUrl,
      request: { method: 'DELETE', url: `${e.type}/${e.id}` },
      response: { status: '204 No Content', ...response },
    };
  }
  return {
    fullUrl,
    resource: e.resource,
    request: { method: e.method, url: e.method === 'POST' ? e.type : `${e.type}/${e.id}` },
    response: { status: e.created ? '201 Created' : '200 OK', ...response },
  };
}

module.exports = { searchType, searchSystem, history, parseFilters, instantRange, plan, single, FHIR_INSTANT };

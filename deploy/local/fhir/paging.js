'use strict';
// Keyset paging for searchsets and history bundles. MemoryRepository returns no paging links,
// and offset paging would skip or repeat entries when writes land between two pages. Instead a
// page ends at the sort key of its last entry, and the next link carries that key as an opaque
// cursor: the next page starts strictly after it. Entries written meanwhile sort after the
// cursor (their lastUpdated is newer), so a walk never repeats or skips an entry that stayed
// put; a resource updated during the walk moves to the end and shows up again with its new
// version, which is what a change-data-capture reader wants.

const MAX_COUNT = 100; // HealthLake's _count maximum

class PagingError extends Error {}

// parseCount reads _count: absent means the maximum, larger values are capped like HealthLake.
function parseCount(raw) {
  if (raw === null) {
    return MAX_COUNT;
  }
  if (!/^\d+$/.test(raw)) {
    throw new PagingError('_count must be a non-negative integer');
  }
  return Math.min(Number(raw), MAX_COUNT);
}

function encodeCursor(key) {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

function decodeCursor(token) {
  try {
    const key = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length > 0) {
      return key;
    }
  } catch {
    // fall through: any malformed cursor gets the same answer
  }
  throw new PagingError('invalid _cursor');
}

function compareKeys(a, b) {
  for (let i = 0; i < a.length; i++) {
    if (a[i] < b[i]) return -1;
    if (a[i] > b[i]) return 1;
  }
  return 0;
}

// paginate sorts items by keyOf (a tuple of strings or numbers) and returns the page after the
// cursor, with the cursor for the following page when more items remain.
function paginate(items, keyOf, { count, cursor, descending }) {
  const sign = descending ? -1 : 1;
  const sorted = items.slice().sort((x, y) => sign * compareKeys(keyOf(x), keyOf(y)));
  let start = 0;
  if (cursor !== null) {
    const after = decodeCursor(cursor);
    start = sorted.findIndex((x) => sign * compareKeys(keyOf(x), after) > 0);
    if (start < 0) {
      start = sorted.length;
    }
  }
  const page = sorted.slice(start, start + count);
  const more = count > 0 && sorted.length > start + count;
  return { page, total: items.length, next: more ? encodeCursor(keyOf(page[page.length - 1])) : undefined };
}

// links builds self and next links from the request URL, so they keep its scheme, host, base
// path and every query parameter; only _cursor changes.
function links(requestUrl, next) {
  const result = [{ relation: 'self', url: requestUrl.href }];
  if (next !== undefined) {
    const url = new URL(requestUrl.href);
    url.searchParams.delete('_cursor');
    url.searchParams.append('_cursor', next);
    result.push({ relation: 'next', url: url.href });
  }
  return result;
}

module.exports = { MAX_COUNT, PagingError, parseCount, paginate, links };

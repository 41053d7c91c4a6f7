'use strict';
// Keyset paging for searchsets and history bundles. Offset paging would skip or repeat entries
// when writes land between two pages. Instead a page ends at the sort key of its last entry,
// and the next link carries that key as an opaque cursor: the next page starts strictly after
// it. Entries written meanwhile sort after the cursor (their lastUpdated is newer), so a walk
// never repeats or skips an entry that stayed put; a resource updated during the walk moves to
// the end and shows up again with its new version, which is what a change-data-capture reader
// wants.

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

// decodeCursor returns the key tuple; shape checks which element types the caller expects.
function decodeCursor(token, shape) {
  try {
    const key = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === shape.length && key.every((k, i) => typeof k === shape[i])) {
      return key;
    }
  } catch {
    // fall through: any malformed cursor gets the same answer
  }
  throw new PagingError('invalid _cursor');
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

module.exports = { MAX_COUNT, PagingError, parseCount, encodeCursor, decodeCursor, links };

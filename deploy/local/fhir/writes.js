'use strict';
// Writes: create, update, PATCH (JSON Patch), delete, their conditional forms, batch and
// transaction Bundles, and imports. Each write is first prepared (checked against the current
// state, nothing changed) and then applied; nothing in between waits on I/O, so a single write,
// and all writes of a transaction, are atomic with respect to other requests.

const core = require('@medplum/core');
const rfc6902 = require('rfc6902');
const { fail, HttpError, isObject, outcome } = require('./respond');
const { parseFilters } = require('./search');

const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;
const STATUS_TEXT = { 200: '200 OK', 201: '201 Created', 204: '204 No Content' };

function resourceBody(body, type) {
  if (!isObject(body) || body.resourceType !== type) {
    throw fail(400, 'invalid', `body must be a ${type} resource`);
  }
  return body;
}

// fresh copies a client's resource without the fields the server assigns.
function fresh(body) {
  const r = structuredClone(body);
  if (isObject(r.meta)) {
    delete r.meta.versionId;
    delete r.meta.lastUpdated;
  }
  return r;
}

// ifMatch checks an If-Match header (W/"n" or "n") against the current version.
function checkIfMatch(header, latest) {
  if (header === undefined || header === null || header === '') {
    return;
  }
  const want = String(header).replace(/^W\//, '').replace(/"/g, '');
  if (!latest?.resource || latest.versionId !== want) {
    throw fail(412, 'conflict', 'If-Match does not name the current version');
  }
}

// matchCurrent returns up to two current resources of type matching a conditional query. It
// looks at every current resource of the type (O(n)) and ignores the visibility delay.
function matchCurrent(ds, type, query) {
  const q = new URLSearchParams(query);
  if ([...q.keys()].length === 0) {
    throw fail(400, 'invalid', 'a conditional request needs search parameters');
  }
  const request = parseFilters(type, q);
  const found = [];
  for (const rec of ds.current.get(type)?.values() ?? []) {
    const r = rec.versions[rec.versions.length - 1].resource;
    if (r && core.matchesSearchRequest(r, request)) {
      found.push(r);
      if (found.length > 1) break;
    }
  }
  return found;
}

// prepare turns one request into a write to apply, or throws an HttpError. target is
// { type, id?, query? }; headers has ifMatch / ifNoneExist; patch is a parsed JSON Patch.
function prepare(ds, method, target, body, headers = {}) {
  const { type, id, query } = target;
  if (!core.isResourceType(type)) {
    throw fail(404, 'not-supported', 'unknown resource type');
  }
  if (id !== undefined && !FHIR_ID.test(id)) {
    throw fail(400, 'invalid', 'invalid id');
  }
  switch (method) {
    case 'POST': {
      if (id !== undefined) {
        throw fail(400, 'invalid', 'POST goes to a resource type, not an id');
      }
      const resource = fresh(resourceBody(body, type));
      if (headers.ifNoneExist) {
        const found = matchCurrent(ds, type, headers.ifNoneExist);
        if (found.length > 1) throw fail(412, 'duplicate', 'If-None-Exist matches more than one resource');
        if (found.length === 1) return { method, type, id: found[0].id, existing: found[0], status: 200 };
      }
      return { method, type, id: core.generateId(), resource, status: 201 };
    }
    case 'PUT': {
      const resource = fresh(resourceBody(body, type));
      let targetId = id;
      if (targetId === undefined) {
        const found = matchCurrent(ds, type, query ?? '');
        if (found.length > 1) throw fail(412, 'duplicate', 'the conditional update matches more than one resource');
        targetId = found.length === 1 ? found[0].id : resource.id ?? core.generateId();
        if (resource.id !== undefined && resource.id !== targetId) {
          throw fail(400, 'invalid', 'resource id does not match the resolved id');
        }
      } else if (resource.id !== undefined && resource.id !== targetId) {
        throw fail(400, 'invalid', 'resource id does not match the URL');
      }
      if (!FHIR_ID.test(targetId)) {
        throw fail(400, 'invalid', 'invalid id');
      }
      const latest = ds.latest(type, targetId);
      checkIfMatch(headers.ifMatch, latest);
      return { method, type, id: targetId, resource, status: latest?.resource ? 200 : 201 };
    }
    case 'PATCH': {
      if (id === undefined) {
        throw fail(400, 'not-supported', 'conditional PATCH is not supported here');
      }
      const latest = ds.latest(type, id);
      if (!latest?.resource) {
        throw fail(404, 'not-found', 'resource not found');
      }
      checkIfMatch(headers.ifMatch, latest);
      if (!Array.isArray(body) || !body.every(isObject)) {
        throw fail(400, 'invalid', 'a JSON Patch body is an array of operations');
      }
      const resource = structuredClone(latest.resource);
      let results;
      try {
        results = rfc6902.applyPatch(resource, body);
      } catch {
        throw fail(422, 'processing', 'the patch cannot be applied');
      }
      if (results.some(Boolean)) {
        throw fail(422, 'processing', 'the patch cannot be applied'); // a failed test op or a bad path
      }
      if (resource.resourceType !== type || resource.id !== id) {
        throw fail(400, 'invalid', 'a patch may not change resourceType or id');
      }
      return { method, type, id, resource: fresh(resource), status: 200 };
    }
    case 'DELETE': {
      let targetId = id;
      if (targetId === undefined) {
        const found = matchCurrent(ds, type, query ?? '');
        if (found.length > 1) throw fail(412, 'duplicate', 'the conditional delete matches more than one resource');
        if (found.length === 0) throw fail(404, 'not-found', 'no resource matches');
        targetId = found[0].id;
      }
      const latest = ds.latest(type, targetId);
      if (!latest) {
        throw fail(404, 'not-found', 'resource not found');
      }
      // HealthLake: a delete of a deleted resource answers 204 and changes nothing.
      return { method, type, id: targetId, resource: undefined, status: 204, noop: !latest.resource };
    }
    default:
      throw fail(405, 'not-supported', 'method not supported');
  }
}

// apply writes a prepared op and returns what to answer: { status, resource?, entry? }.
function apply(ds, config, op, now) {
  if (op.existing) {
    return { status: op.status, resource: op.existing };
  }
  if (op.noop) {
    return { status: 204, entry: ds.latest(op.type, op.id) };
  }
  const ms = ds.stamp(now);
  const entry = ds.write(op.method, op.type, op.id, op.resource, ms, ms + config.visibilityDelayMs);
  return { status: op.status, resource: entry.resource, entry };
}

// --- Bundles -----------------------------------------------------------------------------------

// entryTarget reads an entry's request.url: "Type", "Type/id" or "Type?query", relative or under
// this datastore's base.
function entryTarget(base, raw) {
  let url = String(raw ?? '');
  if (url.startsWith(base + '/')) url = url.slice(base.length + 1);
  const [path, query] = url.split('?', 2);
  const parts = path.split('/').filter(Boolean);
  if (parts.length === 0 || parts.length > 2) {
    throw fail(400, 'invalid', 'entry request.url must be Type, Type/id or Type?query');
  }
  return { type: parts[0], id: parts[1], query };
}

// entryPatch reads a PATCH entry's body: a Binary holding a JSON Patch, as FHIR carries patches
// in Bundles. FHIRPath Patch (a Parameters resource) is not supported here.
function entryPatch(resource) {
  if (!isObject(resource) || resource.resourceType !== 'Binary' || resource.contentType !== 'application/json-patch+json') {
    throw fail(400, 'not-supported', 'a PATCH entry must carry a Binary with contentType application/json-patch+json');
  }
  try {
    return JSON.parse(Buffer.from(String(resource.data ?? ''), 'base64').toString('utf8'));
  } catch {
    throw fail(400, 'structure', 'the Binary does not hold JSON');
  }
}

function prepareEntry(ds, base, e) {
  if (!isObject(e) || !isObject(e.request)) {
    throw fail(400, 'invalid', 'every entry needs a request');
  }
  const method = String(e.request.method ?? '').toUpperCase();
  if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) {
    throw fail(400, 'not-supported', 'entries may be POST, PUT, PATCH or DELETE');
  }
  const target = entryTarget(base, e.request.url);
  const body = method === 'PATCH' ? entryPatch(e.resource) : e.resource;
  return prepare(ds, method, target, body, { ifMatch: e.request.ifMatch, ifNoneExist: e.request.ifNoneExist });
}

// rewriteRefs replaces references to a transaction's urn:uuid fullUrls with Type/id.
function rewriteRefs(node, ids) {
  if (Array.isArray(node)) {
    node.forEach((n) => rewriteRefs(n, ids));
  } else if (isObject(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'reference' && typeof v === 'string' && ids.has(v)) node[k] = ids.get(v);
      else rewriteRefs(v, ids);
    }
  }
}

function responseEntry(result) {
  const response = { status: STATUS_TEXT[result.status] ?? String(result.status) };
  const v = result.entry ?? (result.resource && { type: result.resource.resourceType, id: result.resource.id, versionId: result.resource.meta.versionId, lastUpdated: result.resource.meta.lastUpdated });
  if (v) {
    if (result.status !== 204) response.location = `${v.type}/${v.id}/_history/${v.versionId}`;
    response.etag = `W/"${v.versionId}"`;
    response.lastModified = v.lastUpdated;
  }
  return { response };
}

function errorEntry(err) {
  if (!(err instanceof HttpError)) throw err;
  return { response: { status: String(err.status), outcome: err.outcome } };
}

// processBundle runs a batch (each entry on its own, in order) or a transaction (every entry
// checked against the state before the Bundle, then all applied, or none if any check fails).
function processBundle(ds, config, base, body, now) {
  if (!isObject(body) || body.resourceType !== 'Bundle' || !['batch', 'transaction'].includes(body.type)) {
    throw fail(400, 'invalid', 'POST to the base takes a Bundle of type batch or transaction');
  }
  const entries = body.entry ?? [];
  if (!Array.isArray(entries)) {
    throw fail(400, 'invalid', 'Bundle.entry must be an array');
  }
  if (body.type === 'batch') {
    const out = entries.map((e) => {
      try {
        return responseEntry(apply(ds, config, prepareEntry(ds, base, e), now));
      } catch (err) {
        return errorEntry(err);
      }
    });
    return { type: 'batch-response', entry: out, count: entries.length };
  }
  const ops = entries.map((e) => prepareEntry(ds, base, e)); // throws: nothing written
  const ids = new Map();
  entries.forEach((e, i) => {
    if (ops[i].method === 'POST' && typeof e.fullUrl === 'string' && e.fullUrl.startsWith('urn:uuid:')) {
      ids.set(e.fullUrl, `${ops[i].type}/${ops[i].id}`);
    }
  });
  if (ids.size > 0) {
    ops.forEach((op) => op.resource && rewriteRefs(op.resource, ids));
  }
  return { type: 'transaction-response', entry: ops.map((op) => responseEntry(apply(ds, config, op, now))), count: ops.length };
}

// --- Imports -----------------------------------------------------------------------------------

const JOB_STATUSES = ['SUBMITTED', 'QUEUED', 'IN_PROGRESS', 'COMPLETED_WITH_ERRORS', 'COMPLETED', 'FAILED'];

// runImport writes resources the way a HealthLake import would: each with its own id (a new
// version if it exists), without per-resource API calls. meta.lastUpdated is the import time,
// or the source's when importKeepsLastUpdated is on. The job's SubmitTime is taken before the
// first write and its EndTime after the last.
function runImport(ds, config, body, clock = Date.now) {
  let resources = body.resources;
  if (body.ndjson !== undefined) {
    if (typeof body.ndjson !== 'string') throw fail(400, 'invalid', 'ndjson must be a string');
    resources = body.ndjson.split('\n').filter((l) => l.trim() !== '').map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return undefined; // counted as a customer error, as HealthLake's manifest does
      }
    });
  }
  if (!Array.isArray(resources)) {
    throw fail(400, 'invalid', 'give "resources" (an array) or "ndjson" (a string)');
  }
  if (body.jobStatus !== undefined && !JOB_STATUSES.includes(body.jobStatus)) {
    throw fail(400, 'invalid', `jobStatus must be one of ${JOB_STATUSES.join(', ')}`);
  }
  const keep = body.importKeepsLastUpdated ?? config.importKeepsLastUpdated;
  const jobId = require('node:crypto').randomBytes(16).toString('hex');
  const submit = clock();
  let imported = 0;
  let errors = 0;
  let lastStamp = submit;
  for (const r of resources) {
    if (!isObject(r) || typeof r.resourceType !== 'string' || !core.isResourceType(r.resourceType) || (r.id !== undefined && !FHIR_ID.test(String(r.id)))) {
      errors++;
      continue;
    }
    const now = clock();
    const source = keep && isObject(r.meta) ? Date.parse(r.meta.lastUpdated) : NaN;
    const ms = Number.isNaN(source) ? ds.stamp(now) : source;
    lastStamp = Math.max(lastStamp, ds.lastMs);
    const method = ds.live(r.resourceType, r.id) ? 'PUT' : 'POST';
    ds.write(method, r.resourceType, r.id === undefined ? core.generateId() : String(r.id), fresh(r), ms, now + config.visibilityDelayMs);
    imported++;
  }
  const end = Math.max(clock(), lastStamp);
  const status = body.jobStatus ?? (errors > 0 ? 'COMPLETED_WITH_ERRORS' : 'COMPLETED');
  const job = {
    JobId: jobId,
    JobName: typeof body.jobName === 'string' ? body.jobName : `local-import-${jobId.slice(0, 8)}`,
    JobStatus: status,
    SubmitTime: submit,
    EndTime: end,
    DatastoreId: ds.id,
    InputDataConfig: { S3Uri: `s3://local-import-input/${jobId}/` },
    JobOutputDataConfig: {
      S3Configuration: { S3Uri: `s3://local-import-output/${ds.id}-FHIR_IMPORT-${jobId}/`, KmsKeyId: 'arn:aws:kms:us-east-1:000000000000:key/local' },
    },
    DataAccessRoleArn: 'arn:aws:iam::000000000000:role/local-healthlake-import',
    JobProgressReport: {
      TotalNumberOfScannedFiles: 1,
      TotalNumberOfImportedFiles: errors === resources.length && errors > 0 ? 0 : 1,
      TotalNumberOfResourcesScanned: resources.length,
      TotalNumberOfResourcesImported: imported,
      TotalNumberOfResourcesWithCustomerError: errors,
      TotalNumberOfFilesReadWithCustomerError: errors > 0 ? 1 : 0,
    },
  };
  ds.jobs.set(jobId, job);
  return { job, imported, errors };
}

module.exports = { prepare, apply, processBundle, runImport, outcome };

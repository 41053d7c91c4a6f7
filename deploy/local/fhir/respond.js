'use strict';
// Request bodies in, FHIR answers out, and the one error type every handler throws. Nothing
// here puts request data in a log line or an error message: JSON.parse's message quotes the
// body, so it is never passed on.

const core = require('@medplum/core');
const { links } = require('./paging');

const MAX_BODY_BYTES = 10 << 20;
const FHIR_JSON = 'application/fhir+json; charset=utf-8';

// HttpError carries an OperationOutcome and its status to the one place that answers errors.
class HttpError extends Error {
  constructor(status, outcome, headers = {}) {
    super(outcome.issue?.[0]?.diagnostics ?? outcome.issue?.[0]?.details?.text ?? 'error');
    this.status = status;
    this.outcome = outcome;
    this.headers = headers;
  }
}

function outcome(code, diagnostics) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] };
}

function fail(status, code, diagnostics, headers) {
  return new HttpError(status, outcome(code, diagnostics), headers);
}

function readText(req) {
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
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

// parseJson returns undefined for an empty text.
function parseJson(text) {
  if (text.trim() === '') {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw fail(400, 'structure', 'body is not valid JSON');
  }
}

async function readBody(req) {
  return parseJson(await readText(req));
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function send(res, status, contentType, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendJson(res, status, body, headers) {
  send(res, status, 'application/json; charset=utf-8', body, headers);
}

function versionHeaders(resource) {
  return { ETag: `W/"${resource.meta.versionId}"`, 'Last-Modified': new Date(resource.meta.lastUpdated).toUTCString() };
}

function sendResource(ctx, status, resource) {
  const headers = versionHeaders(resource);
  if (status === 201) {
    headers.Location = `${ctx.base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
  }
  send(ctx.res, status, FHIR_JSON, resource, headers);
}

// bundle builds a Bundle; total undefined leaves it out, as FHIR allows.
function bundle(ctx, type, { total, next, entry, link = true }) {
  const b = { resourceType: 'Bundle', id: core.generateId(), type };
  if (total !== undefined) {
    b.total = total;
  }
  if (link) {
    b.link = links(ctx.url, next);
  }
  if (entry && entry.length > 0) {
    b.entry = entry; // FHIR JSON has no empty arrays
  }
  return b;
}

module.exports = {
  FHIR_JSON,
  HttpError,
  outcome,
  fail,
  readText,
  parseJson,
  readBody,
  isObject,
  send,
  sendJson,
  sendResource,
  versionHeaders,
  bundle,
};

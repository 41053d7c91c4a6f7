'use strict';
// HealthLake's control plane as the AWS SDK calls it: JSON 1.0 at POST / with an X-Amz-Target
// header, on the same host as the FHIR API, so AWS_ENDPOINT_URL_HEALTHLAKE can point at this
// server. Only DescribeFHIRImportJob is served; requests are not signature-checked. Errors use
// the shape the SDK's deserializer reads: a "__type" naming the exception and a "message".

const { readText } = require('./respond');

const JSON10 = 'application/x-amz-json-1.0';

function sendAws(res, status, body, errorType) {
  const text = JSON.stringify(body);
  const headers = { 'Content-Type': JSON10, 'Content-Length': Buffer.byteLength(text) };
  if (errorType) headers['X-Amzn-ErrorType'] = errorType;
  res.writeHead(status, headers);
  res.end(text);
}

function awsError(res, status, type, message) {
  sendAws(res, status, { __type: `com.amazonaws.healthlake#${type}`, message }, type);
}

// epochSeconds is how awsJson1_0 carries a timestamp: seconds as a JSON number.
const epochSeconds = (ms) => ms / 1000;

async function controlPlane(req, res, lookup) {
  const target = String(req.headers['x-amz-target']);
  const text = await readText(req);
  let body;
  try {
    body = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    return awsError(res, 400, 'ValidationException', 'request body is not valid JSON');
  }
  if (target !== 'HealthLake.DescribeFHIRImportJob') {
    return awsError(res, 400, 'UnknownOperationException', 'the local HealthLake serves only DescribeFHIRImportJob');
  }
  if (typeof body?.DatastoreId !== 'string' || typeof body?.JobId !== 'string') {
    return awsError(res, 400, 'ValidationException', 'DatastoreId and JobId are required');
  }
  const job = lookup(body.DatastoreId)?.jobs.get(body.JobId);
  if (!job) {
    return awsError(res, 400, 'ResourceNotFoundException', 'import job not found');
  }
  sendAws(res, 200, { ImportJobProperties: { ...job, SubmitTime: epochSeconds(job.SubmitTime), EndTime: epochSeconds(job.EndTime) } });
}

module.exports = { controlPlane };

#!/usr/bin/env node
// Local DynamoDB for the stack (KCL leases): dynalite, in memory, bound to 127.0.0.1 only.
// Table state changes are immediate so tests need not wait for ACTIVE.
'use strict'

const dynalite = require('dynalite')

const host = '127.0.0.1'
const port = Number(process.env.CDC_LOCAL_DYNAMODB_PORT || 14568)

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })

server.on('error', (err) => {
  console.error(`dynamodb (dynalite): ${err.message}`)
  process.exit(1)
})

server.listen(port, host, () => {
  console.log(`dynamodb (dynalite) listening on ${host}:${server.address().port}`)
})

function stop (signal) {
  console.log(`dynamodb (dynalite): ${signal}, stopping`)
  // dynalite's close() waits up to 30 s for open connections; the data is in memory anyway.
  setTimeout(() => process.exit(0), 2000).unref()
  server.close(() => process.exit(0))
  if (server.closeAllConnections) server.closeAllConnections()
}
// A client that dies mid-request (a SIGKILLed worker) aborts its request; the library rethrows
// that from the request's error handler, which would take the whole server down with it.
// Only that error is survived: anything else still ends the process.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error(`dynamodb (dynalite): a client aborted a request (${err.code || err.message}); serving on`)
    return
  }
  console.error(err)
  process.exit(1)
})
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))

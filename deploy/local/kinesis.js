#!/usr/bin/env node
// Local Kinesis for the stack: kinesalite, in memory, bound to 127.0.0.1 only (its CLI binds
// every interface). Stream state changes are immediate so tests need not wait for ACTIVE.
'use strict'

const kinesalite = require('kinesalite')

const host = '127.0.0.1'
const port = Number(process.env.CDC_LOCAL_KINESIS_PORT || 14567)

const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 64 })

server.on('error', (err) => {
  console.error(`kinesis (kinesalite): ${err.message}`)
  process.exit(1)
})

server.listen(port, host, () => {
  console.log(`kinesis (kinesalite) listening on ${host}:${server.address().port}`)
})

function stop (signal) {
  console.log(`kinesis (kinesalite): ${signal}, stopping`)
  // Open keep-alive connections would hold close() open; the data is in memory anyway.
  setTimeout(() => process.exit(0), 2000).unref()
  server.close(() => process.exit(0))
  if (server.closeAllConnections) server.closeAllConnections()
}
// A client that dies mid-request (a SIGKILLed worker) aborts its request; the library rethrows
// that from the request's error handler, which would take the whole server down with it.
// Only that error is survived: anything else still ends the process.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error(`kinesis (kinesalite): a client aborted a request (${err.code || err.message}); serving on`)
    return
  }
  console.error(err)
  process.exit(1)
})
process.on('SIGTERM', () => stop('SIGTERM'))
process.on('SIGINT', () => stop('SIGINT'))

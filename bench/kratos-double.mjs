import { createServer } from 'node:http'

/**
 * The benchmark's Kratos: answers 204 to every revocation — at once, or after KRATOS_LATENCY_MS — in a
 * process of its own so that its CPU time is its own. Counts the revocations
 * (`DELETE /admin/identities/{id}/sessions`), when the first and the last arrived, and when each
 * identity's arrived (µs of the monotonic clock every process of the machine shares). The parent asks
 * over IPC: 'reset', 'report' for { count, first, last } (ms), or 'arrivals' for { [id]: µs } (then
 * forgotten).
 */
const latency = Number(process.env.KRATOS_LATENCY_MS ?? 0)
let count = 0
let first = 0
let last = 0
let arrivals = {}
const server = createServer((req, res) => {
  if (req.method === 'DELETE' && req.url?.startsWith('/admin/identities/') === true) {
    arrivals[req.url.split('/')[3]] = Number(process.hrtime.bigint() / 1000n)
    last = performance.timeOrigin + performance.now()
    if (count++ === 0) first = last
  }
  req.resume()
  if (req.method === 'GET' && req.url?.startsWith('/admin/identities') === true) {
    // The relay's proof that this is Kratos' admin API: a JSON list.
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]')
    return
  }
  if (latency > 0) setTimeout(() => res.writeHead(204).end(), latency)
  else res.writeHead(204).end()
})
server.keepAliveTimeout = 30_000
server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }))
process.on('message', (message) => {
  if (message === 'arrivals') {
    process.send?.(arrivals)
    arrivals = {}
    return
  }
  if (message === 'reset') {
    count = first = last = 0
    arrivals = {}
  }
  process.send?.({ count, first, last })
})
process.on('disconnect', () => process.exit(0))

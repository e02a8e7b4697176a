import { createServer } from 'node:http'

/**
 * The benchmark's Kratos: answers 204 at once to everything, in a process of its own so that its CPU
 * time is its own. Counts the revocations (`DELETE /admin/identities/{id}/sessions`) and when the first
 * and the last arrived; the parent asks over IPC: 'reset', or 'report' for { count, first, last } (ms).
 */
let count = 0
let first = 0
let last = 0
const server = createServer((req, res) => {
  if (req.method === 'DELETE' && req.url?.startsWith('/admin/identities/') === true) {
    last = performance.timeOrigin + performance.now()
    if (count++ === 0) first = last
  }
  req.resume()
  res.writeHead(204).end()
})
server.keepAliveTimeout = 30_000
server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }))
process.on('message', (message) => {
  if (message === 'reset') count = first = last = 0
  process.send?.({ count, first, last })
})
process.on('disconnect', () => process.exit(0))

import { connect } from 'node:net'
import t from 'tap'
import { build } from '../helper.js'

t.test('a request whose body has not arrived within REQUEST_TIMEOUT is answered 408 and closed', async (t) => {
  const relay = await build(t, { env: { REQUEST_TIMEOUT: '1000' } })
  await relay.app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = relay.app.server.address() as { port: number }
  const socket = connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  let answer = ''
  socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1') })
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())))
  socket.on('error', () => {})
  await new Promise((resolve) => socket.once('connect', resolve))
  const started = Date.now()
  socket.write('POST /backchannel-logout HTTP/1.1\r\nHost: relay\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n')
  // One byte now and then, as a slow-loris client sends: never the whole body.
  const drip = setInterval(() => { if (!socket.destroyed) socket.write('x') }, 200)
  t.teardown(() => clearInterval(drip))
  const closedAt = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 5000))])
  clearInterval(drip)
  t.not(closedAt, -1, 'the connection was closed')
  const elapsed = closedAt - started
  t.ok(elapsed >= 900 && elapsed <= 2500, `after the timeout, not long past it (${elapsed} ms)`)
  t.match(answer, /^HTTP\/1\.1 408 /, 'with 408 Request Timeout')
})

t.test('a request that arrives in time is not affected', async (t) => {
  const relay = await build(t, { env: { REQUEST_TIMEOUT: '1000' } })
  const url = await relay.app.listen({ port: 0, host: '127.0.0.1' })
  const response = await fetch(`${url}/health/alive`)
  t.equal(response.status, 200)
})

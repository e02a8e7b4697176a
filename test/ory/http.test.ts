import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { TransportError, createOryTransport, type OryResponse, type OryTransport } from '../../src/ory/http.js'
import { eventually } from '../helper.js'
import { freePort } from '../helpers/redis.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const tlsFixture = (name: string): string => fileURLToPath(new URL(`../fixtures/tls/${name}`, import.meta.url))

/** A Node HTTP server that counts the connections it was opened, and those open now. */
interface CountingServer {
  url: string
  connections: number
  open: Set<Socket>
  requests: IncomingMessage[]
  close: () => Promise<void>
}

async function listen<S extends Server | TcpServer> (server: S): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  return typeof address === 'object' && address !== null ? address.port : 0
}

async function httpServer (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void, keepAliveTimeout = 5000): Promise<CountingServer> {
  const requests: IncomingMessage[] = []
  const server = createServer((req, res) => {
    requests.push(req)
    handler(req, res)
  })
  server.keepAliveTimeout = keepAliveTimeout
  const counting: CountingServer = {
    url: '',
    connections: 0,
    open: new Set(),
    requests,
    close: async () => {
      for (const socket of counting.open) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
  server.on('connection', (socket: Socket) => {
    counting.connections++
    counting.open.add(socket)
    socket.on('close', () => counting.open.delete(socket))
  })
  counting.url = `http://127.0.0.1:${await listen(server)}`
  t.teardown(counting.close)
  return counting
}

/** A raw TCP server that answers each request's bytes with whatever `answer` writes; counts its connections. */
async function rawServer (t: Test, answer: (socket: Socket, request: string) => void): Promise<{ url: string, connections: () => number }> {
  const sockets = new Set<Socket>()
  let connections = 0
  const server = createTcpServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.on('data', (chunk) => answer(socket, chunk.toString('latin1')))
  })
  const port = await listen(server)
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${port}`, connections: () => connections }
}

function transport (t: Test, url: string, options: Partial<Parameters<typeof createOryTransport>[1]> = {}): OryTransport {
  const created = createOryTransport(url, { timeoutMs: 2000, ...options })
  t.teardown(() => created.close())
  return created
}

async function failure (promise: Promise<OryResponse>): Promise<string> {
  try {
    await promise
    return 'answered'
  } catch (err) {
    if (err instanceof TransportError) return err.code
    throw err
  }
}

const DELETE = (url: string): Parameters<OryTransport['send']>[0] => ({ url, options: { method: 'DELETE' } })

t.test('the request goes out as built: method, path under the base path, Host, headers, JSON body', async (t) => {
  const server = await httpServer(t, (req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      method: req.method, url: req.url, host: req.headers.host, accept: req.headers.accept, type: req.headers['content-type'], authorization: req.headers.authorization, body
    })))
  })
  const send = transport(t, `${server.url}/base/`).send
  const answer = await send({ url: '/admin/x?y=1', options: { method: 'PATCH', headers: { Authorization: 'Bearer secret', 'X-Unset': undefined }, data: { a: 1 } } })
  t.equal(answer.status, 200)
  t.same(JSON.parse(answer.body), {
    method: 'PATCH',
    url: '/base/admin/x?y=1',
    host: new URL(server.url).host,
    accept: 'application/json',
    type: 'application/json',
    authorization: 'Bearer secret',
    body: '{"a":1}'
  })
  const get = JSON.parse((await send({ url: '/y', options: {} })).body) as { method: string, type?: string }
  t.same([get.method, get.type], ['GET', undefined], 'GET by default, and no content type without a body')
})

t.test('a header or path that could split the request is refused, and nothing is sent', async (t) => {
  const server = await httpServer(t, (_req, res) => res.writeHead(204).end())
  const send = transport(t, server.url).send
  t.equal(await failure(send({ url: '/x', options: { headers: { Authorization: 'Bearer a\r\nX-Injected: 1' } } })), 'EINVALIDREQUEST')
  t.equal(await failure(send({ url: '/x', options: { headers: { 'Bad Name': 'x' } } })), 'EINVALIDREQUEST')
  t.equal(await failure(send({ url: '/x', options: { headers: { Authorization: 'Bearer clé' } } })), 'EINVALIDREQUEST', 'header values are ASCII')
  t.equal(await failure(send({ url: '/x HTTP/1.1\r\nX: y', options: {} })), 'EINVALIDREQUEST')
  t.equal(await failure(send({ url: '/x', options: { method: 'GET /y' } })), 'EINVALIDREQUEST')
  t.equal(server.requests.length, 0)
})

t.test('connections are kept alive and reused: one for requests in turn, as many as run at once', async (t) => {
  const server = await httpServer(t, (_req, res) => res.writeHead(204).end())
  const send = transport(t, server.url).send
  for (let i = 0; i < 20; i++) t.equal((await send(DELETE(`/s/${i}`))).status, 204)
  t.equal(server.connections, 1, '20 requests in turn, one connection')
  await Promise.all(Array.from({ length: 10 }, async (_, i) => await send(DELETE(`/p/${i}`))))
  t.ok(server.connections <= 10, `10 at once, ${server.connections} connections`)
  const opened = server.connections
  await Promise.all(Array.from({ length: 10 }, async (_, i) => await send(DELETE(`/q/${i}`))))
  t.equal(server.connections, opened, 'the next 10 at once reuse them')
})

t.test('at most maxConnections open; the other requests wait their turn', async (t) => {
  let inFlight = 0
  let most = 0
  const server = await httpServer(t, (_req, res) => {
    most = Math.max(most, ++inFlight)
    setTimeout(() => { inFlight--; res.writeHead(204).end() }, 20)
  })
  const send = transport(t, server.url, { maxConnections: 2 }).send
  const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) => await send(DELETE(`/${i}`))))
  t.same(answers.map((answer) => answer.status), Array(8).fill(204))
  t.equal(most, 2)
  t.equal(server.connections, 2)
})

t.test('a request waiting for a connection gets one when another connection fails', async (t) => {
  const server = await rawServer(t, (socket, request) => {
    if (request.startsWith('DELETE /reset')) socket.resetAndDestroy()
    else socket.write('HTTP/1.1 204 No Content\r\n\r\n')
  })
  const send = transport(t, server.url, { maxConnections: 1 }).send
  const [reset, next] = await Promise.all([failure(send(DELETE('/reset'))), failure(send(DELETE('/next')))])
  t.equal(reset, 'ECONNRESET')
  t.equal(next, 'answered', 'sent on a new connection once the first was gone')
  t.equal(server.connections(), 2)
})

t.test('a deadline per request: a silent server times out, its connection is dropped, the next one works', async (t) => {
  let silent = true
  const server = await httpServer(t, (_req, res) => { if (!silent) res.writeHead(204).end() })
  const send = transport(t, server.url, { timeoutMs: 200, maxConnections: 1 }).send
  const since = Date.now()
  const [first, second] = await Promise.all([failure(send(DELETE('/a'))), failure(send(DELETE('/b')))])
  t.same([first, second], ['ETIMEDOUT', 'ETIMEDOUT'], 'the one on the wire and the one waiting for a connection')
  t.ok(Date.now() - since < 1500)
  t.ok(await eventually(() => server.open.size === 0), 'the timed-out connection is closed')
  t.equal(server.requests.length, 1, 'the waiting request was never sent')
  silent = false
  t.equal((await send(DELETE('/c'))).status, 204)
})

t.test('Connection: close and HTTP/1.0 answers are not reused; a server closing an idle connection is no failure', async (t) => {
  const server = await httpServer(t, (req, res) => {
    if (req.url === '/close') res.setHeader('connection', 'close')
    res.writeHead(204).end()
  }, 150)
  const send = transport(t, server.url).send
  t.equal((await send(DELETE('/close'))).status, 204)
  t.equal((await send(DELETE('/close'))).status, 204)
  t.equal(server.connections, 2, 'a new connection after Connection: close')
  t.equal((await send(DELETE('/keep'))).status, 204)
  t.ok(await eventually(() => server.open.size === 0, 3000), 'the server closed the idle connection')
  t.equal((await send(DELETE('/keep'))).status, 204, 'and the next request opens another')

  const old = await rawServer(t, (socket) => socket.write('HTTP/1.0 204 No Content\r\n\r\n'))
  const sendOld = transport(t, old.url).send
  t.equal((await sendOld(DELETE('/a'))).status, 204)
  t.equal((await sendOld(DELETE('/b'))).status, 204)
  t.equal(old.connections(), 2, 'HTTP/1.0 without keep-alive: a connection each')
})

t.test('idle connections close on their own, and close() closes them at once', async (t) => {
  const server = await httpServer(t, (_req, res) => res.writeHead(204).end())
  const idling = transport(t, server.url, { idleTimeoutMs: 100 })
  await idling.send(DELETE('/a'))
  t.equal(server.open.size, 1)
  t.ok(await eventually(() => server.open.size === 0, 2000), 'closed after idling')

  const closing = transport(t, server.url)
  await Promise.all([closing.send(DELETE('/b')), closing.send(DELETE('/c'))])
  t.equal(server.open.size, 2)
  closing.close()
  t.ok(await eventually(() => server.open.size === 0, 2000), 'close() closes every idle connection')
})

t.test('close() lets a request in flight finish, then closes its connection', async (t) => {
  const server = await httpServer(t, (_req, res) => setTimeout(() => res.writeHead(204).end(), 100))
  const client = transport(t, server.url)
  const answer = client.send(DELETE('/slow'))
  await eventually(() => server.requests.length === 1)
  client.close()
  t.equal((await answer).status, 204)
  t.ok(await eventually(() => server.open.size === 0, 2000))
})

t.test('chunked answers, as Go and Node send bodies of unknown length', async (t) => {
  const server = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"session_id":')
    setTimeout(() => res.end('"abc"}'), 10)
  })
  const send = transport(t, server.url).send
  t.same(JSON.parse((await send({ url: '/login', options: {} })).body), { session_id: 'abc' })
  t.same(JSON.parse((await send({ url: '/login', options: {} })).body), { session_id: 'abc' }, 'and the connection is reused')
  t.equal(server.connections, 1)
})

t.test('answers that cannot be read fail the request and drop the connection', async (t) => {
  const cases: Array<[string, (socket: Socket) => void, string]> = [
    ['garbage', (socket) => socket.write('SSH-2.0-OpenSSH\r\n\r\n'), 'EPROTO'],
    ['two lengths', (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'), 'EPROTO'],
    ['a body over 1 MiB', (socket) => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n`), 'ERESPONSETOOLARGE'],
    ['a reset', (socket) => socket.resetAndDestroy(), 'ECONNRESET'],
    ['an end before the answer', (socket) => socket.end(), 'ECONNRESET'],
    ['an end within the body', (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), 'EPROTO']
  ]
  for (const [what, answer, code] of cases) {
    const server = await rawServer(t, answer)
    t.equal(await failure(transport(t, server.url).send(DELETE('/x'))), code, what)
  }
})

t.test('bytes nobody asked for drop an idle connection; the next request gets a fresh one', async (t) => {
  const server = await rawServer(t, (socket, request) => {
    socket.write('HTTP/1.1 204 No Content\r\n\r\n')
    if (request.startsWith('DELETE /first')) setTimeout(() => socket.write('HTTP/1.1 408 Request Timeout\r\n\r\n'), 20)
  })
  const send = transport(t, server.url).send
  t.equal((await send(DELETE('/first'))).status, 204)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal((await send(DELETE('/second'))).status, 204)
  t.equal(server.connections(), 2, 'answered on a new connection')
})

t.test('no server: the request fails with the socket error', async (t) => {
  t.equal(await failure(transport(t, `http://127.0.0.1:${await freePort()}`).send(DELETE('/x'))), 'ECONNREFUSED')
})

t.test('https: the server certificate is checked, against Node’s CAs and NODE_EXTRA_CA_CERTS', async (t) => {
  const server = createHttpsServer({ key: readFileSync(tlsFixture('key.pem')), cert: readFileSync(tlsFixture('cert.pem')) }, (_req, res) => res.writeHead(204).end())
  const port = await listen(server)
  t.teardown(() => server.close())
  const untrusted = await failure(transport(t, `https://127.0.0.1:${port}`).send(DELETE('/x')))
  t.equal(untrusted, 'DEPTH_ZERO_SELF_SIGNED_CERT', 'a certificate no CA vouches for is refused')

  // Trusted through NODE_EXTRA_CA_CERTS, as an operator adds a private CA: by IP and by name.
  for (const host of ['127.0.0.1', 'localhost']) {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
      import { createOryTransport } from './src/ory/http.ts'
      const client = createOryTransport(process.env.URL, { timeoutMs: 2000 })
      const answer = await client.send({ url: '/x', options: { method: 'DELETE' } })
      client.close()
      process.stdout.write(String(answer.status))
    `], { cwd: root, env: { ...process.env, URL: `https://${host}:${port}`, NODE_EXTRA_CA_CERTS: tlsFixture('cert.pem') }, stdio: ['ignore', 'pipe', 'inherit'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    await new Promise((resolve) => child.on('exit', resolve))
    t.equal(output, '204', `trusted, at ${host}`)
  }
})

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { UpstreamError, createAdminHttp, type AdminAnswer, type AdminHttp, type AdminHttpOptions, type AdminRequest } from '../../src/ory/admin-http.js'
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

function client (t: Test, url: string, options: Partial<AdminHttpOptions> = {}): AdminHttp {
  const created = createAdminHttp('kratos', { adminUrl: url, timeoutMs: 2000, ...options })
  t.teardown(created.close)
  return created
}

/** What a call came to: `answered <status>`, or the UpstreamError's flags and message. */
async function outcome (promise: Promise<AdminAnswer>): Promise<string> {
  try {
    return `answered ${(await promise).status}`
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err
    return `${err.transient ? 'transient' : 'refused'}: ${err.message}`
  }
}

const DELETE = (path: string): AdminRequest => ({ method: 'DELETE', path })

t.test('the request goes out as given: method, path under the base path, Host, header fields, body', async (t) => {
  const server = await httpServer(t, (req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      method: req.method, url: req.url, host: req.headers.host, type: req.headers['content-type'], authorization: req.headers.authorization, body
    })))
  })
  const http = client(t, `${server.url}/base/`, { token: 'secret' })
  const answer = await http.send({ method: 'PATCH', path: '/admin/x?y=1', headers: { authorization: 'Bearer secret', 'content-type': 'application/json' }, body: '{"a":1}' }, 'PATCH /admin/x')
  t.equal(answer.status, 200)
  t.equal(answer.headers['content-type'], 'application/json')
  t.same(JSON.parse(answer.body), {
    method: 'PATCH', url: '/base/admin/x?y=1', host: new URL(server.url).host, type: 'application/json', authorization: 'Bearer secret', body: '{"a":1}'
  })

  // The generic call: a GET with the admin token, its answer whole and unjudged.
  const got = await http.get('/admin/identities?page_size=1')
  t.same(JSON.parse(got.body), { method: 'GET', url: '/base/admin/identities?page_size=1', host: new URL(server.url).host, authorization: 'Bearer secret', body: '' })
  t.equal(got.headers['content-type'], 'application/json')
})

t.test('a header field or path that could split the request is refused, not retried, and nothing is sent', async (t) => {
  const server = await httpServer(t, (_req, res) => res.writeHead(204).end())
  const http = client(t, server.url)
  for (const request of [
    { method: 'GET', path: '/x', headers: { authorization: 'Bearer a\r\nX-Injected: 1' } },
    { method: 'GET', path: '/x', headers: { 'bad name': 'x' } },
    { method: 'GET', path: '/x HTTP/1.1\r\nX: y' }
  ] satisfies AdminRequest[]) {
    t.equal(await outcome(http.send(request, 'GET /x')), 'refused: kratos GET /x: the request cannot be sent as it is', JSON.stringify(request))
  }
  t.equal(await outcome(http.get('/x y')), 'refused: kratos GET /x y: the request cannot be sent as it is')
  t.equal(server.requests.length, 0)
})

t.test('connections are kept alive and reused: two for calls in turn, as many as run at once', async (t) => {
  const server = await httpServer(t, (_req, res) => res.writeHead(204).end())
  const http = client(t, server.url)
  for (let i = 0; i < 20; i++) t.equal((await http.send(DELETE(`/s/${i}`), 'DELETE')).status, 204)
  // undici counts a connection free again on the tick after its answer: a call made as soon as the
  // previous one resolved takes the other one.
  t.ok(server.connections <= 2, `20 calls in turn, ${server.connections} connections`)
  await Promise.all(Array.from({ length: 10 }, async (_, i) => await http.send(DELETE(`/p/${i}`), 'DELETE')))
  t.ok(server.connections <= 12, `10 at once, ${server.connections} connections`)
  const opened = server.connections
  await Promise.all(Array.from({ length: 10 }, async (_, i) => await http.send(DELETE(`/q/${i}`), 'DELETE')))
  t.equal(server.connections, opened, 'the next 10 at once reuse them')
})

t.test('at most 128 connections by default (maxConnections otherwise); the other calls wait their turn', async (t) => {
  for (const [limit, calls] of [[128, 200], [2, 8]] as const) {
    // The server holds the calls until `limit` are in, so that every connection the client may open is open.
    let held: ServerResponse[] = []
    let most = 0
    const release = (): void => { for (const res of held.splice(0)) res.writeHead(204).end() }
    const server = await httpServer(t, (_req, res) => {
      held.push(res)
      most = Math.max(most, held.length)
      if (held.length >= limit) setTimeout(release, 50)
    })
    const timer = setInterval(release, 2000)
    t.teardown(() => clearInterval(timer))
    const http = client(t, server.url, { timeoutMs: 10_000, ...(limit !== 128 ? { maxConnections: limit } : {}) })
    const answers = await Promise.all(Array.from({ length: calls }, async (_, i) => await http.send(DELETE(`/${i}`), 'DELETE')))
    t.same(answers.map((answer) => answer.status), Array(calls).fill(204))
    t.equal(most, limit, `${calls} calls at once, at most ${limit} in flight`)
    t.equal(server.connections, limit)
    held = []
  }
})

t.test('a deadline per call, waiting for a connection included; the connection is dropped, the next call works', async (t) => {
  let silent = true
  const server = await httpServer(t, (_req, res) => { if (!silent) res.writeHead(204).end() })
  const http = client(t, server.url, { timeoutMs: 200, maxConnections: 1 })
  const since = Date.now()
  const [first, second] = await Promise.all([outcome(http.send(DELETE('/a'), 'DELETE /a')), outcome(http.send(DELETE('/b'), 'DELETE /b'))])
  t.same([first, second], ['transient: kratos DELETE /a: no answer within 200 ms', 'transient: kratos DELETE /b: no answer within 200 ms'],
    'the call on the wire and the one waiting for a connection')
  t.ok(Date.now() - since < 1000, 'both at their deadline')
  t.ok(await eventually(() => server.open.size === 0), 'the timed-out connection is closed')
  silent = false
  t.equal((await http.send(DELETE('/c'), 'DELETE /c')).status, 204)
  t.equal(server.requests.filter((req) => req.url === '/b').length, 0, 'the call that timed out waiting was never sent')
})

t.test('the deadline runs until the whole answer is read: a body that stalls times out', async (t) => {
  const server = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"session_id":')
  })
  const since = Date.now()
  t.equal(await outcome(client(t, server.url, { timeoutMs: 300 }).get('/login')), 'transient: kratos GET /login: no answer within 300 ms')
  t.ok(Date.now() - since < 1500)
})

t.test('a server closing an idle connection is no failure; Connection: close is honoured', async (t) => {
  const server = await httpServer(t, (req, res) => {
    if (req.url === '/close') res.setHeader('connection', 'close')
    res.writeHead(204).end()
  }, 150)
  const http = client(t, server.url)
  t.equal((await http.send(DELETE('/close'), 'DELETE')).status, 204)
  t.equal((await http.send(DELETE('/close'), 'DELETE')).status, 204)
  t.equal(server.connections, 2, 'a new connection after Connection: close')
  t.equal((await http.send(DELETE('/keep'), 'DELETE')).status, 204)
  t.ok(await eventually(() => server.open.size === 0, 3000), 'the server closed the idle connection')
  t.equal((await http.send(DELETE('/keep'), 'DELETE')).status, 204, 'and the next call opens another')
})

t.test('idle connections close after ~4 s (idleTimeoutMs), and close() closes them at once', async (t) => {
  const server = await httpServer(t, (_req, res) => res.writeHead(204).end(), 30_000)
  const idling = client(t, server.url, { idleTimeoutMs: 200 })
  await idling.send(DELETE('/a'), 'DELETE')
  t.equal(server.open.size, 1)
  t.ok(await eventually(() => server.open.size === 0, 2000), 'closed after idling')

  const byDefault = client(t, server.url)
  await byDefault.send(DELETE('/b'), 'DELETE')
  const since = Date.now()
  t.ok(await eventually(() => server.open.size === 0, 8000), 'closed after idling by default')
  t.ok(Date.now() - since > 2500 && Date.now() - since < 5000, `by default after ~4 s (${Date.now() - since} ms)`)

  const closing = client(t, server.url)
  await Promise.all([closing.send(DELETE('/b'), 'DELETE'), closing.send(DELETE('/c'), 'DELETE')])
  t.equal(server.open.size, 2)
  await closing.close()
  t.ok(await eventually(() => server.open.size === 0, 2000), 'close() closes every idle connection')
})

t.test('close() lets a call in flight finish, then closes its connection', async (t) => {
  const server = await httpServer(t, (_req, res) => setTimeout(() => res.writeHead(204).end(), 100))
  const http = client(t, server.url)
  const answer = http.send(DELETE('/slow'), 'DELETE')
  await eventually(() => server.requests.length === 1)
  const closed = http.close()
  t.equal((await answer).status, 204)
  await closed
  t.ok(await eventually(() => server.open.size === 0, 2000))
})

t.test('chunked answers, as Go and Node send bodies of unknown length', async (t) => {
  const server = await httpServer(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"session_id":')
    setTimeout(() => res.end('"abc"}'), 10)
  })
  const http = client(t, server.url)
  t.same(JSON.parse((await http.get('/login')).body), { session_id: 'abc' })
  t.same(JSON.parse((await http.get('/login')).body), { session_id: 'abc' }, 'and the connection is reused')
  t.ok(server.connections <= 2)
})

t.test('answers that cannot be read, or are larger than 1 MiB, fail the call as transient and drop the connection', async (t) => {
  const big = 'x'.repeat(1024 * 1024 + 1)
  const cases: Array<[string, (socket: Socket) => void, RegExp]> = [
    ['garbage', (socket) => socket.write('SSH-2.0-OpenSSH\r\n\r\n'), /no answer \(HTTPParserError\)/],
    ['two lengths', (socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'), /no answer \((HTTPParserError|UND_ERR_RES_CONTENT_LENGTH_MISMATCH)\)/],
    ['a length over 1 MiB', (socket) => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\nabc`), /larger than 1048576 bytes/],
    ['a chunked body over 1 MiB', (socket) => socket.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`), /larger than 1048576 bytes/],
    ['a reset', (socket) => socket.resetAndDestroy(), /no answer \(/],
    ['an end before the answer', (socket) => socket.end(), /no answer \(/],
    ['an end within the body', (socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'), /no answer \(/]
  ]
  for (const [what, answer, message] of cases) {
    const server = await rawServer(t, answer)
    const result = await outcome(client(t, server.url).send(DELETE('/x'), 'DELETE /x'))
    t.match(result, /^transient: kratos DELETE \/x: /, what)
    t.match(result, message, what)
  }
  // Exactly 1 MiB is read.
  const server = await httpServer(t, (_req, res) => res.writeHead(200).end('y'.repeat(1024 * 1024)))
  t.equal((await client(t, server.url).get('/x')).body.length, 1024 * 1024)
})

t.test('a stray answer that arrives on an idle kept-alive connection is never taken as the next call\'s answer', async (t) => {
  // Security review: a complete response nobody asked for, sent after the first answer and before
  // the next request, with its own status and body. undici closes a connection that receives bytes
  // while no request is on it; the next call then goes out on a fresh one.
  const stray = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{"stray":"answer"}'.replace('17', '18')
  for (const when of ['in the same write as the answer', 'after the answer'] as const) {
    const server = await rawServer(t, (socket, request) => {
      const answer = 'HTTP/1.1 204 No Content\r\n\r\n'
      if (!request.startsWith('GET /first')) socket.write(answer)
      else if (when === 'in the same write as the answer') socket.write(answer + stray)
      else {
        socket.write(answer)
        setTimeout(() => socket.write(stray), 30)
      }
    })
    const http = client(t, server.url)
    t.equal((await http.get('/first')).status, 204, when)
    await new Promise((resolve) => setTimeout(resolve, 100))
    const second = await outcome(http.get('/second'))
    t.not(second, 'answered 200', `${when}: the stray status is not the second call's`)
    t.ok(second === 'answered 204' || second.startsWith('transient: '), `${when}: the second call got its own answer or a transient error (${second})`)
    t.equal(server.connections(), 2, `${when}: the connection that got the stray answer was dropped`)
  }
})

t.test('no server: the call fails as transient, with the socket error\'s code', async (t) => {
  t.equal(await outcome(client(t, `http://127.0.0.1:${await freePort()}`, { token: 'kratos-secret-token' }).send(DELETE('/x'), 'DELETE /x')),
    'transient: kratos DELETE /x: no answer (ECONNREFUSED)')
})

t.test('https: the server certificate is checked, against Node’s CAs and NODE_EXTRA_CA_CERTS', async (t) => {
  const server = createHttpsServer({ key: readFileSync(tlsFixture('key.pem')), cert: readFileSync(tlsFixture('cert.pem')) }, (_req, res) => res.writeHead(204).end())
  const port = await listen(server)
  t.teardown(() => server.close())
  t.equal(await outcome(client(t, `https://127.0.0.1:${port}`).send(DELETE('/x'), 'DELETE /x')),
    'transient: kratos DELETE /x: no answer (DEPTH_ZERO_SELF_SIGNED_CERT)', 'a certificate no CA vouches for is refused')

  // Trusted through NODE_EXTRA_CA_CERTS, as an operator adds a private CA: by IP and by name.
  for (const host of ['127.0.0.1', 'localhost']) {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
      import { createAdminHttp } from './src/ory/admin-http.ts'
      const http = createAdminHttp('kratos', { adminUrl: process.env.URL, timeoutMs: 2000 })
      const answer = await http.send({ method: 'DELETE', path: '/x' }, 'DELETE /x')
      await http.close()
      process.stdout.write(String(answer.status))
    `], { cwd: root, env: { ...process.env, URL: `https://${host}:${port}`, NODE_EXTRA_CA_CERTS: tlsFixture('cert.pem') }, stdio: ['ignore', 'pipe', 'inherit'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    await new Promise((resolve) => child.on('exit', resolve))
    t.equal(output, '204', `trusted, at ${host}`)
  }
})

import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

/** Ory's published OpenAPI documents (v26.2.0), kept in test/fixtures/ory. */
export function oryFixture (relative: string): URL {
  return new URL(`../fixtures/ory/${relative}`, import.meta.url)
}

interface Operation {
  operationId: string
  method: string
  pattern: RegExp
  params: string[]
  statuses: Set<string>
  /** Fewer path parameters first: /admin/identities/by/external/{x} before /admin/identities/{id}. */
  specificity: number
}

/** The operations of an OpenAPI document, to route requests by and to check answers against. */
export function loadOperations (specFile: string): Operation[] {
  const spec = JSON.parse(readFileSync(oryFixture(specFile), 'utf8')) as {
    paths: Record<string, Record<string, { operationId: string, responses: Record<string, unknown> }>>
  }
  const operations: Operation[] = []
  for (const [path, methods] of Object.entries(spec.paths)) {
    const params: string[] = []
    const pattern = new RegExp('^' + path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_match, name: string) => {
      params.push(name)
      return '([^/]+)'
    }) + '$')
    for (const [method, operation] of Object.entries(methods)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue
      operations.push({
        operationId: operation.operationId,
        method: method.toUpperCase(),
        pattern,
        params,
        statuses: new Set(Object.keys(operation.responses)),
        specificity: params.length
      })
    }
  }
  return operations.sort((a, b) => a.specificity - b.specificity)
}

export interface RecordedCall {
  operationId: string
  method: string
  path: string
  params: Record<string, string>
  query: URLSearchParams
  authorization: string | undefined
  body: string
}

export interface Answer {
  status: number
  /** Header fields beyond those every answer has (`link`, `x-total-count` of a listing). */
  headers?: Record<string, string>
  body?: unknown
}

export type Handler = (call: RecordedCall) => Answer | Promise<Answer>

/** How an operation fails, for the next `times` calls (Infinity: until `heal`). */
export type Fault =
  | { status: number, times?: number }
  | { kind: 'timeout', times?: number }
  | { kind: 'reset', times?: number }
  /** Answers normally, after a pause. */
  | { kind: 'delay', ms: number, times?: number }

/** How a double answers beyond its operations, as the real server does (see test/fixtures/ory-recorded). */
export interface DoubleOptions {
  /** The admin API key it asks for on /admin/ paths (Ory Network). */
  token?: string
  /**
   * Kratos' admin port: a path outside /admin is redirected there (307), and the operations the
   * OpenAPI document lists without the prefix (/health/ready) are served under it.
   */
  adminPrefix?: boolean
  /** Operations whose answers carry no `Cache-Control` (Hydra's health checks); every other one does. */
  cacheable?: string[]
  /**
   * How a path that is no operation is answered; undefined for the default, Go's http.NotFound (as
   * Kratos' ports and Hydra's public port answer): 404, `text/plain`, "404 page not found".
   */
  notFound?: (path: string, accept: string | undefined) => NotFoundAnswer | undefined
  /**
   * Plays the server's public port instead, which serves no /admin/ route: Kratos' (with the admin
   * URL it redirects GETs to, and the CSRF refusal it gives other methods) or Hydra's (Go's 404).
   * Requests there are expected strays, not violations.
   */
  publicPort?: { redirectAdminTo?: string }
}

/** A router's answer to a path it does not serve. */
export interface NotFoundAnswer {
  contentType: string
  body: string
}

/** What Ory's servers send with an answer of the API: nothing may be cached. */
const NO_CACHE = 'private, no-cache, no-store, must-revalidate'

/**
 * A real HTTP server that plays an Ory API as its OpenAPI document describes it: a request that is no
 * operation of the document, an operation the test did not implement, or an answer with a status the
 * document does not list is recorded as a violation — the test's teardown fails on any. Its answers
 * have the headers and media types of Ory's own (a router's plain-text 404 for a path that is no
 * operation), as recorded from the real servers in test/fixtures/ory-recorded.
 */
export class OryDouble {
  readonly calls: RecordedCall[] = []
  /** The operation of each request, recorded as it arrives, before any fault or pause. */
  readonly arrivals: string[] = []
  readonly violations: string[] = []
  /** Requests for paths that are no operation here (a misconfigured URL's), as `METHOD path`. */
  readonly strays: string[] = []
  #straysExpected: boolean
  readonly #publicPort: DoubleOptions['publicPort']
  readonly #operations: Operation[]
  readonly #handlers: Record<string, Handler>
  readonly #faults = new Map<string, Fault & { remaining: number }>()
  readonly #sockets = new Set<Socket>()
  readonly #waiters: Array<() => void> = []
  #server: Server | undefined
  #token: string | undefined
  readonly #adminPrefix: boolean
  readonly #cacheable: Set<string>
  readonly #notFound: DoubleOptions['notFound']
  url = ''

  constructor (specFile: string, handlers: Record<string, Handler>, options: DoubleOptions = {}) {
    this.#operations = loadOperations(specFile)
    this.#handlers = handlers
    this.#token = options.token
    this.#adminPrefix = options.adminPrefix === true
    this.#cacheable = new Set(options.cacheable ?? [])
    this.#notFound = options.notFound
    this.#publicPort = options.publicPort
    this.#straysExpected = options.publicPort !== undefined
    for (const operationId of Object.keys(handlers)) {
      if (!this.#operations.some((operation) => operation.operationId === operationId)) {
        throw new Error(`${operationId} is not an operation of ${specFile}`)
      }
    }
  }

  async listen (port = 0): Promise<this> {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => { this.violations.push(`the double failed: ${String(err)}`) })
    })
    this.#server.keepAliveTimeout = 5000
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
    await new Promise<void>((resolve) => this.#server?.listen(port, '127.0.0.1', resolve))
    const address = this.#server.address()
    this.url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
    return this
  }

  get port (): number {
    return Number(new URL(this.url).port)
  }

  /**
   * Requests for paths that are no operation are expected (a test of a misconfigured URL): they are
   * recorded in `strays`, not as violations.
   */
  expectStrays (): void {
    this.#straysExpected = true
  }

  /** Makes the next calls of an operation fail. */
  fail (operationId: string, fault: Fault): void {
    this.#faults.set(operationId, { ...fault, remaining: fault.times ?? Infinity })
  }

  heal (operationId: string): void {
    this.#faults.delete(operationId)
  }

  /**
   * The calls that do something: all but the relay's proofs that an admin URL is the admin API (Kratos'
   * listIdentities, Hydra's listOAuth2Clients, made at startup and now and then).
   */
  get actions (): RecordedCall[] {
    return this.calls.filter((call) => call.operationId !== 'listIdentities' && call.operationId !== 'listOAuth2Clients')
  }

  callsOf (operationId: string): RecordedCall[] {
    return this.calls.filter((call) => call.operationId === operationId)
  }

  /** Resolves once `count` calls of the operation were answered; rejects after `timeoutMs`. */
  async waitForCalls (operationId: string, count: number, timeoutMs = 10_000): Promise<RecordedCall[]> {
    await this.#waitUntil(() => this.callsOf(operationId).length >= count, timeoutMs,
      () => `expected ${count} call(s) of ${operationId}, got ${this.callsOf(operationId).length}`)
    return this.callsOf(operationId)
  }

  /** Resolves once `count` requests of the operation arrived, answered or not; rejects after `timeoutMs`. */
  async waitForArrivals (operationId: string, count: number, timeoutMs = 10_000): Promise<void> {
    const arrived = (): number => this.arrivals.filter((id) => id === operationId).length
    await this.#waitUntil(() => arrived() >= count, timeoutMs, () => `expected ${count} request(s) of ${operationId}, got ${arrived()}`)
  }

  async #waitUntil (done: () => boolean, timeoutMs: number, failure: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!done()) {
      if (Date.now() > deadline) throw new Error(failure())
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve())
  }

  async #handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double')
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    if (this.#adminPrefix && !url.pathname.startsWith('/admin')) {
      // Kratos' admin port sends every path outside /admin there (x.RedirectAdminMiddleware).
      const location = `/admin${url.pathname}${url.search}`
      res.writeHead(307, { location, 'content-type': 'text/html; charset=utf-8' }).end(`<a href="${location}">Temporary Redirect</a>.\n\n`)
      return
    }
    if (this.#publicPort !== undefined && url.pathname.startsWith('/admin/')) return this.#answerOnPublicPort(req, res, url)
    const find = (path: string): Operation | undefined => this.#operations.find((op) => op.method === req.method && op.pattern.test(path))
    // Kratos' admin port serves the operations documented without the prefix (health, version) under it.
    const unprefixed = url.pathname.slice('/admin'.length)
    const path = this.#adminPrefix && find(url.pathname) === undefined && !unprefixed.startsWith('/admin') ? unprefixed : url.pathname
    const operation = find(path)
    if (operation === undefined) {
      this.#stray(req, url)
      const custom = this.#notFound?.(url.pathname, req.headers.accept)
      if (custom !== undefined) {
        res.writeHead(404, { 'content-type': custom.contentType }).end(custom.body)
        return
      }
      // What Go's http.NotFound answers, as Kratos' router and Hydra's public router do.
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end('404 page not found\n')
      return
    }
    this.arrivals.push(operation.operationId)
    this.#wake()
    const match = operation.pattern.exec(path) ?? []
    const params = Object.fromEntries(operation.params.map((name, i) => [name, decodeURIComponent(match[i + 1] ?? '')]))
    const call: RecordedCall = {
      operationId: operation.operationId,
      method: operation.method,
      path: url.pathname,
      params,
      query: url.searchParams,
      authorization: req.headers.authorization,
      body: Buffer.concat(chunks).toString('utf8')
    }

    const fault = this.#faults.get(operation.operationId)
    if (fault !== undefined) {
      if (--fault.remaining <= 0) this.#faults.delete(operation.operationId)
      if ('ms' in fault) {
        await new Promise((resolve) => setTimeout(resolve, fault.ms))
      } else {
        this.#record(call)
        if ('status' in fault) return this.#answer(res, operation, { status: fault.status, body: { error: { code: fault.status, message: 'injected fault' } } })
        if (fault.kind === 'reset') {
          req.socket.destroy()
          return
        }
        return // a timeout: never answers; the socket is closed with the server
      }
    }

    // Like Ory Network, only the admin API asks for the API key.
    if (this.#token !== undefined && url.pathname.startsWith('/admin/') && call.authorization !== `Bearer ${this.#token}`) {
      this.#record(call)
      return this.#answer(res, operation, { status: 401, body: { error: { code: 401, message: 'unauthorized' } } })
    }
    const handler = this.#handlers[operation.operationId]
    if (handler === undefined) {
      this.violations.push(`${operation.operationId} was called, but the test does not expect it`)
      this.#record(call)
      return this.#send(res, 501, {})
    }
    const answer = await handler(call)
    this.#record(call)
    this.#answer(res, operation, answer)
  }

  #stray (req: IncomingMessage, url: URL): void {
    this.strays.push(`${req.method ?? '?'} ${url.pathname}`)
    if (!this.#straysExpected) this.violations.push(`${req.method ?? '?'} ${url.pathname} is no operation of the API`)
    this.#wake()
  }

  /** An /admin/ path on a public port, answered as recorded in test/fixtures/ory-recorded. */
  #answerOnPublicPort (req: IncomingMessage, res: ServerResponse, url: URL): void {
    this.#stray(req, url)
    const redirect = this.#publicPort?.redirectAdminTo
    if (redirect === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end('404 page not found\n')
      return
    }
    if (req.method === 'GET') {
      const location = `${redirect.replace(/\/+$/, '')}${url.pathname}${url.search}`
      res.writeHead(307, { location, 'content-type': 'text/html; charset=utf-8', 'cache-control': NO_CACHE, vary: 'Cookie' })
        .end(`<a href="${location}">Temporary Redirect</a>.\n\n`)
      return
    }
    // Kratos' public port checks CSRF before anything else for a request that changes state.
    res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({
      error: { code: 403, status: 'Forbidden', reason: 'Please retry the flow and optionally clear your cookies. The request was rejected to protect you from Cross-Site-Request-Forgery (CSRF) which could cause account takeover, leaking personal information, and other serious security issues.', message: 'the request was rejected to protect you from Cross-Site-Request-Forgery' }
    }))
  }

  #record (call: RecordedCall): void {
    this.calls.push(call)
    this.#wake()
  }

  #wake (): void {
    for (const wake of this.#waiters.splice(0)) wake()
  }

  #answer (res: ServerResponse, operation: Operation, answer: Answer): void {
    if (!operation.statuses.has(String(answer.status)) && !operation.statuses.has('default')) {
      this.violations.push(`${operation.operationId} answered ${answer.status}, which the API does not document`)
    }
    this.#send(res, answer.status, answer.body, { ...(this.#cacheable.has(operation.operationId) ? {} : { 'cache-control': NO_CACHE }), ...answer.headers })
  }

  /**
   * JSON as Ory writes it: `application/json; charset=utf-8` for a result, plain `application/json`
   * for an error (herodot's error writer), nothing for 204.
   */
  #send (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (body === undefined || status === 204) {
      res.writeHead(status, headers).end()
      return
    }
    const contentType = status >= 400 ? 'application/json' : 'application/json; charset=utf-8'
    res.writeHead(status, { ...headers, 'content-type': contentType }).end(JSON.stringify(body))
  }
}

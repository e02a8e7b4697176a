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
  body?: unknown
}

export type Handler = (call: RecordedCall) => Answer | Promise<Answer>

export interface OryDoubleOptions {
  /** The admin API asks for this Bearer token, as Ory Network does. */
  token?: string
  /** Which port of the server the double plays (default admin: every operation of the document). */
  port?: 'admin' | 'public'
}

/** How an operation fails, for the next `times` calls (Infinity: until `heal`). */
export type Fault =
  | { status: number, times?: number }
  | { kind: 'timeout', times?: number }
  | { kind: 'reset', times?: number }
  /** Answers normally, after a pause. */
  | { kind: 'delay', ms: number, times?: number }

/**
 * A real HTTP server that plays an Ory API as its OpenAPI document describes it: a request that is no
 * operation of the document, an operation the test did not implement, or an answer with a status the
 * document does not list is recorded as a violation — the test's teardown fails on any.
 */
export class OryDouble {
  readonly calls: RecordedCall[] = []
  /** The operation of each request, recorded as it arrives, before any fault or pause. */
  readonly arrivals: string[] = []
  readonly violations: string[] = []
  /** Requests for routes the API does not have, answered as Ory's router does (404 page not found). */
  readonly strays: string[] = []
  #straysExpected: boolean
  readonly #operations: Operation[]
  readonly #handlers: Record<string, Handler>
  readonly #faults = new Map<string, Fault & { remaining: number }>()
  readonly #sockets = new Set<Socket>()
  readonly #waiters: Array<() => void> = []
  #server: Server | undefined
  #token: string | undefined
  url = ''

  constructor (specFile: string, handlers: Record<string, Handler>, options: OryDoubleOptions = {}) {
    const operations = loadOperations(specFile)
    for (const operationId of Object.keys(handlers)) {
      if (!operations.some((operation) => operation.operationId === operationId)) {
        throw new Error(`${operationId} is not an operation of ${specFile}`)
      }
    }
    // A public port serves no /admin/ route at all: those requests are strays there.
    this.#operations = operations.filter((operation) => options.port !== 'public' || !operation.pattern.source.startsWith('^\\/admin\\/'))
    this.#handlers = handlers
    this.#token = options.token
    this.#straysExpected = options.port === 'public'
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
   * Requests for routes the API does not have are expected (a test of a misconfigured URL): they are
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
    const operation = this.#operations.find((op) => op.method === req.method && op.pattern.test(url.pathname))
    if (operation === undefined) {
      this.strays.push(`${req.method ?? '?'} ${url.pathname}`)
      if (!this.#straysExpected) this.violations.push(`${req.method ?? '?'} ${url.pathname} is no operation of the API`)
      this.#wake()
      // What Ory's Go router answers for a route it does not have.
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('404 page not found\n')
      return
    }
    this.arrivals.push(operation.operationId)
    this.#wake()
    const match = operation.pattern.exec(url.pathname) ?? []
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
    this.#send(res, answer.status, answer.body)
  }

  #send (res: ServerResponse, status: number, body: unknown): void {
    if (body === undefined || status === 204) {
      res.writeHead(status).end()
      return
    }
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  }
}

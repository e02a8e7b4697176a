import { connect as connectTcp, isIP, type Socket } from 'node:net'
import { connect as connectTls } from 'node:tls'
import { ResponseError, ResponseParser } from './http1-response.js'

/** A request as @ory/client's request builders (`…ApiAxiosParamCreator`) describe it. */
export interface OryRequest {
  /** Path and query, relative to the API's base URL. */
  url: string
  options: {
    readonly method?: string
    readonly headers?: Readonly<Record<string, unknown>>
    readonly data?: unknown
  }
}

export interface OryResponse {
  status: number
  body: string
}

/**
 * A request that got no answer, or none that could be read: refused, reset, timed out, malformed.
 * `code` is Node's (ECONNREFUSED, ECONNRESET, a TLS error's, …), ETIMEDOUT, EPROTO or ERESPONSETOOLARGE.
 */
export class TransportError extends Error {
  readonly code: string
  constructor (code: string) {
    super(code)
    this.name = 'TransportError'
    this.code = code
  }
}

export interface OryTransport {
  send: (request: OryRequest) => Promise<OryResponse>
  /** Closes the idle connections; requests in flight finish, and their connections close after them. */
  close: () => void
}

export interface OryTransportOptions {
  /** Per request: from the call until the whole answer is read, waiting for a connection included. */
  timeoutMs: number
  /** Connections open at once; more requests wait for one (default 128). */
  maxConnections?: number
  /** An idle connection is closed after this long, before a server would close it under a request (default 4000). */
  idleTimeoutMs?: number
}

const LIMITS = { maxHeadBytes: 16 * 1024, maxBodyBytes: 1024 * 1024 }
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const FIELD_VALUE = /^[\t\x20-\x7e]*$/
const REQUEST_TARGET = /^\/[\x21-\x7e]*$/

/** What a connection tells its pool. */
interface PoolHooks {
  /** It answered and may carry another request. */
  release: (connection: Connection) => void
  /** It is gone. */
  closed: (connection: Connection) => void
}

interface Pending {
  /** The request's bytes on the wire. */
  wire: string
  expectBody: boolean
  resolve: (response: OryResponse) => void
  reject: (err: TransportError) => void
  deadline: NodeJS.Timeout
  connection: Connection | undefined
}

/**
 * Sends the requests @ory/client builds as HTTP/1.1 over keep-alive connections to one API, one
 * request at a time on each. The request — path, method, headers, credentials — stays the generated
 * client's; what it replaces is the transport: the generated client's axios pipeline, and then Node's
 * HTTP client, cost several times what writing the request and reading the answer does, on the
 * relay's hottest call (one per revocation). Every request has a deadline, answers are read strictly
 * (RFC 9112; see `ResponseParser`) and bodies larger than 1 MiB are refused. TLS for `https:` URLs,
 * with Node's certificate checks.
 */
export function createOryTransport (baseUrl: string, options: OryTransportOptions): OryTransport {
  const base = new URL(baseUrl.replace(/\/+$/, ''))
  const secure = base.protocol === 'https:'
  const host = base.hostname.replace(/^\[(.*)\]$/, '$1')
  const port = Number(base.port === '' ? (secure ? 443 : 80) : base.port)
  const prefix = base.pathname === '/' ? '' : base.pathname
  const hostField = base.host
  const maxConnections = options.maxConnections ?? 128
  const idleTimeoutMs = options.idleTimeoutMs ?? 4000

  const idle: Connection[] = []
  const waiting: Pending[] = []
  let open = 0
  let sweeper: NodeJS.Timeout | undefined
  let closing = false

  const connect = (): Socket => {
    const socket = secure
      ? connectTls({ host, port, ALPNProtocols: ['http/1.1'], ...(isIP(host) === 0 ? { servername: host } : {}) })
      : connectTcp({ host, port })
    socket.setNoDelay(true)
    return socket
  }

  const dispatch = (pending: Pending): void => {
    const connection = idle.pop()
    if (connection !== undefined) return connection.send(pending)
    if (open >= maxConnections) {
      waiting.push(pending)
      return
    }
    open++
    new Connection(connect(), { release, closed }).send(pending)
  }

  /** A connection that answered and may be reused: the next waiting request, or the idle stack. */
  const release = (connection: Connection): void => {
    const next = waiting.shift()
    if (next !== undefined) return connection.send(next)
    if (closing) return connection.destroy()
    connection.idleSince = Date.now()
    idle.push(connection)
    sweeper ??= setInterval(sweep, Math.max(100, idleTimeoutMs / 2)).unref()
  }

  const closed = (connection: Connection): void => {
    open--
    const at = idle.indexOf(connection)
    if (at !== -1) idle.splice(at, 1)
    // A slot is free: a waiting request may open a connection of its own.
    const next = waiting.shift()
    if (next !== undefined) dispatch(next)
  }

  const sweep = (): void => {
    const oldest = Date.now() - idleTimeoutMs
    // The stack is used from its top: the connections at its bottom have idled longest.
    while (idle.length > 0 && (idle[0]?.idleSince ?? 0) <= oldest) idle.shift()?.destroy()
    if (idle.length === 0) {
      clearInterval(sweeper)
      sweeper = undefined
    }
  }

  return {
    send: async ({ url, options: request }) => await new Promise<OryResponse>((resolve, reject) => {
      const method = request.method ?? 'GET'
      const pending: Pending = {
        wire: '',
        expectBody: method !== 'HEAD',
        resolve,
        reject,
        connection: undefined,
        deadline: setTimeout(() => {
          const at = waiting.indexOf(pending)
          if (at !== -1) waiting.splice(at, 1)
          pending.connection?.destroy()
          reject(new TransportError('ETIMEDOUT'))
        }, options.timeoutMs)
      }
      try {
        pending.wire = serialize(method, prefix + url, hostField, request)
      } catch (err) {
        clearTimeout(pending.deadline)
        reject(err)
        return
      }
      dispatch(pending)
    }),
    close () {
      closing = true
      for (const connection of idle.splice(0)) connection.destroy()
      clearInterval(sweeper)
      sweeper = undefined
    }
  }
}

/** The request's bytes: request line, Host, the builder's header fields, the body (JSON unless a string). */
function serialize (method: string, target: string, host: string, request: OryRequest['options']): string {
  if (!TOKEN.test(method) || !REQUEST_TARGET.test(target)) throw new TransportError('EINVALIDREQUEST')
  const body = request.data === undefined ? undefined : typeof request.data === 'string' ? request.data : JSON.stringify(request.data)
  let head = `${method} ${target} HTTP/1.1\r\nHost: ${host}\r\nAccept: application/json\r\n`
  let contentType = false
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    if (value === undefined) continue
    const text = String(value)
    const lower = name.toLowerCase()
    // Framing is this transport's to write; a builder's own would contradict it.
    if (lower === 'host' || lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection') continue
    if (!TOKEN.test(name) || !FIELD_VALUE.test(text)) throw new TransportError('EINVALIDREQUEST')
    if (lower === 'content-type') contentType = true
    head += `${name}: ${text}\r\n`
  }
  if (body === undefined) return `${head}\r\n`
  if (!contentType) head += 'Content-Type: application/json\r\n'
  return `${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
}

/** One keep-alive connection, one request at a time. */
class Connection {
  idleSince = 0
  readonly #socket: Socket
  readonly #pool: PoolHooks
  #pending: Pending | undefined
  #parser: ResponseParser | undefined
  #closed = false

  constructor (socket: Socket, pool: PoolHooks) {
    this.#socket = socket
    this.#pool = pool
    socket.on('data', (chunk: Buffer) => this.#read(chunk))
    socket.on('end', () => this.#ended())
    socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(err.code ?? 'ECONNRESET'))
    socket.on('close', () => this.#fail('ECONNRESET'))
  }

  send (pending: Pending): void {
    this.#pending = pending
    this.#parser = new ResponseParser(LIMITS, pending.expectBody)
    pending.connection = this
    this.#socket.ref()
    this.#socket.write(pending.wire)
  }

  destroy (): void {
    this.#socket.destroy()
  }

  #read (chunk: Buffer): void {
    const pending = this.#pending
    if (pending === undefined || this.#parser === undefined) {
      // Nothing was asked: the connection is out of step, and unusable.
      this.#fail('EPROTO')
      return
    }
    let response
    try {
      response = this.#parser.push(chunk)
    } catch (err) {
      this.#fail(err instanceof ResponseError ? err.code : 'EPROTO')
      return
    }
    if (response === undefined) return
    this.#finish(pending, response.status, response.body)
    if (response.keepAlive && !this.#closed) {
      this.#socket.unref()
      this.#pool.release(this)
    } else {
      this.#close()
    }
  }

  #ended (): void {
    const pending = this.#pending
    if (pending !== undefined && this.#parser !== undefined) {
      try {
        const response = this.#parser.end()
        this.#finish(pending, response.status, response.body)
      } catch (err) {
        this.#fail(err instanceof ResponseError && this.#parser.started ? err.code : 'ECONNRESET')
        return
      }
    }
    this.#close()
  }

  #finish (pending: Pending, status: number, body: Buffer): void {
    this.#pending = undefined
    this.#parser = undefined
    clearTimeout(pending.deadline)
    pending.resolve({ status, body: body.toString('utf8') })
  }

  /** The connection is done for: the request on it, if any, fails with `code`. Once only. */
  #fail (code: string): void {
    const pending = this.#pending
    this.#pending = undefined
    this.#parser = undefined
    if (pending !== undefined) {
      clearTimeout(pending.deadline)
      pending.reject(new TransportError(code))
    }
    this.#close()
  }

  /** Closes the connection, owing nothing: the pool counts it gone. Once only. */
  #close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#socket.destroy()
    this.#pool.closed(this)
  }
}

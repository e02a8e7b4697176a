import type { Dispatcher } from 'undici'
import { MAX_RESPONSE_BYTES, createDispatcher, type ProxySettings } from './dispatcher.js'

export type OryService = 'kratos' | 'hydra'

/**
 * A failed call to an Ory admin API, in our words only: never the request (its headers carry the
 * admin token). `transient` covers what retrying can cure by itself (no answer, a timeout, 5xx, 429,
 * 408); any other answer means a misconfiguration.
 */
export class UpstreamError extends Error {
  readonly code = 'ERR_UPSTREAM'
  /**
   * The answer came from something that is not the admin API (a 404 from a router for a route that
   * does not exist there): the URL is wrong, and retrying it cannot help.
   */
  readonly misrouted: boolean

  constructor (
    readonly service: OryService,
    readonly transient: boolean,
    readonly status: number | undefined,
    message: string,
    options?: { cause?: unknown, misrouted?: boolean }
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'UpstreamError'
    this.misrouted = options?.misrouted === true
  }
}

/** Whether retrying can cure an answer with this status by itself. */
export function isTransientStatus (status: number): boolean {
  return status >= 500 || status === 429 || status === 408
}

/** An answer the caller cannot use, as an {@link UpstreamError}. */
export function refusedAnswer (service: OryService, operation: string, status: number): UpstreamError {
  return new UpstreamError(service, isTransientStatus(status), status, `${service} ${operation}: HTTP ${status}`)
}

export interface AdminHttpOptions {
  /** The admin API's base URL; its path, if any, prefixes every request's. */
  adminUrl: string
  /** Sent as `Authorization: Bearer` (Ory Network API keys). */
  token?: string | undefined
  /** Per call: from the call until the whole answer is read, waiting for a connection included. */
  timeoutMs: number
  proxy?: ProxySettings | undefined
  /** Connections open at once (default 128); more calls wait for one. */
  maxConnections?: number
  /** An idle connection is closed after this long (default 4000 ms). */
  idleTimeoutMs?: number
}

/** A request to the admin API; `path` (and query) is relative to the admin URL. */
export interface AdminRequest {
  method: Dispatcher.HttpMethod
  path: string
  headers?: Readonly<Record<string, string>>
  body?: string
}

/** Any answer of the admin API, read whole (at most 1 MiB). */
export interface AdminAnswer {
  status: number
  /** The answer's header fields, names in lower case. */
  headers: Readonly<Record<string, string | string[] | undefined>> & { 'content-type'?: string }
  body: string
}

export interface AdminHttp {
  /**
   * Sends one request and reads its answer, whatever its status. Rejects with a transient
   * {@link UpstreamError} when no answer came in time (refused, reset, timed out, unreadable, too large);
   * `operation` names the call in that error's message.
   */
  send: (request: AdminRequest, operation: string) => Promise<AdminAnswer>
  /**
   * `GET <admin URL><pathAndQuery>` with the admin token, e.g. `get('/admin/identities?page_size=1')`:
   * the generic admin call, on the same connections, deadline and limits as every other.
   */
  get: (pathAndQuery: string) => Promise<AdminAnswer>
  /** Closes the connections: idle ones at once, those in flight once answered. */
  close: () => Promise<void>
}

/** Why a call got no usable answer. */
type Failure = 'timeout' | 'too large' | 'no answer' | 'invalid request'

/**
 * One call, read through undici's dispatcher interface: the status, the header fields, and the body
 * up to the limit. The deadline is this call's own: it rejects at once, even while the call waits
 * for a connection, and aborts the call when undici starts it.
 */
class AnswerReader implements Dispatcher.DispatchHandler {
  #status = 0
  #headers: AdminAnswer['headers'] = {}
  readonly #chunks: Buffer[] = []
  #size = 0
  #settled = false
  #controller: Dispatcher.DispatchController | undefined
  readonly #deadline: NodeJS.Timeout
  readonly #resolve: (answer: AdminAnswer) => void
  readonly #reject: (failure: Failure, cause?: unknown) => void

  constructor (timeoutMs: number, resolve: (answer: AdminAnswer) => void, reject: (failure: Failure, cause?: unknown) => void) {
    this.#resolve = resolve
    this.#reject = reject
    this.#deadline = setTimeout(() => this.#fail('timeout'), timeoutMs)
  }

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#settled) controller.abort(new Error('timed out before it was sent'))
  }

  onResponseStart (controller: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    this.#status = status
    this.#headers = headers
    const length = headers['content-length']
    if (typeof length === 'string' && Number(length) > MAX_RESPONSE_BYTES) this.#fail('too large')
  }

  onResponseData (_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#size += chunk.length
    if (this.#size > MAX_RESPONSE_BYTES) return this.#fail('too large')
    this.#chunks.push(chunk)
  }

  onResponseEnd (): void {
    if (this.#settled) return
    this.#settled = true
    clearTimeout(this.#deadline)
    const body = this.#chunks.length === 0 ? '' : this.#chunks.length === 1 ? (this.#chunks[0] as Buffer).toString('utf8') : Buffer.concat(this.#chunks).toString('utf8')
    this.#resolve({ status: this.#status, headers: this.#headers, body })
  }

  onResponseError (_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    const code = (err as { code?: unknown }).code
    this.#fail(code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE' ? 'too large' : code === 'UND_ERR_INVALID_ARG' ? 'invalid request' : 'no answer', err)
  }

  #fail (failure: Failure, cause?: unknown): void {
    if (this.#settled) return
    this.#settled = true
    clearTimeout(this.#deadline)
    this.#controller?.abort(new Error(failure))
    this.#reject(failure, cause)
  }
}

/**
 * The HTTP side of one Ory admin API, over undici: a keep-alive pool (or the proxy-aware agent, see
 * {@link createDispatcher}) made on the first call, a deadline per call, answers over 1 MiB refused.
 */
export function createAdminHttp (service: OryService, options: AdminHttpOptions): AdminHttp {
  const base = new URL(options.adminUrl)
  const origin = base.origin
  const prefix = base.pathname.replace(/\/+$/, '')
  const authorization = options.token !== undefined ? `Bearer ${options.token}` : undefined
  let dispatcher: Dispatcher | undefined
  let closed: Promise<void> | undefined

  const send = async (request: AdminRequest, operation: string): Promise<AdminAnswer> => {
    if (closed !== undefined) throw new UpstreamError(service, true, undefined, `${service} ${operation}: the client is closed`)
    dispatcher ??= createDispatcher(origin, {
      proxy: options.proxy,
      timeoutMs: options.timeoutMs,
      ...(options.maxConnections !== undefined ? { connections: options.maxConnections } : {}),
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {})
    })
    const current = dispatcher
    return await new Promise<AdminAnswer>((resolve, reject) => {
      const reader = new AnswerReader(options.timeoutMs, resolve, (failure, cause) => {
        const why = {
          timeout: `no answer within ${options.timeoutMs} ms`,
          'too large': `the answer is larger than ${MAX_RESPONSE_BYTES} bytes`,
          'no answer': `no answer (${codeOf(cause)})`,
          // A path or header field that would split the request: no retry can cure it.
          'invalid request': 'the request cannot be sent as it is'
        }[failure]
        reject(new UpstreamError(service, failure !== 'invalid request', undefined, `${service} ${operation}: ${why}`,
          cause === undefined || failure === 'invalid request' ? undefined : { cause }))
      })
      try {
        current.dispatch({
          origin,
          method: request.method,
          path: prefix + request.path,
          ...(request.headers !== undefined ? { headers: fieldList(request.headers) } : {}),
          ...(request.body !== undefined ? { body: request.body } : {})
        }, reader)
      } catch (err) {
        reader.onResponseError(undefined, err as Error)
      }
    })
  }

  return {
    send,
    get: async (pathAndQuery) => await send({
      method: 'GET',
      path: pathAndQuery,
      headers: authorization !== undefined ? { accept: 'application/json', authorization } : { accept: 'application/json' }
    }, `GET ${pathAndQuery.split('?')[0] ?? ''}`),
    close: async () => {
      closed ??= dispatcher?.close() ?? Promise.resolve()
      await closed
    }
  }
}

const fieldLists = new WeakMap<object, string[]>()

/**
 * Header fields as undici's flat list of names and values: a list, not an object, since undici's
 * proxy agent adds `host` to an object it is given. Made once for a frozen object, which a call
 * shares with others (see `uuidPathTemplate`).
 */
function fieldList (headers: Readonly<Record<string, string>>): string[] {
  let list = fieldLists.get(headers)
  if (list === undefined) {
    list = Object.entries(headers).flat()
    if (Object.isFrozen(headers)) fieldLists.set(headers, list)
  }
  return list
}

/** The code of a socket or undici error (ECONNREFUSED, UND_ERR_SOCKET, …), else its class (HTTPParserError). */
function codeOf (err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code
  if (typeof code === 'string') return code
  return err instanceof Error && err.name !== 'Error' ? err.name : 'connection failed'
}

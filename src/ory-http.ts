import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'

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

/** A request that got no answer: refused, reset, timed out. `code` is Node's (ECONNREFUSED, …) or ETIMEDOUT. */
export class TransportError extends Error {
  readonly code: string
  constructor (code: string) {
    super(code)
    this.name = 'TransportError'
    this.code = code
  }
}

const MAX_BODY = 1024 * 1024

/**
 * Sends the requests @ory/client builds over keep-alive connections of Node's own HTTP client. The
 * generated client's axios pipeline costs several times the call itself, on the relay's hottest path
 * (one call per revocation); the request — path, method, headers, credentials — stays the generated
 * client's. Every request has a deadline; answers larger than 1 MiB are cut off.
 */
export function createOryTransport (baseUrl: string, timeoutMs: number): (request: OryRequest) => Promise<OryResponse> {
  const base = new URL(baseUrl.replace(/\/+$/, ''))
  const secure = base.protocol === 'https:'
  const send = secure ? httpsRequest : httpRequest
  const agent = secure
    ? new HttpsAgent({ keepAlive: true, maxSockets: 128, scheduling: 'lifo' })
    : new HttpAgent({ keepAlive: true, maxSockets: 128, scheduling: 'lifo' })
  const prefix = base.pathname === '/' ? '' : base.pathname

  return async ({ url, options }) => await new Promise<OryResponse>((resolve, reject) => {
    const body = options.data === undefined ? undefined : typeof options.data === 'string' ? options.data : JSON.stringify(options.data)
    const headers: Record<string, string> = { accept: 'application/json' }
    for (const [name, value] of Object.entries(options.headers ?? {})) if (value !== undefined) headers[name] = String(value)
    if (body !== undefined) headers['content-type'] ??= 'application/json'
    const req = send({
      protocol: base.protocol,
      hostname: base.hostname,
      port: base.port,
      path: prefix + url,
      method: options.method ?? 'GET',
      headers,
      agent
    }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size <= MAX_BODY) chunks.push(chunk)
      })
      res.on('end', () => {
        clearTimeout(deadline)
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })
      })
      res.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'ERESPONSE'))
    })
    const fail = (code: string): void => {
      clearTimeout(deadline)
      reject(new TransportError(code))
    }
    const deadline = setTimeout(() => {
      req.destroy()
      fail('ETIMEDOUT')
    }, timeoutMs)
    req.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? 'EREQUEST'))
    req.end(body)
  })
}

import { createServer, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Addresses } from './ory-config.js'

/** A request that one of Ory's servers made to a listener of the suite. */
export interface CapturedRequest {
  method: string
  path: string
  headers: Record<string, string>
  body: string
}

/**
 * A listener that stands where Ory calls out (Kratos' web hook, a client's back-channel logout URI),
 * records each request whole, and answers as the relay would.
 */
export class CaptureServer {
  readonly requests: CapturedRequest[] = []
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  origin = ''

  private constructor (answer: (request: CapturedRequest) => number) {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const headers: Record<string, string> = {}
        for (let i = 0; i < req.rawHeaders.length; i += 2) headers[(req.rawHeaders[i] ?? '').toLowerCase()] = req.rawHeaders[i + 1] ?? ''
        const request = { method: req.method ?? '', path: req.url ?? '', headers, body: Buffer.concat(chunks).toString('utf8') }
        this.requests.push(request)
        res.writeHead(answer(request)).end()
      })
    })
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
  }

  static async start (answer: (request: CapturedRequest) => number): Promise<CaptureServer> {
    const capture = new CaptureServer(answer)
    await new Promise<void>((resolve) => capture.#server.listen(0, '127.0.0.1', resolve))
    capture.origin = `http://127.0.0.1:${(capture.#server.address() as AddressInfo).port}`
    return capture
  }

  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/** The compose stack's origins, which recordings show in place of the run's random ports. */
const RECORDED_ORIGINS: Record<keyof Addresses, string> = {
  hydraPublic: 'http://127.0.0.1:4444',
  hydraAdmin: 'http://127.0.0.1:4445',
  kratosPublic: 'http://127.0.0.1:4433',
  kratosAdmin: 'http://127.0.0.1:4434',
  ui: 'http://127.0.0.1:4455',
  relay: 'http://127.0.0.1:8080'
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/
/** Members whose numbers are times (seconds since the epoch). */
const EPOCH_MEMBERS = new Set(['iat', 'exp', 'nbf', 'auth_time', 'rat', 'requested_at'])

/** A value of the same length and character classes: letters become x, digits 0; the rest stays. */
function opaque (value: string): string {
  return value.replace(/[A-Za-z]/g, 'x').replace(/[0-9]/g, '0')
}

/**
 * Replaces what is secret or particular to one run by placeholders of the same shape, so that a
 * recording can be kept in the repository and compared across runs: UUIDs become numbered UUIDs
 * (the same value always the same number, so that a sid in a token still equals the login request's
 * session_id), the run's origins become the compose stack's, dates and epoch times fixed values, and
 * every secret the suite names (keys, challenges, tokens, emails) an opaque string of its length.
 */
export class Sanitizer {
  readonly #uuids = new Map<string, string>()
  readonly #secrets = new Map<string, string>()
  readonly #origins: Array<[string, string]>

  constructor (addresses: Addresses) {
    this.#origins = (Object.keys(RECORDED_ORIGINS) as Array<keyof Addresses>).map((name) => [addresses[name], RECORDED_ORIGINS[name]])
  }

  /** Names a secret; `as` gives its placeholder, else an opaque string of its length. */
  secret (value: string, as?: string): this {
    if (value !== '' && !this.#secrets.has(value)) this.#secrets.set(value, as ?? opaque(value))
    return this
  }

  /** Names an origin of the run (a listener of the suite) and what recordings show instead. */
  origin (actual: string, recorded: string): this {
    this.#origins.push([actual, recorded])
    return this
  }

  string (value: string): string {
    if (ISO_DATE.test(value)) return value.replace(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/, '2025-01-01T00:00:00').replace(/\.\d+/, (fraction) => fraction.replace(/\d/g, '0'))
    let result = value
    // Longest first, so that a secret inside another (a challenge in a URL) is replaced whole.
    for (const [secret, placeholder] of [...this.#secrets].sort((a, b) => b[0].length - a[0].length)) {
      result = result.split(secret).join(placeholder)
      const encoded = encodeURIComponent(secret)
      if (encoded !== secret) result = result.split(encoded).join(encodeURIComponent(placeholder))
    }
    for (const [actual, recorded] of this.#origins) {
      const [host, recordedHost] = [new URL(actual).host, new URL(recorded).host]
      // As they are, and URL-encoded inside another URL's query (a redirect_uri).
      for (const [from, to] of [[actual, recorded], [host, recordedHost]] as const) {
        result = result.split(from).join(to).split(encodeURIComponent(from)).join(encodeURIComponent(to))
      }
    }
    result = result.replace(UUID, (uuid) => {
      const key = uuid.toLowerCase()
      let placeholder = this.#uuids.get(key)
      if (placeholder === undefined) {
        placeholder = `00000000-0000-4000-8000-${String(this.#uuids.size + 1).padStart(12, '0')}`
        this.#uuids.set(key, placeholder)
      }
      return placeholder
    })
    // Query parameters that carry a token, a challenge or a verifier: opaque.
    return result.replace(/([?&]([^=&#\s]+)=)([^&#\s]+)/g, (all, prefix: string, name: string, value: string) =>
      /challenge|verifier|token|code|state|nonce|hint/i.test(name) && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)
        ? prefix + opaque(value)
        : all)
  }

  value (value: unknown, member = ''): unknown {
    // A device's address carries the test's own client port.
    if (member === 'ip_address' && typeof value === 'string') return value.replace(/:\d+$/, ':40000')
    if (typeof value === 'string') return this.string(value)
    if (typeof value === 'number' && EPOCH_MEMBERS.has(member)) return 1735689600
    if (Array.isArray(value)) return value.map((item) => this.value(item, member))
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.value(item, key)]))
    }
    return value
  }

  /** Header fields with their values sanitized; Date fixed, cookies and credentials made opaque. */
  headers (headers: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.entries(headers).map(([name, value]) => {
      if (name === 'date') return [name, 'Wed, 01 Jan 2025 00:00:00 GMT']
      if (name === 'set-cookie' || name === 'cookie') {
        // Kratos names its CSRF cookie by a digest of its URL: the digest, like the value, is the run's.
        return [name, value.replace(/=([^;]*)/, (_all, cookie: string) => `=${opaque(cookie)}`).replace(/[0-9a-f]{32,}/g, (digest) => '0'.repeat(digest.length))]
      }
      if (name === 'authorization') return [name, value.replace(/^(\S+\s+)(.*)$/, (_all, scheme: string, credentials: string) => scheme + opaque(credentials))]
      return [name, this.string(value)]
    }))
  }
}

/** A response's header fields as one record (Set-Cookie fields joined, as Headers does for the others). */
export function headerRecord (headers: Headers): Record<string, string> {
  const record: Record<string, string> = {}
  headers.forEach((value, name) => { record[name] = value })
  const cookies = headers.getSetCookie()
  if (cookies.length > 0) record['set-cookie'] = cookies.join(', ')
  return record
}

import { readFileSync } from 'node:fs'

/**
 * What real Ory Hydra and Kratos answered (or sent), recorded by the end-to-end suite from the
 * servers themselves (test/e2e/ory-contract.test.ts with RECORD_ORY_FIXTURES=1) and kept in
 * test/fixtures/ory-recorded: the doubles are held to it by test/doubles/doubles.test.ts, and the real
 * servers by the end-to-end suite.
 */
export interface RecordedFile {
  hydra_version: string
  kratos_version: string
  description: string
  exchanges: Record<string, Exchange>
}

/** One request and its answer. For a call Ory made to the suite, `request` is what it sent. */
export interface Exchange {
  request: { method: string, url: string, headers?: Record<string, string>, body?: unknown }
  response?: { status: number, headers: Record<string, string>, body: unknown }
  /** The protected header and claims of the JWS the exchange carries (a logout token). */
  token?: { header: unknown, claims: unknown }
}

/** The recording `name` (`hydra`, `kratos`) from test/fixtures/ory-recorded. */
export function loadRecorded (name: string): RecordedFile {
  return JSON.parse(readFileSync(new URL(`../fixtures/ory-recorded/${name}.json`, import.meta.url), 'utf8')) as RecordedFile
}

/**
 * The shape of a JSON value: its type, with an object's members and an array's element shapes (each
 * distinct shape once, in a stable order), values left out.
 */
export function shapeOf (value: unknown): unknown {
  if (value === null) return 'null'
  if (Array.isArray(value)) {
    const shapes = new Map<string, unknown>()
    for (const item of value) {
      const shape = shapeOf(item)
      shapes.set(JSON.stringify(shape), shape)
    }
    return { array: [...shapes.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, shape]) => shape) }
  }
  if (typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, shapeOf((value as Record<string, unknown>)[key])]))
  }
  return typeof value
}

/** Header fields that say how a message is framed or when it was sent, not what it is: not compared. */
const FRAMING = new Set(['date', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'host'])

/** What of a set of header fields is compared: the names (framing aside), and the media type. */
export function comparableHeaders (headers: Record<string, string> | undefined): { names: string[], contentType: string | undefined } {
  const names = Object.keys(headers ?? {}).map((name) => name.toLowerCase()).filter((name) => !FRAMING.has(name)).sort()
  const contentType = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === 'content-type')?.[1]
  return { names, contentType }
}

/**
 * What of an exchange must stay the same between the recording, the real servers and the doubles:
 * the status, the header fields' names and media type, the shapes of JSON bodies and tokens, and
 * text bodies (a router's "404 page not found") as they are.
 */
export function comparable (exchange: Exchange): unknown {
  const body = (value: unknown): unknown => typeof value === 'string' ? { text: value } : shapeOf(value ?? null)
  return {
    request: {
      method: exchange.request.method,
      ...(exchange.request.headers !== undefined ? { headers: comparableHeaders(exchange.request.headers) } : {}),
      ...(exchange.request.body !== undefined ? { body: shapeOf(exchange.request.body) } : {})
    },
    ...(exchange.response !== undefined
      ? { response: { status: exchange.response.status, headers: comparableHeaders(exchange.response.headers), body: body(exchange.response.body) } }
      : {}),
    ...(exchange.token !== undefined ? { token: { header: shapeOf(exchange.token.header), claims: shapeOf(exchange.token.claims) } } : {})
  }
}

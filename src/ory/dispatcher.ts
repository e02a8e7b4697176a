import { createRequire } from 'node:module'
import type * as Undici from 'undici'

let loaded: typeof Undici | undefined

/**
 * undici, loaded on first use: an idle relay, which has called neither Ory nor the issuer yet, does
 * not carry its ~19 MB of resident memory. Loaded through require, like @ory/client (see admin.ts).
 */
export function undici (): typeof Undici {
  loaded ??= createRequire(import.meta.url)('undici') as typeof Undici
  return loaded
}

/**
 * The proxy variables as curl and undici read them (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`), from
 * the configuration: never from `process.env` here. Unset means no proxy.
 */
export interface ProxySettings {
  /** Proxy for `http:` URLs. */
  httpProxy?: string | undefined
  /** Proxy for `https:` URLs. */
  httpsProxy?: string | undefined
  /** Hosts (`host`, `.domain`, `host:port`, `*`) reached directly, comma or space separated. */
  noProxy?: string | undefined
}

export interface DispatcherOptions {
  proxy?: ProxySettings | undefined
  /** Connections open at once per origin; more requests wait for one. */
  connections?: number
  /** An idle connection is closed after this long (ms), before a server would close it under a request. */
  idleTimeoutMs?: number
  /** Answers whose body is larger are refused. */
  maxResponseBytes?: number
  /** undici's own timers, a backstop behind the caller's deadline (ms). */
  timeoutMs?: number
}

export const DEFAULT_CONNECTIONS = 128
export const DEFAULT_IDLE_TIMEOUT_MS = 4000
export const MAX_RESPONSE_BYTES = 1024 * 1024

export function hasProxy (proxy: ProxySettings | undefined): boolean {
  return (proxy?.httpProxy ?? '') !== '' || (proxy?.httpsProxy ?? '') !== ''
}

/**
 * A keep-alive dispatcher: a pool of HTTP/1.1 connections to `origin` (or a pool per origin when none
 * is given), TLS with Node's certificate checks (NODE_EXTRA_CA_CERTS included); or, when a proxy is
 * configured, undici's EnvHttpProxyAgent with the configured values, which tunnels through the proxy
 * unless `NO_PROXY` names the host. The configured values are always passed, empty when unset, so that
 * undici never reads the environment itself.
 */
export function createDispatcher (origin: string | undefined, options: DispatcherOptions = {}): Undici.Dispatcher {
  const { Agent, Pool, EnvHttpProxyAgent } = undici()
  const idle = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
  const common = {
    connections: options.connections ?? DEFAULT_CONNECTIONS,
    keepAliveTimeout: idle,
    keepAliveMaxTimeout: idle,
    maxResponseSize: options.maxResponseBytes ?? MAX_RESPONSE_BYTES,
    ...(options.timeoutMs !== undefined ? { headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs } : {})
  }
  if (hasProxy(options.proxy)) {
    return new EnvHttpProxyAgent({
      ...common,
      httpProxy: options.proxy?.httpProxy ?? '',
      httpsProxy: options.proxy?.httpsProxy ?? '',
      noProxy: options.proxy?.noProxy ?? ''
    })
  }
  return origin === undefined ? new Agent(common) : new Pool(origin, common)
}

/** A fetch over a dispatcher of its own, and the way to close that dispatcher's connections. */
export interface OutboundFetch {
  fetch: typeof fetch
  /** Closes the idle connections; requests in flight finish. */
  close: () => Promise<void>
}

/**
 * undici's fetch over a dispatcher of its own ({@link createDispatcher}: keep-alive, proxy-aware,
 * answers over 1 MiB refused), for the issuer's discovery document and JWKS. undici and the
 * dispatcher are loaded on the first request.
 */
export function createOutboundFetch (options: Pick<DispatcherOptions, 'proxy'> = {}): OutboundFetch {
  let dispatcher: Undici.Dispatcher | undefined
  const outbound = async (input: Parameters<typeof fetch>[0], init?: RequestInit): Promise<Response> => {
    dispatcher ??= createDispatcher(undefined, { ...options, connections: 8 })
    // undici's Request and Response are those of Node's own fetch, from another copy of undici.
    const response = await undici().fetch(input as Undici.RequestInfo, { ...init as unknown as Undici.RequestInit, dispatcher })
    return response as unknown as Response
  }
  return {
    fetch: outbound as typeof fetch,
    close: async () => { await dispatcher?.close() }
  }
}

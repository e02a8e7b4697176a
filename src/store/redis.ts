import { hash } from 'node:crypto'
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import { redactUrl } from '../config.js'
import { storeUnavailable } from '../errors.js'

export type RedisClient = Redis | Cluster

export interface RedisConnectionOptions {
  url?: string | undefined
  clusterNodes?: readonly string[]
  tls?: boolean
  commandTimeoutMs?: number
}

/**
 * A connection that fails fast, for a check (`doctor`): it connects only when asked, never
 * reconnects, and gives up on a command after `timeoutMs`.
 */
export interface ProbeConnection {
  timeoutMs: number
}

/**
 * Opens the connection to a single Redis (`url`) or a Redis Cluster (`clusterNodes`). Commands fail
 * at once while the connection is down, and a command whose connection broke is never sent again
 * after a reconnect: a caller that was told "failed" must be able to trust that nothing was written
 * later behind its back. With `probe`, the same connection fails fast instead of reconnecting
 * (see {@link ProbeConnection}); `doctor` checks Redis with exactly the service's options otherwise.
 */
export function createRedisClient (options: RedisConnectionOptions, log: Logger | undefined, probe?: ProbeConnection): RedisClient {
  const reconnect = (attempt: number): number | null => probe === undefined ? Math.min(100 * attempt, 2000) : null
  const common = {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: probe?.timeoutMs ?? options.commandTimeoutMs ?? 2000,
    connectTimeout: probe?.timeoutMs ?? 5000,
    enableAutoPipelining: true,
    lazyConnect: probe !== undefined,
    retryStrategy: reconnect,
    ...(options.tls === true ? { tls: {} } : {})
  } satisfies RedisOptions
  let client: RedisClient
  if (options.clusterNodes !== undefined && options.clusterNodes.length > 0) {
    const clusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      lazyConnect: probe !== undefined,
      scaleReads: 'master',
      clusterRetryStrategy: reconnect,
      redisOptions: common
    } satisfies ClusterOptions
    client = new Cluster(options.clusterNodes.map((node) => {
      const [host, port] = node.split(':')
      return { host: host ?? '', port: Number(port) }
    }), clusterOptions)
  } else if (options.url !== undefined) {
    client = new Redis(options.url, common)
  } else {
    throw new TypeError('createRedisClient needs a url or cluster nodes')
  }
  if (log !== undefined) watchConnection(client, log, options.url !== undefined ? redactUrl(options.url) : options.clusterNodes?.join(','))
  return client
}

/** Logs each change of connection state once, not every failed reconnect. */
function watchConnection (client: RedisClient, log: Logger, target: string | undefined): void {
  let up = false
  let lastError: string | undefined
  client.on('ready', () => {
    up = true
    lastError = undefined
    log.info({ redis: target }, 'redis connected')
  })
  client.on('error', (err: Error) => {
    if (err.message === lastError) return
    lastError = err.message
    log[up ? 'error' : 'warn']({ redis: target, err: { message: err.message } }, 'redis connection error')
  })
  client.on('end', () => { up = false })
  client.on('close', () => {
    if (up) log.warn({ redis: target }, 'redis connection lost; reconnecting')
    up = false
  })
}

/** Resolves once the client is ready, or false after `timeoutMs` (the service starts anyway, not ready). */
export async function waitForRedis (client: RedisClient, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return true
  return await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => { cleanup(); resolve(false) }, timeoutMs)
    timer.unref()
    const onReady = (): void => { cleanup(); resolve(true) }
    const cleanup = (): void => { clearTimeout(timer); client.off('ready', onReady) }
    client.on('ready', onReady)
  })
}

/**
 * Builds every key the relay writes: `<prefix><name>:{<tag>}[:<suffix>]`. Keys that a script touches
 * together share their tag, so that they live in one slot of a Redis Cluster. Braces and `%` in a tag
 * are percent-encoded, so that a tag cannot end early or be empty.
 */
export class Keyspace {
  constructor (readonly prefix: string) {}

  key (name: string, tag: string, suffix?: string): string {
    const safeTag = tag.replace(/[{}%]/g, (char) => encodeURIComponent(char))
    return `${this.prefix}${name}:{${safeTag}}${suffix === undefined ? '' : `:${suffix}`}`
  }

  /**
   * The keys of one name and tag, by their suffix: `key(name, tag, suffix)` with the fixed part built
   * once, for keys made on every request.
   */
  family (name: string, tag: string): (suffix: string) => string {
    const head = `${this.key(name, tag)}:`
    return (suffix) => head + suffix
  }
}

/** A Lua script, registered on the client under its name; `keys` is its key count or 'variable'. */
export interface LuaScript {
  name: string
  keys: number | 'variable'
  lua: string
}

type ScriptArg = string | number | Buffer
type ScriptCall = (...args: ScriptArg[]) => Promise<unknown>

/**
 * Registers scripts (`defineCommand`: EVALSHA with a fallback to EVAL) and returns a caller for them.
 * With `buffers`, replies keep their raw bytes (ioredis' `<name>Buffer` variant of each script).
 *
 * A script with a variable number of keys is sent as EVALSHA itself (EVAL when Redis does not have it
 * yet), not as a command of its own: ioredis' auto-pipelining groups a custom command by its first
 * argument, which would be the key count, so that a Redis Cluster client could batch it with commands
 * for another node, and the whole batch would fail; EVALSHA it groups by its first key.
 */
export function defineScripts (client: RedisClient, scripts: readonly LuaScript[]) {
  const variable = new Map<string, { lua: string, sha: string }>()
  for (const script of scripts) {
    if (script.keys === 'variable') {
      variable.set(script.name, { lua: script.lua, sha: hash('sha1', script.lua, 'hex') })
      continue
    }
    if (script.name in client) continue
    client.defineCommand(script.name, { numberOfKeys: script.keys, lua: script.lua })
  }
  return async (name: string, keys: readonly string[], args: readonly ScriptArg[] = [], { buffers = false } = {}): Promise<unknown> => {
    const script = variable.get(name)
    if (script !== undefined) {
      if (buffers) throw new TypeError(`script ${name}: raw replies only from scripts with a fixed key count`)
      try {
        return await client.evalsha(script.sha, keys.length, ...keys, ...args)
      } catch (err) {
        if (!isNoScript(err)) throw storeUnavailable(err)
      }
      try {
        return await client.eval(script.lua, keys.length, ...keys, ...args)
      } catch (err) {
        throw storeUnavailable(err)
      }
    }
    const call = (client as unknown as Record<string, ScriptCall>)[buffers ? `${name}Buffer` : name]
    if (call === undefined) throw new TypeError(`unknown script ${name}`)
    try {
      return await call.call(client, ...keys, ...args)
    } catch (err) {
      throw storeUnavailable(err)
    }
  }
}

/** Redis does not hold the script (restarted, flushed, or another node of a cluster): the error's code, its first word. */
function isNoScript (err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT')
}

/** Runs a Redis call, turning any failure into `ERR_STORE_UNAVAILABLE`. */
export async function redisCall<T> (operation: Promise<T>): Promise<T> {
  try {
    return await operation
  } catch (err) {
    throw storeUnavailable(err)
  }
}

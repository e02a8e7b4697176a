import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, spawnRedis, type OwnedRedis } from '../../helpers/redis.js'
import type { OryBinaries } from './binaries.js'
import { Browser } from './browser.js'
import type { Addresses } from './ory-config.js'
import { OryPair, randomHex, type OAuth2Client } from './ory.js'
import { waitFor, type WaitOptions } from './process.js'
import { RecordingProxy, type ProxiedCall } from './proxy.js'
import { RelayProcess, type LogLine } from './relay.js'

/** The part of a tap test the stack needs. */
export interface StackTest {
  teardown: (fn: () => unknown) => void
  passing: () => boolean
  comment: (...message: unknown[]) => void
}

/** Everything one test file runs against: real Hydra and Kratos, a Redis with AOF, the relay as a process. */
export interface Stack {
  dir: string
  ory: OryPair
  redis: OwnedRedis
  relay: RelayProcess
  keys: { hook: string, admin: string }
  /** Where Hydra sends the browser with the code; nothing listens, the test reads the redirect. */
  appOrigin: string
  /** A client of Hydra with the relay as its back-channel logout URI. */
  client: (settings?: Record<string, unknown>) => Promise<OAuth2Client>
  /** A fresh browser (an empty cookie jar). */
  browser: () => Browser
  /** A fresh identity with a password credential; its email and password are returned too. */
  identity: () => Promise<{ id: string, email: string, password: string }>
  /** The bounds of the suite's waits for an effect, quoting every process's log on failure. */
  wait: Pick<WaitOptions, 'timeoutMs' | 'processes'>
  /** The sids the relay's admin API lists for an identity. */
  indexedSids: (identityId: string) => Promise<string[]>
  /** Waits until Kratos' admin API lists no active session of the identity. */
  noActiveSession: (identityId: string, why: string) => Promise<void>
  /** Where the counts of back-channel logouts stand now, for {@link Stack.logoutsAnswered}. */
  logoutsSoFar: () => BackchannelCounts
  /**
   * Waits for `count` back-channel logouts after `before`, as both sides saw them: answered by the
   * relay (its request log lines, returned) and delivered according to Hydra (its log: 200 or 204).
   */
  logoutsAnswered: (before: BackchannelCounts, count: number) => Promise<LogLine[]>
  /** The relay's calls to Hydra's admin API, when the stack was started with `proxyHydraAdmin`. */
  hydraAdminCalls: ProxiedCall[]
}

/** How many back-channel logouts the relay logged, and Hydra logged as delivered. */
export interface BackchannelCounts {
  relay: number
  hydra: number
}

export interface StackOptions {
  /** The relay's environment on top of the stack's (undefined removes a variable). */
  relayEnv?: Record<string, string | undefined>
  /**
   * Where Kratos' login hook calls, instead of the relay (a listener that records the call); the relay
   * is started all the same.
   */
  hookOrigin?: string
  /** The relay calls Hydra's admin API through a {@link RecordingProxy}, which records the order of its calls. */
  proxyHydraAdmin?: boolean
}

/** `count` distinct free ports on 127.0.0.1. */
export async function freePorts (count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

/**
 * Starts the stack for one test file and stops all of it at the file's teardown. The directory with
 * the configuration, databases and every process's log is kept when the file failed, and its path
 * printed.
 */
export async function startStack (t: StackTest, binaries: OryBinaries, options: StackOptions = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'logout-relay-e2e-'))
  const [hydraPublic, hydraAdmin, kratosPublic, kratosAdmin, ui, app, relayPort] = await freePorts(7)
  const origin = (port: number | undefined): string => `http://127.0.0.1:${String(port)}`
  const relayOrigin = origin(relayPort)
  const addresses: Addresses = {
    hydraPublic: origin(hydraPublic),
    hydraAdmin: origin(hydraAdmin),
    kratosPublic: origin(kratosPublic),
    kratosAdmin: origin(kratosAdmin),
    ui: origin(ui),
    relay: options.hookOrigin ?? relayOrigin
  }
  const keys = { hook: randomHex(32), admin: randomHex(32) }

  // Stopped in reverse order of starting: the relay, then Ory, then Redis.
  const started: Array<() => Promise<void>> = []
  t.teardown(async () => {
    for (const stop of started.reverse()) await stop()
    if (t.passing()) {
      rmSync(dir, { recursive: true, force: true })
    } else {
      t.comment(`the stack's configuration and logs are kept in ${dir}`)
    }
  })

  const redisStarting = spawnRedis({ appendOnly: true })
  const oryStarting = OryPair.start({
    binaries,
    dir,
    addresses,
    secrets: { hydraSystem: randomHex(32), kratosDefault: randomHex(32), kratosCookie: randomHex(32), hookKey: keys.hook }
  })
  const [redisStarted, oryStarted] = await Promise.allSettled([redisStarting, oryStarting])
  if (redisStarted.status === 'fulfilled') started.push(async () => { await redisStarted.value.close() })
  if (oryStarted.status === 'fulfilled') started.push(async () => { await oryStarted.value.close() })
  if (redisStarted.status === 'rejected') throw redisStarted.reason
  if (oryStarted.status === 'rejected') throw oryStarted.reason
  const redis = redisStarted.value
  const ory = oryStarted.value
  const env: Record<string, string> = {
    PORT: String(relayPort),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    OIDC_ISSUER: ory.issuer,
    HYDRA_ADMIN_URL: addresses.hydraAdmin,
    KRATOS_ADMIN_URL: addresses.kratosAdmin,
    LOGIN_HOOK_API_KEYS: keys.hook,
    ADMIN_API_KEYS: keys.admin,
    REDIS_URL: redis.url,
    // Short, so that revocations that failed while Kratos was down are retried within seconds.
    REVOCATION_BACKOFF_BASE: '100',
    REVOCATION_BACKOFF_MAX: '1000'
  }
  let proxy: RecordingProxy | undefined
  if (options.proxyHydraAdmin === true) {
    proxy = await RecordingProxy.start(addresses.hydraAdmin)
    const running = proxy
    started.push(async () => { await running.close() })
    env['HYDRA_ADMIN_URL'] = proxy.origin
  }
  for (const [name, value] of Object.entries(options.relayEnv ?? {})) {
    if (value === undefined) Reflect.deleteProperty(env, name)
    else env[name] = value
  }
  const relay = await RelayProcess.start(env, join(dir, 'relay.log'))
  started.push(async () => { await relay.stop() })

  const pair = ory
  const appOrigin = origin(app)
  // Kratos may be restarted: the processes whose logs a failed wait quotes are looked up each time.
  const wait = (): Stack['wait'] => ({ timeoutMs: 30_000, processes: [pair.hydra, pair.kratos, relay.process] })
  return {
    hydraAdminCalls: proxy?.calls ?? [],
    get wait () { return wait() },
    indexedSids: async (identityId) => {
      const answer = await relay.admin<{ sessions: Array<{ sid: string }> }>('GET', `/admin/identities/${identityId}/sessions`)
      if (answer.status !== 200) throw new Error(`the relay's sessions listing answered ${answer.status}: ${answer.text}`)
      return answer.body.sessions.map((session) => session.sid)
    },
    noActiveSession: async (identityId, why) => {
      await waitFor(async () => (await pair.sessions(identityId, { active: true })).length === 0,
        { ...wait(), what: `Kratos to list no active session of ${identityId} (${why})` })
    },
    logoutsSoFar: () => ({ relay: relay.requests('/backchannel-logout').length, hydra: pair.backchannelLogouts().delivered }),
    logoutsAnswered: async (before, count) => {
      const lines = await waitFor(() => {
        const answered = relay.requests('/backchannel-logout').slice(before.relay)
        return answered.length >= count ? answered : undefined
      }, { ...wait(), what: `${count} back-channel logout(s) at the relay` })
      await waitFor(() => pair.backchannelLogouts().delivered - before.hydra >= count,
        { ...wait(), what: `Hydra to log ${count} delivered back-channel logout(s)` })
      return lines
    },
    dir,
    ory: pair,
    redis,
    relay,
    keys,
    appOrigin,
    client: async (settings = {}) => await pair.createClient({
      backchannelLogoutUri: `${relayOrigin}/backchannel-logout`,
      redirectUri: `${appOrigin}/callback`,
      ...settings
    }),
    browser: () => new Browser(),
    identity: async () => {
      const email = `user-${randomHex(6)}@example.com`
      const password = `pw-${randomHex(12)}`
      return { id: await pair.createIdentity(email, password), email, password }
    }
  }
}

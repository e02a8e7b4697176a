import { randomUUID } from 'node:crypto'
import { Writable } from 'node:stream'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildApp, type AppDeps } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'
import { createLogger } from '../src/ops/logger.js'
import { HydraDouble } from './doubles/hydra.js'
import { KratosDouble } from './doubles/kratos.js'
import type { OryDouble } from './doubles/ory-double.js'
import type { TestRedis } from './helpers/redis.js'

/** The part of a tap test a helper needs. */
export interface TestContext {
  teardown: (fn: () => unknown) => void
}

export const HOOK_KEY = 'hook-key-0123456789abcdef'

export interface Harness {
  app: FastifyInstance
  config: Config
  hydra: HydraDouble
  kratos: KratosDouble
  /** Every log line the app wrote, as JSON text. */
  logs: string[]
  /** Posts a logout token the way Hydra does. */
  logout: (token: string) => Promise<LightMyRequestResponse>
  /** Calls the login hook with the test key. */
  hook: (body: unknown, key?: string) => Promise<LightMyRequestResponse>
  /** Indexes a fresh login of a fresh identity with `sessions` Kratos sessions; returns both ids. */
  login: (sessions?: number) => Promise<{ identityId: string, sid: string }>
}

export interface BuildOptions {
  /** Environment on top of the harness defaults; undefined removes a default. */
  env?: Record<string, string | undefined>
  /** A real Redis; without one the app runs on the in-memory store. */
  redis?: TestRedis
  deps?: AppDeps
  hydra?: HydraDouble
  kratos?: KratosDouble
}

/** Fails the test's teardown when a double saw a call its API does not have, or answered off-spec. */
export function checkContracts (t: TestContext, ...doubles: OryDouble[]): void {
  t.teardown(() => {
    const violations = doubles.flatMap((double) => double.violations)
    if (violations.length > 0) throw new Error(`calls off the Ory API contracts:\n${violations.join('\n')}`)
  })
}

/** A Writable that keeps every line written, for tests that read the logs. */
export function captureLines (lines: string[]): Writable {
  return new Writable({
    write (chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''))
      done()
    }
  })
}

/**
 * Builds the app against real doubles of Hydra and Kratos (real HTTP servers) and, when given, a
 * real Redis; closes everything at teardown and fails it on any call off Ory's API contracts.
 */
export async function build (t: TestContext, options: BuildOptions = {}): Promise<Harness> {
  const hydra = options.hydra ?? await HydraDouble.start()
  const kratos = options.kratos ?? await new KratosDouble().listen()
  const env: Record<string, string | undefined> = {
    LOG_LEVEL: 'info',
    OIDC_ISSUER: hydra.issuer,
    KRATOS_ADMIN_URL: kratos.url,
    HYDRA_ADMIN_URL: hydra.url,
    LOGIN_HOOK_API_KEYS: HOOK_KEY,
    // Generous: the tests share two cores; tests of timeouts set their own.
    UPSTREAM_TIMEOUT: '3000',
    // The app shares its event loop with the test itself: shedding is tested on its own.
    MAX_EVENT_LOOP_DELAY: '0',
    REVOCATION_BACKOFF_BASE: '20',
    REVOCATION_BACKOFF_MAX: '200',
    // A prefix of its own per app: tests of one file share a Redis, never each other's queue.
    ...(options.redis !== undefined ? { REDIS_URL: options.redis.url, REDIS_KEY_PREFIX: `${options.redis.prefix}${randomUUID().slice(0, 8)}:` } : {}),
    ...options.env
  }
  const config = loadConfig(env)
  const logs: string[] = []
  const app = await buildApp(config, {
    logger: createLogger(config.logLevel, captureLines(logs)),
    pollIntervalMs: 50,
    ...options.deps
  })
  t.teardown(async () => {
    await app.close()
    if (options.hydra === undefined) await hydra.close()
    if (options.kratos === undefined) await kratos.close()
  })
  checkContracts(t, hydra, kratos)

  const hook: Harness['hook'] = (body, key = HOOK_KEY) => app.inject({
    method: 'POST',
    url: '/hooks/login',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    payload: JSON.stringify(body)
  })
  return {
    app,
    config,
    hydra,
    kratos,
    logs,
    logout: (token) => app.inject({
      method: 'POST',
      url: '/backchannel-logout',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ logout_token: token }).toString()
    }),
    hook,
    async login (sessions = 1) {
      const identityId = randomUUID()
      const sid = randomUUID()
      kratos.addSessions(identityId, sessions)
      const response = await hook({ identity_id: identityId, sid })
      if (response.statusCode !== 204) throw new Error(`login hook answered ${response.statusCode}: ${response.body}`)
      return { identityId, sid }
    }
  }
}

/** Polls `check` until it holds or `timeoutMs` passes; resolves to its last result. */
export async function eventually (check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return await check()
}

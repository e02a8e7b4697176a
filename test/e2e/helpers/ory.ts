import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { root, type OryBinaries } from './binaries.js'
import { renderHydraConfig, renderKratosConfig, type Addresses, type Secrets } from './ory-config.js'
import { ServiceProcess, runToEnd, waitFor } from './process.js'

/** Bounds of the waits around Ory's processes; generous, since CI shares two cores among two test files. */
const MIGRATE_TIMEOUT_MS = 90_000
const READY_TIMEOUT_MS = 60_000

/** A random secret of `bytes` bytes, in hex (what `openssl rand -hex` gives). */
export function randomHex (bytes = 32): string {
  return randomBytes(bytes).toString('hex')
}

/** An answer of an Ory API: status, headers and body (parsed when it is JSON). */
export interface OryAnswer<T = unknown> {
  status: number
  headers: Headers
  /** The body parsed as JSON; the raw text when it is not JSON; undefined when empty. */
  body: T
  text: string
}

/** Calls an Ory API and returns whatever it answers, without judging it. */
export async function call<T = unknown> (url: string, init: { method?: string, json?: unknown, form?: Record<string, string>, headers?: Record<string, string> } = {}): Promise<OryAnswer<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...init.headers }
  let body: string | undefined
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(init.json)
  } else if (init.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(init.form).toString()
  }
  const response = await fetch(url, { method: init.method ?? (body !== undefined ? 'POST' : 'GET'), headers, ...(body !== undefined ? { body } : {}), redirect: 'manual', signal: AbortSignal.timeout(15_000) })
  const text = await response.text()
  let parsed: unknown = text === '' ? undefined : text
  try {
    if (text !== '') parsed = JSON.parse(text)
  } catch {}
  return { status: response.status, headers: response.headers, body: parsed as T, text }
}

/** Calls an Ory API and fails, with what it answered, unless the status is one of `expected`. */
export async function expect<T = unknown> (expected: number | number[], url: string, init: Parameters<typeof call>[1] = {}): Promise<T> {
  const answer = await call<T>(url, init)
  const statuses = Array.isArray(expected) ? expected : [expected]
  if (!statuses.includes(answer.status)) {
    throw new Error(`${init.method ?? (init.json !== undefined || init.form !== undefined ? 'POST' : 'GET')} ${url} answered ${answer.status}, expected ${statuses.join(' or ')}: ${answer.text.slice(0, 1000)}`)
  }
  return answer.body
}

export interface OryPairOptions {
  binaries: OryBinaries
  /** A fresh directory for this pair's configuration, databases and logs. */
  dir: string
  addresses: Addresses
  secrets: Secrets
}

/** An OAuth2 client registered at Hydra, with the secret Hydra generated or was given. */
export interface OAuth2Client {
  client_id: string
  client_secret: string
  redirect_uri: string
}

/** A Kratos session as the admin API lists it (the members the suite reads). */
export interface KratosSession {
  id: string
  active: boolean
  identity?: { id: string }
}

/**
 * Real Ory Hydra and Ory Kratos, each `serve`d (`--dev`) with the project's configuration rendered for
 * this run, on SQLite files in the pair's directory (migrated first). Kratos can be stopped and
 * started again on the same files and ports.
 */
export class OryPair {
  hydra!: ServiceProcess
  kratos: ServiceProcess | undefined
  readonly issuer: string
  readonly #options: OryPairOptions
  readonly #hydraConfig: string
  readonly #kratosConfig: string
  readonly #env: Record<string, string>

  private constructor (options: OryPairOptions) {
    this.#options = options
    this.issuer = `${options.addresses.hydraPublic}/`
    this.#hydraConfig = join(options.dir, 'hydra.yml')
    this.#kratosConfig = join(options.dir, 'kratos.yml')
    writeFileSync(this.#hydraConfig, stringify(renderHydraConfig(options.addresses, options.secrets, options.dir)))
    writeFileSync(this.#kratosConfig, stringify(renderKratosConfig(options.addresses, options.secrets, options.dir)))
    // Both servers read their configuration from the environment too (DSN, SERVE_PUBLIC_PORT, …): they
    // get none of the machine's, only what a process needs to run.
    this.#env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: options.dir, TMPDIR: options.dir }
  }

  get addresses (): Addresses {
    return this.#options.addresses
  }

  get hydraConfigFile (): string {
    return this.#hydraConfig
  }

  get kratosConfigFile (): string {
    return this.#kratosConfig
  }

  /** Migrates both databases, starts both servers, and waits until they are ready. */
  static async start (options: OryPairOptions): Promise<OryPair> {
    const pair = new OryPair(options)
    try {
      const { hydra, kratos } = options.binaries
      const common = { env: pair.#env, cwd: options.dir, timeoutMs: MIGRATE_TIMEOUT_MS }
      await Promise.all([
        runToEnd('hydra migrate', hydra, ['migrate', 'sql', 'up', '--read-from-env', '--yes', '--config', pair.#hydraConfig],
          { ...common, logFile: join(options.dir, 'hydra-migrate.log') }),
        runToEnd('kratos migrate', kratos, ['migrate', 'sql', '--read-from-env', '--yes', '--config', pair.#kratosConfig],
          { ...common, logFile: join(options.dir, 'kratos-migrate.log') })
      ])
      pair.hydra = new ServiceProcess('hydra', hydra, ['serve', 'all', '--dev', '--sqa-opt-out', '--config', pair.#hydraConfig],
        { env: pair.#env, cwd: options.dir, logFile: join(options.dir, 'hydra.log') })
      await Promise.all([pair.#waitForHydra(), pair.startKratos()])
    } catch (err) {
      await pair.close()
      throw err
    }
    return pair
  }

  async #waitForHydra (): Promise<void> {
    const { hydraPublic, hydraAdmin } = this.#options.addresses
    for (const url of [`${hydraAdmin}/health/ready`, `${hydraPublic}/health/ready`]) {
      await waitFor(async () => (await call(url)).status === 200, { timeoutMs: READY_TIMEOUT_MS, what: `Hydra's ${url}`, processes: [this.hydra] })
    }
    // Hydra makes its signing keys at the first request that needs them (RSA, seconds on a busy machine).
    await waitFor(async () => (await call<{ keys?: unknown[] }>(`${hydraPublic}/.well-known/jwks.json`)).body.keys?.length !== 0,
      { timeoutMs: READY_TIMEOUT_MS, what: "Hydra's JWKS", processes: [this.hydra] })
  }

  /** Starts Kratos (again) on its configuration and database, and waits until both its ports are ready. */
  async startKratos (): Promise<void> {
    if (this.kratos?.running === true) throw new Error('Kratos is already running')
    this.kratos = new ServiceProcess('kratos', this.#options.binaries.kratos, ['serve', '--dev', '--sqa-opt-out', '--config', this.#kratosConfig],
      { env: this.#env, cwd: this.#options.dir, logFile: join(this.#options.dir, 'kratos.log') })
    const { kratosPublic, kratosAdmin } = this.#options.addresses
    for (const url of [`${kratosAdmin}/admin/health/ready`, `${kratosPublic}/health/ready`]) {
      await waitFor(async () => (await call(url)).status === 200, { timeoutMs: READY_TIMEOUT_MS, what: `Kratos' ${url}`, processes: [this.kratos] })
    }
  }

  /** Stops Kratos (SIGTERM); its SQLite file keeps every identity and session. */
  async stopKratos (): Promise<void> {
    await this.kratos?.stop()
  }

  async close (): Promise<void> {
    await Promise.all([this.kratos?.stop(), this.hydra?.stop()])
  }

  /** The last lines of both servers' logs, for failure messages. */
  tails (): string {
    return [this.hydra, this.kratos].filter((p) => p !== undefined).map((p) => p.tail()).join('\n')
  }

  /**
   * The back-channel logout requests Hydra logged so far: delivered (answered 200 or 204) and failed
   * (no answer, or another status), from its own log lines.
   */
  backchannelLogouts (): { delivered: number, failed: number } {
    const lines = this.hydra.lines
    return {
      delivered: lines.filter((line) => /msg="?Back-Channel Logout Request/.test(line)).length,
      failed: lines.filter((line) => /msg="?Unable to (execute|construct) OpenID Connect Back-Channel Logout Request/.test(line)).length
    }
  }

  // ---- Hydra's admin API --------------------------------------------------------------------------

  hydraAdmin (path: string): string {
    return `${this.#options.addresses.hydraAdmin}${path}`
  }

  hydraPublic (path: string): string {
    return `${this.#options.addresses.hydraPublic}${path}`
  }

  kratosAdmin (path: string): string {
    return `${this.#options.addresses.kratosAdmin}${path}`
  }

  kratosPublic (path: string): string {
    return `${this.#options.addresses.kratosPublic}${path}`
  }

  /**
   * Registers an OAuth2 client through Hydra's admin API: config/hydra/example-client.json's settings,
   * with this run's id, redirect URI and `backchannel_logout_uri`.
   */
  async createClient (settings: { backchannelLogoutUri: string, redirectUri: string, clientId?: string } & Record<string, unknown>): Promise<OAuth2Client> {
    const { backchannelLogoutUri, redirectUri, clientId, ...rest } = settings
    const example = JSON.parse(readFileSync(join(root, 'config/hydra/example-client.json'), 'utf8')) as Record<string, unknown>
    const body = {
      ...example,
      client_id: clientId ?? `e2e-${randomHex(6)}`,
      client_secret: randomHex(24),
      redirect_uris: [redirectUri],
      post_logout_redirect_uris: [new URL('/', redirectUri).href],
      backchannel_logout_uri: backchannelLogoutUri,
      backchannel_logout_session_required: true,
      ...rest
    }
    const created = await expect<{ client_id: string }>(201, this.hydraAdmin('/admin/clients'), { json: body })
    return { client_id: created.client_id, client_secret: body.client_secret, redirect_uri: redirectUri }
  }

  /** Hydra's consent sessions of a subject (`GET /admin/oauth2/auth/sessions/consent`). */
  async consentSessions (subject: string): Promise<unknown[]> {
    return await expect<unknown[]>(200, this.hydraAdmin(`/admin/oauth2/auth/sessions/consent?subject=${encodeURIComponent(subject)}`))
  }

  /** Whether Hydra's introspection says a token is active. */
  async introspect (token: string): Promise<{ active: boolean } & Record<string, unknown>> {
    return await expect(200, this.hydraAdmin('/admin/oauth2/introspect'), { form: { token } })
  }

  // ---- Kratos' admin and public APIs ----------------------------------------------------------------

  /** Creates an identity with a password credential through Kratos' admin API; returns its id. */
  async createIdentity (email: string, password: string): Promise<string> {
    const identity = await expect<{ id: string }>(201, this.kratosAdmin('/admin/identities'), {
      json: { schema_id: 'default', traits: { email }, credentials: { password: { config: { password } } } }
    })
    return identity.id
  }

  /** The identity's sessions as Kratos' admin API lists them (`active=true`: only the active ones). */
  async sessions (identityId: string, options: { active?: boolean } = {}): Promise<KratosSession[]> {
    const query = options.active === true ? '?active=true' : ''
    return await expect<KratosSession[]>(200, this.kratosAdmin(`/admin/identities/${identityId}/sessions${query}`))
  }

  /** A login through Kratos' API flow (`/self-service/login/api`), as a native app makes one: a session of its own. */
  async apiLogin (identifier: string, password: string): Promise<{ session_token: string, session: KratosSession }> {
    const flow = await expect<{ id: string }>(200, this.kratosPublic('/self-service/login/api'))
    return await expect(200, this.kratosPublic(`/self-service/login?flow=${flow.id}`), { json: { method: 'password', identifier, password } })
  }
}

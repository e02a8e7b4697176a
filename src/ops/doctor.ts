import { ConfigError, loadConfig, redactUrl, type Config, type ReadSecretFile } from '../config.js'
import { UpstreamError, createHydraAdmin, createKratosAdmin, type AdminClient } from '../ory/admin.js'
import { PROOF_REQUESTS, judgeProofAnswer, type AdminService, type ProofAnswer } from '../ory/admin-proof.js'
import { listClients, type OAuth2ClientSummary } from '../ory/listings.js'
import { createRedisClient } from '../store/redis.js'
import { algorithmsForJwk } from '../token/algorithms.js'
import { discoveryUrl, fetchDiscovery } from '../token/discovery.js'

/**
 * `pass` and `fail` are plain; `warn` is a setting that works but loses something an operator
 * should decide on knowingly (no durable store, Redis persistence off, no admin API).
 */
export type CheckStatus = 'pass' | 'warn' | 'fail'

/** One line of the doctor's report. */
export interface CheckResult {
  /** What was checked, e.g. `redis persistence`. */
  name: string
  status: CheckStatus
  /** What was found: on a failure, why. Never a secret. */
  message: string
  /** What to do about it; absent on a pass. */
  fix?: string
  /** Lines printed under the check (each problem of an invalid configuration). */
  details?: string[]
}

/** The few Redis commands the doctor sends, on a connection of its own. */
export interface DoctorRedis {
  /** Sends one command; rejects when Redis refuses it or does not answer. */
  command: (name: string, ...args: string[]) => Promise<unknown>
  close: () => Promise<void>
}

/** Opens a connection for the checks; rejects when Redis cannot be reached. */
export type ConnectRedis = (options: Config['redis'], timeoutMs: number) => Promise<DoctorRedis>

export interface DoctorOptions {
  /** The service's environment, as `loadConfig` reads it. */
  env: Record<string, string | undefined>
  readSecretFile?: ReadSecretFile
  /** For the issuer's discovery document and keys; the admin APIs go through the service's admin clients. */
  fetch?: typeof fetch
  connectRedis?: ConnectRedis
  /**
   * The relay's base URL as Hydra and Kratos reach it, for the settings to paste and the clients'
   * `backchannel_logout_uri` (`<relayUrl>/backchannel-logout`); default `http://logout-relay:<PORT>`.
   */
  relayUrl?: string
  /** Told of each check as soon as it is known, in report order. */
  onResult?: (result: CheckResult) => void
}

/**
 * 0: every check passed. 1: a check failed. 2: none failed, but one warned. 78 (EX_CONFIG, as the
 * service exits): the configuration is invalid, and nothing else was checked.
 */
export type DoctorExitCode = 0 | 1 | 2 | 78

export interface DoctorReport {
  checks: CheckResult[]
  /** The Hydra and Kratos settings to paste, live values filled in; absent when the configuration is invalid. */
  setup?: string
  exitCode: DoctorExitCode
}

/**
 * Checks what the relay needs, as the relay would see it: the configuration (the service's own
 * validation), Redis and whether it keeps the queue across a restart, the issuer's discovery
 * document and keys, Kratos' and Hydra's admin APIs (through the service's own admin clients: its
 * proxies and tokens), whether Hydra's clients send their back-channel logouts to the relay, and the
 * API keys. Ends with the settings to
 * paste into Hydra's clients and Kratos' login flow. Prints no secret: keys show their first four
 * characters, URLs lose their passwords.
 */
export async function runDoctor (options: DoctorOptions): Promise<DoctorReport> {
  const checks: CheckResult[] = []
  const report = (result: CheckResult): void => {
    checks.push(result)
    options.onResult?.(result)
  }

  let config: Config
  try {
    config = loadConfig(options.env, options.readSecretFile)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    report({
      name: 'configuration',
      status: 'fail',
      message: `${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}; the relay would not start (exit 78)`,
      fix: 'correct each variable below (see Configuration in the README); secrets may come from <NAME>_FILE',
      details: err.problems
    })
    return { checks, exitCode: 78 }
  }
  report({ name: 'configuration', status: 'pass', message: 'valid' })

  const fetchImpl = options.fetch ?? fetch
  const timeoutMs = config.upstreamTimeoutMs
  const relayUrl = options.relayUrl ?? `http://logout-relay:${config.http.port}`
  // The admin APIs through the service's own clients: its proxies, tokens, deadlines and limits.
  const admin = { timeoutMs, proxy: config.proxy }
  const kratos = createKratosAdmin({ ...admin, adminUrl: config.kratos.adminUrl, token: config.kratos.adminToken })
  const hydra = createHydraAdmin({ ...admin, adminUrl: config.hydra.adminUrl, token: config.hydra.adminToken })
  try {
    const hydraAdmin = checkAdminApi('hydra admin', 'hydra', config.hydra.adminUrl, config.hydra.adminToken, ['/health/ready'], hydra, timeoutMs)
    // Every check starts at once; they are reported in this order as each one finishes. Hydra's
    // clients are listed once its admin API passed (otherwise that check says what is wrong).
    const pending: Array<Promise<CheckResult[]>> = [
      checkRedis(config, options.connectRedis ?? connectRedis, timeoutMs),
      checkIssuer(config, fetchImpl, timeoutMs),
      checkAdminApi('kratos admin', 'kratos', config.kratos.adminUrl, config.kratos.adminToken, ['/health/ready', '/admin/health/ready'], kratos, timeoutMs),
      hydraAdmin,
      hydraAdmin.then(async (results) => results.every((result) => result.status === 'pass') ? await checkClients(config, hydra, relayUrl, timeoutMs) : []),
      Promise.resolve(checkKeys(config))
    ]
    for (const group of pending) for (const result of await group) report(result)
  } finally {
    await Promise.all([kratos.close(), hydra.close()])
  }

  const statuses = new Set(checks.map((check) => check.status))
  return {
    checks,
    setup: setupSnippets(config, relayUrl),
    exitCode: statuses.has('fail') ? 1 : statuses.has('warn') ? 2 : 0
  }
}

/** One line per check: `✔ name: message`, or `✖ name: [warning: ]message — fix: …`, then its details. */
export function formatCheck (result: CheckResult): string {
  const mark = result.status === 'pass' ? '✔' : '✖'
  const warning = result.status === 'warn' ? 'warning: ' : ''
  const fix = result.fix !== undefined ? ` — fix: ${result.fix}` : ''
  return [`${mark} ${result.name}: ${warning}${result.message}${fix}`, ...(result.details ?? []).map((line) => `    ${line}`)].join('\n')
}

/** Shows a secret as its first four characters and an ellipsis. */
export function maskSecret (secret: string): string {
  return `${secret.slice(0, 4)}…`
}

// ---- Redis ---------------------------------------------------------------------------------------

/**
 * The doctor's connection: the service's own options (`createRedisClient`), failing fast instead of
 * reconnecting.
 */
export const connectRedis: ConnectRedis = async (options, timeoutMs) => {
  const client = createRedisClient(options, undefined, { timeoutMs })
  // connect() rejects with "Connection is closed" alone; the error event says why.
  let cause: Error | undefined
  client.on('error', (err: Error) => { cause = err })
  try {
    await client.connect()
  } catch (err) {
    client.disconnect()
    throw cause ?? err
  }
  return {
    command: async (name, ...args) => await client.call(name, args),
    close: async () => { client.disconnect() }
  }
}

async function checkRedis (config: Config, connect: ConnectRedis, timeoutMs: number): Promise<CheckResult[]> {
  const { url, clusterNodes } = config.redis
  if (url === undefined && clusterNodes.length === 0) {
    return [{
      name: 'redis',
      status: 'warn',
      message: 'REDIS_URL is not set: the in-memory store is not durable (one instance; the session index and queued revocations are lost on restart)',
      fix: 'set REDIS_URL to a Redis with AOF or RDB persistence'
    }]
  }
  const target = url !== undefined ? redactUrl(url) : `cluster ${clusterNodes.join(',')}`
  let redis: DoctorRedis | undefined
  try {
    redis = await connect(config.redis, timeoutMs)
    await redis.command('PING')
  } catch (err) {
    await redis?.close()
    return [{
      name: 'redis',
      status: 'fail',
      message: `${target} does not answer (${reasonOf(err, timeoutMs)})`,
      fix: 'check REDIS_URL (host, port, password; rediss:// for TLS) and that Redis runs and is reachable from the relay'
    }]
  }
  try {
    return [
      { name: 'redis', status: 'pass', message: `${target} answers` },
      await checkPersistence(redis),
      await checkEviction(redis)
    ]
  } finally {
    await redis.close()
  }
}

/** `CONFIG GET name`, or undefined where it is refused (managed Redis often renames or forbids CONFIG). */
async function configGet (redis: DoctorRedis, name: string): Promise<string | undefined> {
  try {
    const reply = await redis.command('CONFIG', 'GET', name)
    if (!Array.isArray(reply)) return undefined
    const index = reply.findIndex((item, i) => i % 2 === 0 && String(item) === name)
    return index === -1 ? undefined : String(reply[index + 1])
  } catch {
    return undefined
  }
}

/** The `field:value` lines of an `INFO section` reply. */
async function info (redis: DoctorRedis, section: string): Promise<Map<string, string>> {
  const text = String(await redis.command('INFO', section))
  const fields = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':')
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim())
  }
  return fields
}

const PERSISTENCE_FIX = 'turn on AOF (appendonly yes, appendfsync everysec) or RDB snapshots (save 60 1000) in Redis, or the managed service\'s persistence'

async function checkPersistence (redis: DoctorRedis): Promise<CheckResult> {
  const name = 'redis persistence'
  try {
    const appendonly = await configGet(redis, 'appendonly')
    const save = await configGet(redis, 'save')
    if (appendonly !== undefined && save !== undefined) {
      if (appendonly === 'yes') {
        const fsync = await configGet(redis, 'appendfsync')
        return { name, status: 'pass', message: `AOF is on${fsync !== undefined ? ` (appendfsync ${fsync})` : ''}: queued revocations survive a restart` }
      }
      if (save.trim() !== '') {
        return { name, status: 'pass', message: `RDB snapshots are on (save ${save}); AOF would lose less on a crash` }
      }
      return { name, status: 'warn', message: 'AOF and RDB snapshots are off: queued revocations and the session index are lost when Redis restarts', fix: PERSISTENCE_FIX }
    }
    // CONFIG is refused: INFO persistence tells whether AOF is on, and whether snapshots were taken.
    const fields = await info(redis, 'persistence')
    if (fields.get('aof_enabled') === '1') {
      return { name, status: 'pass', message: 'AOF is on (INFO persistence; CONFIG GET is refused): queued revocations survive a restart' }
    }
    const saves = Number(fields.get('rdb_saves') ?? '0')
    if (saves > 0) {
      return { name, status: 'pass', message: `AOF is off; RDB snapshots are taken (${saves} since Redis started; INFO persistence, CONFIG GET is refused)` }
    }
    return {
      name,
      status: 'warn',
      message: 'AOF is off and no RDB snapshot was taken since Redis started (CONFIG GET is refused, so the snapshot schedule cannot be read): queued revocations may be lost when Redis restarts',
      fix: PERSISTENCE_FIX
    }
  } catch (err) {
    return { name, status: 'warn', message: `cannot be read (${reasonOf(err)})`, fix: PERSISTENCE_FIX }
  }
}

async function checkEviction (redis: DoctorRedis): Promise<CheckResult> {
  const name = 'redis eviction'
  try {
    let maxmemory = await configGet(redis, 'maxmemory')
    let policy = await configGet(redis, 'maxmemory-policy')
    if (maxmemory === undefined || policy === undefined) {
      const fields = await info(redis, 'memory')
      maxmemory = fields.get('maxmemory')
      policy = fields.get('maxmemory_policy')
    }
    if (policy === 'noeviction') return { name, status: 'pass', message: 'maxmemory-policy noeviction: Redis never drops a queued revocation or an indexed sid' }
    if (maxmemory === '0') return { name, status: 'pass', message: `no maxmemory limit: nothing is evicted (maxmemory-policy ${policy ?? 'unknown'})` }
    return {
      name,
      status: 'warn',
      message: `maxmemory-policy ${policy ?? 'unknown'} with maxmemory ${maxmemory ?? 'unknown'}: under memory pressure Redis drops keys — indexed sids, queued revocations`,
      fix: 'set maxmemory-policy noeviction (Redis then refuses writes when full, and the relay answers 503 so that Hydra and Kratos retry)'
    }
  } catch (err) {
    return { name, status: 'warn', message: `cannot be read (${reasonOf(err)})`, fix: 'make sure maxmemory-policy is noeviction' }
  }
}

// ---- the issuer ------------------------------------------------------------------------------------

interface Fetched { status: number, body: unknown }

async function getJson (fetchImpl: typeof fetch, url: string, timeoutMs: number, token?: string): Promise<Fetched> {
  const response = await fetchImpl(url, {
    headers: { accept: 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs)
  })
  const text = await response.text()
  let body: unknown
  try {
    body = text === '' ? undefined : JSON.parse(text)
  } catch {
    body = undefined
  }
  return { status: response.status, body }
}

async function checkIssuer (config: Config, fetchImpl: typeof fetch, timeoutMs: number): Promise<CheckResult[]> {
  const { issuer, jwksUrl, algorithms } = config.oidc
  const results: CheckResult[] = []
  const url = discoveryUrl(issuer)
  let discoveredJwks: string | undefined
  const discoveryFailed = (why: string): CheckResult => jwksUrl !== undefined
    ? {
        name: 'issuer',
        status: 'warn',
        message: `${url} ${why}; OIDC_JWKS_URL is set, so the relay does not need it, but OIDC_ISSUER cannot be compared with the issuer's own`,
        fix: `compare OIDC_ISSUER (${issuer}) with Hydra's urls.self.issuer by hand: they must be equal, trailing slash included`
      }
    : {
        name: 'issuer',
        status: 'fail',
        message: `${url} ${why}`,
        fix: 'set OIDC_ISSUER to Hydra\'s urls.self.issuer, and make Hydra\'s public port reachable from the relay — or set OIDC_JWKS_URL (e.g. http://hydra:4444/.well-known/jwks.json)'
      }
  try {
    const answer = await fetchDiscovery(issuer, fetchImpl, timeoutMs)
    const { status } = answer
    const document = answer.document ?? {}
    if (status !== 200) {
      results.push(discoveryFailed(`answered ${status}`))
    } else if (typeof document['issuer'] !== 'string') {
      results.push(discoveryFailed('is not a discovery document (no issuer)'))
    } else if (document['issuer'] !== issuer) {
      const theirs = document['issuer']
      const slashOnly = theirs.replace(/\/+$/, '') === issuer.replace(/\/+$/, '')
      results.push({
        name: 'issuer',
        status: 'fail',
        message: `the discovery document's issuer is "${theirs}", OIDC_ISSUER is "${issuer}"${slashOnly ? ': the trailing slash matters, iss is compared exactly' : ''}; every logout token would be refused (iss)`,
        fix: `set OIDC_ISSUER=${theirs}`
      })
    } else if (document['backchannel_logout_supported'] === false) {
      results.push({
        name: 'issuer',
        status: 'fail',
        message: `${issuer} says backchannel_logout_supported: false`,
        fix: 'use an issuer that supports OpenID Connect Back-Channel Logout (Ory Hydra does)'
      })
    } else {
      results.push({ name: 'issuer', status: 'pass', message: `the discovery document's issuer is OIDC_ISSUER exactly (${issuer})` })
    }
    if (typeof document['jwks_uri'] === 'string') discoveredJwks = document['jwks_uri']
  } catch (err) {
    results.push(discoveryFailed(`does not answer (${reasonOf(err, timeoutMs)})`))
  }

  const keysUrl = jwksUrl ?? discoveredJwks
  if (keysUrl === undefined) {
    results.push({
      name: 'issuer keys',
      status: 'fail',
      message: 'no JWKS to load: the discovery document names none, and OIDC_JWKS_URL is not set',
      fix: 'fix the issuer above, or set OIDC_JWKS_URL (e.g. http://hydra:4444/.well-known/jwks.json)'
    })
    return results
  }
  const where = jwksUrl !== undefined ? 'OIDC_JWKS_URL' : 'the discovery document\'s jwks_uri'
  try {
    const { status, body } = await getJson(fetchImpl, keysUrl, timeoutMs)
    const keys = (body as { keys?: unknown } | undefined)?.keys
    if (status !== 200 || !Array.isArray(keys)) {
      results.push({
        name: 'issuer keys',
        status: 'fail',
        message: `${keysUrl} (${where}) answered ${status}${status === 200 ? ' without a keys array' : ''}`,
        fix: jwksUrl !== undefined ? 'set OIDC_JWKS_URL to Hydra\'s /.well-known/jwks.json, as the relay reaches it' : 'make the jwks_uri reachable from the relay, or set OIDC_JWKS_URL'
      })
      return results
    }
    const signing = keys.filter((key): key is Record<string, unknown> =>
      typeof key === 'object' && key !== null && (key as Record<string, unknown>)['use'] !== 'enc')
    const usable = signing.filter((key) => typeof key['alg'] === 'string'
      ? algorithms.includes(key['alg'])
      : algorithmsForJwk(key['kty'], key['crv']).some((alg) => algorithms.includes(alg)))
    if (usable.length === 0) {
      const seen = [...new Set(signing.map((key) => typeof key['alg'] === 'string' ? key['alg'] : `${String(key['kty'])} without alg`))]
      results.push({
        name: 'issuer keys',
        status: 'fail',
        message: `${keysUrl} has ${keys.length} key${keys.length === 1 ? '' : 's'}, none for OIDC_ALGORITHMS ${algorithms.join(',')}${seen.length > 0 ? ` (the keys: ${seen.join(', ')})` : ''}: every logout token would be refused`,
        fix: seen.length > 0 ? 'add the issuer\'s signing algorithm to OIDC_ALGORITHMS' : 'the issuer publishes no signing key: check Hydra\'s keys (hydra.openid.id-token)'
      })
    } else {
      results.push({
        name: 'issuer keys',
        status: 'pass',
        message: `${keysUrl} has ${usable.length} key${usable.length === 1 ? '' : 's'} for ${algorithms.join(',')}`
      })
    }
  } catch (err) {
    results.push({
      name: 'issuer keys',
      status: 'fail',
      message: `${keysUrl} (${where}) does not answer (${reasonOf(err, timeoutMs)})`,
      fix: 'make it reachable from the relay, or set OIDC_JWKS_URL to Hydra\'s /.well-known/jwks.json as the relay reaches it'
    })
  }
  return results
}

// ---- Kratos and Hydra admin ----------------------------------------------------------------------

/**
 * An admin URL as the relay needs it: up and ready (`/health/ready`, or `/admin/health/ready` where
 * only `/admin/` is served), and answering the admin API itself — the same proof the relay makes
 * before it sends a revocation there ({@link judgeProofAnswer}), which fails for the public port and
 * for a path prefix too many, where a health check alone would pass. Asked through the service's
 * admin client, as the relay asks.
 */
async function checkAdminApi (
  name: string, service: AdminService, adminUrl: string, token: string | undefined, healthPaths: string[], client: AdminClient, timeoutMs: number
): Promise<CheckResult[]> {
  const { variable, tokenVariable, path: proofPath } = PROOF_REQUESTS[service]
  const shown = redactUrl(adminUrl.replace(/\/+$/, '')).replace(/\/+$/, '')
  const fix = `check ${variable} (the admin port, reachable from the relay)${token !== undefined ? ` and ${tokenVariable}` : ''}`
  let ready: string | undefined
  let last: CheckResult | undefined
  for (const path of healthPaths) {
    try {
      const { status } = await client.get(path)
      if (status === 200) {
        ready = `${shown}${path}`
        break
      }
      last = status === 503
        ? { name, status: 'fail', message: `${shown}${path} answers 503: up, but not ready`, fix: 'check its logs: usually the database or migrations' }
        : { name, status: 'fail', message: `${shown}${path} answers ${status}`, fix }
      // Another path only when this one does not exist here: Kratos' admin port serves /admin/health/ready,
      // and redirects /health/ready there (307).
      if (status !== 404 && !(status >= 300 && status < 400)) break
    } catch (err) {
      return [{ name, status: 'fail', message: `${shown}${path} does not answer (${reasonOf(err, timeoutMs)})`, fix }]
    }
  }
  // Not ready, or no answer: that is the finding. A health route that does not exist here may mean the
  // URL is not the admin API at all: the proof below says how.
  if (ready === undefined && last !== undefined && !/answers (404|30\d)$/.test(last.message)) return [last]

  let answer: ProofAnswer
  try {
    const got = await client.get(proofPath)
    const location = got.headers['location']
    answer = { status: got.status, contentType: got.headers['content-type'], body: got.body, location: Array.isArray(location) ? location[0] : location }
  } catch (err) {
    return [{ name, status: 'fail', message: `${shown}${proofPath} does not answer (${reasonOf(err, timeoutMs)})`, fix }]
  }
  const proof = judgeProofAnswer(service, adminUrl, answer)
  switch (proof.state) {
    case 'proven':
      if (ready === undefined) return last === undefined ? [] : [last]
      return [{ name, status: 'pass', message: `${ready} answers 200, and ${shown} answers ${PROOF_REQUESTS[service].what} (GET ${proofPath.split('?')[0] ?? ''})` }]
    case 'wrong':
      return [{ name, status: 'fail', message: `${shown}: ${proof.reason}; revocations would wait in the queue`, fix: proof.fix }]
    case 'unreachable':
      return [{ name, status: 'fail', message: `${shown}: ${proof.reason}`, fix }]
  }
}

// ---- Hydra's clients -----------------------------------------------------------------------------

/**
 * Whether a client can take part in a login session, and so get back-channel logouts: one that may use
 * the authorization code or the implicit grant (Hydra's default grant is the code grant).
 */
function logsUsersIn (client: OAuth2ClientSummary): boolean {
  return client.grantTypes.length === 0 || client.grantTypes.some((grant) => grant === 'authorization_code' || grant === 'implicit')
}

/** A URL in its normal form (scheme and host in lower case, a default port dropped), or the text itself. */
function normalUrl (value: string): string {
  try {
    return new URL(value).href
  } catch {
    return value
  }
}

/** Quotes a word for a POSIX shell. */
function shellQuote (value: string): string {
  return `'${value.replace(/'/g, "'\\''")}'`
}

/**
 * The command that makes the relay a client's back-channel logout URI, as the README's "Hydra" section
 * gives it: a JSON Patch, which changes these fields and keeps the rest of the client.
 */
export function patchClientCommand (config: Config, clientId: string, relayUrl: string): string {
  const endpoint = redactUrl(config.hydra.adminUrl).replace(/\/+$/, '')
  const patch = JSON.stringify([
    { op: 'add', path: '/backchannel_logout_uri', value: `${relayUrl.replace(/\/+$/, '')}/backchannel-logout` },
    { op: 'add', path: '/backchannel_logout_session_required', value: true }
  ])
  const token = config.hydra.adminToken !== undefined ? ' -H "Authorization: Bearer $HYDRA_ADMIN_TOKEN"' : ''
  return `curl -X PATCH ${shellQuote(`${endpoint}/admin/clients/${encodeURIComponent(clientId)}`)} -H 'Content-Type: application/json'${token} -d ${shellQuote(patch)}`
}

/**
 * Whether Hydra sends each client's back-channel logouts to the relay: Hydra sends a client's logout
 * token to its `backchannel_logout_uri` alone, so a client with none, or with another one, takes part
 * in login sessions whose logouts never reach Kratos through it. With OIDC_AUDIENCES, its clients are
 * the relay's by configuration: one of them that does not send to the relay, or that Hydra does not
 * know, fails; and a client outside it that sends to the relay fails too (the relay refuses its tokens,
 * `aud`). Anything else that does not send to the relay may be intended (a client whose logouts need
 * not end Kratos sessions, an app with its own back-channel endpoint): a warning, with the fix.
 * Clients that log nobody in (client credentials) are left out.
 */
async function checkClients (config: Config, hydra: AdminClient, relayUrl: string, timeoutMs: number): Promise<CheckResult[]> {
  const name = 'hydra clients'
  const expected = `${relayUrl.replace(/\/+$/, '')}/backchannel-logout`
  let listing: Awaited<ReturnType<typeof listClients>>
  try {
    listing = await listClients(hydra)
  } catch (err) {
    return [{ name, status: 'fail', message: `GET /admin/clients: ${reasonOf(err, timeoutMs)}`, fix: 'check HYDRA_ADMIN_URL and HYDRA_ADMIN_TOKEN' }]
  }
  const audiences = config.oidc.audiences
  const restricted = audiences.length > 0
  const known = new Set(listing.clients.map((client) => client.clientId))
  const loginClients = listing.clients.filter(logsUsersIn)
  const problems: Array<{ status: 'warn' | 'fail', lines: string[] }> = []
  for (const client of loginClients) {
    const id = client.clientId
    const listed = audiences.includes(id)
    const toRelay = normalUrl(client.backchannelLogoutUri) === normalUrl(expected)
    const patch = patchClientCommand(config, id, relayUrl)
    if (toRelay) {
      if (restricted && !listed) {
        problems.push({ status: 'fail', lines: [`${id}: sends its back-channel logouts to the relay, which refuses them: it is not in OIDC_AUDIENCES`, 'add it to OIDC_AUDIENCES'] })
      }
      continue
    }
    const what = client.backchannelLogoutUri === '' ? 'has no backchannel_logout_uri' : `sends its back-channel logouts to ${client.backchannelLogoutUri}, not ${expected}`
    if (listed) {
      problems.push({ status: 'fail', lines: [`${id}: ${what} (OIDC_AUDIENCES names it): its logouts never reach Kratos`, patch] })
    } else {
      const also = restricted ? ' and add it to OIDC_AUDIENCES' : ''
      problems.push({ status: 'warn', lines: [`${id}: ${what}: logouts through it never reach Kratos, unless that is intended${also ? `; if not, run this${also}:` : ''}`, patch] })
    }
  }
  for (const id of audiences.filter((audience) => !known.has(audience))) {
    problems.push({ status: 'fail', lines: [`${id}: in OIDC_AUDIENCES, but Hydra has no such client`, 'register it with the relay as its back-channel logout URI (the hydra create oauth2-client below), or remove it from OIDC_AUDIENCES'] })
  }
  const others = listing.clients.length - loginClients.length
  const unchecked = others > 0 ? `; ${others} client${others === 1 ? '' : 's'} that log${others === 1 ? 's' : ''} nobody in left out` : ''
  const truncated = listing.truncated ? ' (the first pages only: Hydra kept linking more)' : ''
  if (problems.length === 0) {
    return [{
      name,
      status: 'pass',
      message: loginClients.length === 0
        ? `Hydra has no client that logs users in yet${unchecked}`
        : `${loginClients.length} client${loginClients.length === 1 ? '' : 's'} send${loginClients.length === 1 ? 's' : ''} back-channel logouts to ${expected}${unchecked}${truncated}`
    }]
  }
  const failed = problems.filter((problem) => problem.status === 'fail').length
  return [{
    name,
    status: failed > 0 ? 'fail' : 'warn',
    message: `${problems.length} of ${loginClients.length + audiences.filter((audience) => !known.has(audience)).length} clients do not send their back-channel logouts to ${expected} (--relay-url): the logouts of their login sessions do not end Kratos sessions${unchecked}${truncated}`,
    fix: 'run the command under each client: a JSON Patch that sets the relay as its back-channel logout URI and keeps the rest of the client',
    details: problems.flatMap((problem) => problem.lines.map((line, i) => i === 0 ? `${problem.status === 'fail' ? '✖' : '!'} ${line}` : `  ${line}`))
  }]
}

// ---- API keys ------------------------------------------------------------------------------------

/**
 * What makes a key a placeholder rather than a secret: words and runs long enough never to turn up in
 * a random key by chance, anywhere in it; and short words only standing apart (`my-test-key`), since a
 * random base64 key holds four given letters now and then.
 */
const PLACEHOLDER_WORDS = [
  'changeme', 'change-me', 'change_me', 'replace', 'example', 'placeholder', 'secret', 'password', 'passwd',
  'default', 'insecure', 'dummy', 'sample', 'fixme', 'random', 'api-key', 'apikey', 'logout-relay',
  '0123456789', 'abcdef', 'qwerty', '123456'
]
const PLACEHOLDER_SHORT_WORDS = /(?:^|[^a-z])(test|your|todo|demo|key|xxxx)(?:[^a-z]|$)/

/**
 * Why a key is no real secret, or undefined: the configuration already refuses keys shorter than 16
 * characters; this finds the long ones that are guessable all the same.
 */
export function weakKeyReason (key: string): string | undefined {
  const lower = key.toLowerCase()
  const word = PLACEHOLDER_WORDS.find((candidate) => lower.includes(candidate)) ?? PLACEHOLDER_SHORT_WORDS.exec(lower)?.[1]
  if (word !== undefined) return `looks like a placeholder or an example (contains "${word}")`
  if (new Set(key).size < 8) return 'has fewer than 8 distinct characters'
  return undefined
}

function checkKeys (config: Config): CheckResult[] {
  const generate = 'generate one with: openssl rand -hex 32'
  const hookKeys = config.loginHook.apiKeys
  const adminKeys = config.adminApi.apiKeys
  const weak = (variable: string, keys: readonly string[]): CheckResult | undefined => {
    const problems = keys.flatMap((key, i) => {
      const reason = weakKeyReason(key)
      return reason === undefined ? [] : [`key #${i + 1} (${maskSecret(key)}) ${reason}`]
    })
    return problems.length === 0
      ? undefined
      : { name: variable === 'LOGIN_HOOK_API_KEYS' ? 'login hook keys' : 'admin keys', status: 'fail', message: `${variable}: ${problems.join('; ')}`, fix: `replace it: ${generate}` }
  }

  const results: CheckResult[] = []
  if (hookKeys.length === 0) {
    results.push({
      name: 'login hook keys',
      status: 'fail',
      message: 'LOGIN_HOOK_API_KEYS is not set: the hook refuses every call, so no login is indexed and logouts revoke nothing',
      fix: `set LOGIN_HOOK_API_KEYS (${generate}) and put the key in Kratos' web_hook (below)`
    })
  } else {
    results.push(weak('LOGIN_HOOK_API_KEYS', hookKeys) ?? {
      name: 'login hook keys',
      status: 'pass',
      message: `${hookKeys.length} key${hookKeys.length === 1 ? '' : 's'} (${hookKeys.map(maskSecret).join(', ')})`
    })
  }

  const shared = adminKeys.filter((key) => hookKeys.includes(key))
  if (adminKeys.length === 0) {
    results.push({
      name: 'admin keys',
      status: 'warn',
      message: 'ADMIN_API_KEYS is not set: the admin API (log an identity out everywhere) refuses every call',
      fix: `set ADMIN_API_KEYS to use it (${generate}), or leave it unset on purpose`
    })
  } else if (shared.length > 0) {
    results.push({
      name: 'admin keys',
      status: 'fail',
      message: `${shared.map(maskSecret).join(', ')} is both a login hook key and an admin key: Kratos' configuration would hold a key to the admin API`,
      fix: `give the admin API keys of its own (${generate})`
    })
  } else {
    results.push(weak('ADMIN_API_KEYS', adminKeys) ?? {
      name: 'admin keys',
      status: 'pass',
      message: `${adminKeys.length} key${adminKeys.length === 1 ? '' : 's'} (${adminKeys.map(maskSecret).join(', ')}), none shared with the login hook`
    })
  }
  return results
}

// ---- what to paste ---------------------------------------------------------------------------------

/**
 * The Hydra client flags and the Kratos web hooks (login, credentials), as the README's sections give
 * them, with this configuration's values: Hydra's admin URL, the relay's URL, each client of
 * OIDC_AUDIENCES, and the first login hook key masked.
 */
export function setupSnippets (config: Config, relayUrl: string): string {
  const relay = relayUrl.replace(/\/+$/, '')
  const endpoint = redactUrl(config.hydra.adminUrl).replace(/\/+$/, '')
  const clients = config.oidc.audiences.length > 0 ? config.oidc.audiences : ['<client-id>']
  const hookKey = config.loginHook.apiKeys[0]
  const bearer = hookKey !== undefined ? `Bearer ${maskSecret(hookKey)}   # the whole key: one of LOGIN_HOOK_API_KEYS` : 'Bearer <one of LOGIN_HOOK_API_KEYS>'
  // One relay web_hook of a hooks list, as the YAML below nests it.
  const webHook = (route: string, body: string): string => `              - hook: web_hook
                config:
                  url: ${relay}/hooks/${route}
                  method: POST
                  body: file:///etc/config/kratos/${body}
                  auth:
                    type: api_key
                    config:
                      name: Authorization
                      value: ${bearer}
                      in: header`
  return `Register the relay as the back-channel logout URI of every client (${relay} as Hydra reaches it; --relay-url to change):

  hydra create oauth2-client --endpoint ${endpoint} \\
    --name my-app --grant-type authorization_code,refresh_token --response-type code \\
    --scope openid,offline_access \\
    --redirect-uri https://my-app.example.com/callback \\
    --backchannel-logout-callback ${relay}/backchannel-logout \\
    --backchannel-logout-session-required

  # an existing client: hydra update replaces the whole client, so repeat its other flags too
${clients.map((client) => `  hydra update oauth2-client ${client} --endpoint ${endpoint} \\
    --backchannel-logout-callback ${relay}/backchannel-logout \\
    --backchannel-logout-session-required  # …plus the client's current settings`).join('\n')}

Add the login hook to kratos.yml (with config/kratos/login-hook.jsonnet beside it), on every login method and on registration before the session hook:

  selfservice:
    flows:
      login:
        after:
          password: &relay_hook
            hooks:
${webHook('login', 'login-hook.jsonnet')}
          code: *relay_hook
          oidc: *relay_hook
          webauthn: *relay_hook
          passkey: *relay_hook
      registration:
        after:
          password:
            hooks:
              - hook: web_hook
                config: { …same as above… }
              - hook: session

Add the credentials hook (with config/kratos/credentials-changed.jsonnet beside it) to every enabled credential method of the settings flow and to recovery, before revoke_active_sessions: a changed password or a recovered account then ends every Hydra login session, and so every app's (CREDENTIAL_CHANGE_REVOKE_CONSENTS=true: the consents and their tokens too), while Kratos keeps the session the user is in:

  selfservice:
    flows:
      settings:
        after:
          password: &relay_credentials
            hooks:
${webHook('credentials-changed', 'credentials-changed.jsonnet')}
              - hook: revoke_active_sessions
          totp: *relay_credentials
          webauthn: *relay_credentials
          passkey: *relay_credentials
          lookup_secret: *relay_credentials
          oidc: *relay_credentials
      recovery:
        after:
          hooks:
            - hook: web_hook
              config: { …same as above… }
            - hook: revoke_active_sessions
`
}

/** A failure in a few words: a timeout, a system error code, or the message. */
function reasonOf (err: unknown, timeoutMs?: number): string {
  // An admin call's error names the call first (`kratos GET /health/ready: …`): the check says that already.
  if (err instanceof UpstreamError && (err.cause as { code?: unknown } | undefined)?.code === undefined) return err.message.replace(/^\w+ [A-Z]+ [^:]*: /, '')
  const error = err as { name?: string, message?: string, code?: string, cause?: { code?: string, message?: string } }
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return timeoutMs !== undefined ? `no answer within ${timeoutMs} ms` : 'timeout'
  if (typeof error.cause?.code === 'string') return error.cause.code
  if (typeof error.code === 'string' && error.message === undefined) return error.code
  return error.message ?? String(err)
}

import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { JWS_ALGORITHM_NAMES, isJwsAlgorithm } from './token/algorithms.js'

/** Variables that hold secrets: each may instead be read from the file named by `<NAME>_FILE`. */
export const SECRET_VARIABLES = [
  'REDIS_URL', 'KRATOS_ADMIN_TOKEN', 'HYDRA_ADMIN_TOKEN', 'LOGIN_HOOK_API_KEYS', 'ADMIN_API_KEYS'
] as const

/** Shortest API key accepted: 16 characters of a random key are ~96 bits. */
export const MIN_API_KEY_LENGTH = 16

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const list = z.string().optional().transform((value) =>
  (value ?? '').split(',').map((item) => item.trim()).filter((item) => item !== ''))

const integer = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.string().optional().transform((value, ctx) => {
    if (value === undefined || value.trim() === '') return fallback
    const parsed = Number(value)
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number from ${min} to ${max}, got "${value}"` })
      return z.NEVER
    }
    return parsed
  })

const boolean = (fallback: boolean) =>
  z.string().optional().transform((value, ctx) => {
    if (value === undefined || value.trim() === '') return fallback
    const normalized = value.trim().toLowerCase()
    if (['true', '1', 'yes'].includes(normalized)) return true
    if (['false', '0', 'no'].includes(normalized)) return false
    ctx.addIssue({ code: 'custom', message: `must be true or false, got "${value}"` })
    return z.NEVER
  })

const url = (protocols: readonly string[], fallback?: string) =>
  z.string().optional().transform((value, ctx) => {
    const raw = value === undefined || value.trim() === '' ? fallback : value.trim()
    if (raw === undefined) return undefined
    let parsed: URL
    try {
      parsed = new URL(raw)
    } catch {
      ctx.addIssue({ code: 'custom', message: `must be a URL (${protocols.join(' or ')}), got "${redactUrl(raw)}"` })
      return z.NEVER
    }
    if (!protocols.includes(parsed.protocol.slice(0, -1))) {
      ctx.addIssue({ code: 'custom', message: `must use ${protocols.join(' or ')}, got "${parsed.protocol}"` })
      return z.NEVER
    }
    return raw
  })

/**
 * The token syntax of `Authorization: Bearer` (RFC 6750 §2.1, `b64token`): letters, digits and
 * `-._~+/`, then any `=`. A key outside it could never be presented, so it is refused at startup.
 */
export const BEARER_TOKEN_SYNTAX = /^[A-Za-z0-9\-._~+/]+=*$/

const apiKeys = list.superRefine((keys, ctx) => {
  for (const [index, key] of keys.entries()) {
    if (key.length < MIN_API_KEY_LENGTH) {
      ctx.addIssue({ code: 'custom', message: `key #${index + 1} is shorter than ${MIN_API_KEY_LENGTH} characters` })
    }
    if (!BEARER_TOKEN_SYNTAX.test(key)) {
      ctx.addIssue({ code: 'custom', message: `key #${index + 1} has a character a Bearer token cannot carry (RFC 6750: letters, digits, -._~+/ and = at the end): no request could ever present it` })
    }
  }
})

/** A token sent as `Authorization: Bearer`: visible ASCII only, so that it fits a header field (RFC 9110 §5.5). */
const bearerToken = z.string().optional().transform((value, ctx) => {
  const token = value?.trim()
  if (token === undefined || token === '') return undefined
  if (!/^[\x21-\x7e]+$/.test(token)) {
    ctx.addIssue({ code: 'custom', message: 'must be printable ASCII without spaces (it is sent in a header)' })
    return z.NEVER
  }
  return token
})

/** Every environment variable the relay reads, with its validation and default. */
const variables = {
  PORT: integer(8080, 0, 65535),
  HOST: z.string().optional().transform((value) => value?.trim() || '0.0.0.0'),
  LOG_LEVEL: z.enum(LOG_LEVELS).optional().transform((value) => value ?? 'info'),

  OIDC_ISSUER: url(['http', 'https'], 'http://127.0.0.1:4444/'),
  OIDC_JWKS_URL: url(['http', 'https']),
  OIDC_AUDIENCES: list,
  OIDC_ALGORITHMS: list.transform((items) => items.length > 0 ? items : ['RS256']).superRefine((items, ctx) => {
    for (const alg of items) {
      if (!isJwsAlgorithm(alg)) {
        ctx.addIssue({
          code: 'custom',
          message: `"${alg}" is not allowed: logout tokens must be signed with the issuer's private key (one of ${JWS_ALGORITHM_NAMES.join(', ')})`
        })
      }
    }
  }),
  LOGOUT_TOKEN_MAX_AGE: integer(300, 1, 86_400),
  CLOCK_TOLERANCE: integer(30, 0, 3600),
  LOGOUT_TOKEN_REQUIRE_EXP: boolean(false),

  REDIS_URL: url(['redis', 'rediss']),
  REDIS_CLUSTER_NODES: list.superRefine((nodes, ctx) => {
    for (const node of nodes) {
      if (!/^[^\s:]+:\d{1,5}$/.test(node)) ctx.addIssue({ code: 'custom', message: `"${node}" is not host:port` })
    }
  }),
  REDIS_TLS: boolean(false),
  REDIS_KEY_PREFIX: z.string().optional().transform((value) => value ?? 'logout-relay:').refine(
    (value) => !/[{}]/.test(value),
    'must not contain { or }: braces are Redis Cluster hash tags'
  ),
  REDIS_COMMAND_TIMEOUT: integer(2000, 100, 60_000),

  SID_TTL: integer(2_592_000, 60),
  UNRESOLVED_SID_TTL: integer(86_400, 60),
  MAX_SIDS_PER_IDENTITY: integer(1000, 1, 100_000),

  KRATOS_ADMIN_URL: url(['http', 'https'], 'http://127.0.0.1:4434'),
  KRATOS_ADMIN_TOKEN: bearerToken,
  HYDRA_ADMIN_URL: url(['http', 'https'], 'http://127.0.0.1:4445'),
  HYDRA_ADMIN_TOKEN: bearerToken,
  UPSTREAM_TIMEOUT: integer(5000, 100, 120_000),
  // The proxy for the calls to Ory and the issuer, as curl reads it: the lower-case name wins.
  HTTP_PROXY: url(['http', 'https']),
  http_proxy: url(['http', 'https']),
  HTTPS_PROXY: url(['http', 'https']),
  https_proxy: url(['http', 'https']),
  NO_PROXY: z.string().optional().transform((value) => value?.trim() || undefined),
  no_proxy: z.string().optional().transform((value) => value?.trim() || undefined),

  LOGIN_HOOK_API_KEYS: apiKeys,
  ADMIN_API_KEYS: apiKeys,
  CREDENTIAL_CHANGE_REVOKE_CONSENTS: boolean(false),

  REVOCATION_MAX_ATTEMPTS: integer(20, 1, 1000),
  REVOCATION_MAX_AGE: integer(86_400, 60),
  REVOCATION_CONCURRENCY: integer(128, 1, 1024),
  REVOCATION_BACKOFF_BASE: integer(1000, 10, 3_600_000),
  REVOCATION_BACKOFF_MAX: integer(900_000, 10, 86_400_000),
  REVOCATION_LEASE: integer(30_000, 1000, 3_600_000),
  DEAD_LETTER_MAX_AGE: integer(2_592_000, 60),
  DEAD_LETTER_MAX_COUNT: integer(10_000, 1, 10_000_000),
  AUDIT_MAX_AGE: integer(2_592_000, 60),
  AUDIT_MAX_ENTRIES: integer(100_000, 1, 100_000_000),

  HOOK_RATE_LIMIT: integer(1000, 1),
  HOOK_RATE_WINDOW: integer(1, 1, 3600),
  AUTH_FAILURE_LIMIT: integer(10, 1),
  AUTH_FAILURE_GLOBAL_LIMIT: integer(100, 1),
  AUTH_FAILURE_WINDOW: integer(60, 1, 86_400),
  TRUST_PROXY: z.string().optional().transform((value, ctx) => {
    const raw = value?.trim() ?? ''
    if (raw === '' || raw === 'false') return false
    if (raw === 'true') return true
    if (/^\d+$/.test(raw)) return Number(raw)
    const entries = raw.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '')
    if (entries.every((entry) => /^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(entry))) return entries
    ctx.addIssue({ code: 'custom', message: `must be true, false, a hop count, or a list of proxy addresses/CIDRs, got "${raw}"` })
    return z.NEVER
  }),
  MAX_EVENT_LOOP_DELAY: integer(1000, 0, 60_000),
  LOGOUT_BODY_LIMIT: integer(65_536, 1024, 10_485_760),
  HOOK_BODY_LIMIT: integer(16_384, 1024, 10_485_760),
  SHUTDOWN_TIMEOUT: integer(25_000, 0, 600_000),
  REQUEST_TIMEOUT: integer(10_000, 1000, 600_000)
}

/** The names of every variable the relay reads (each secret may also come as `<NAME>_FILE`). */
export const CONFIG_VARIABLES = Object.keys(variables) as ReadonlyArray<keyof typeof variables>

const envSchema = z.object(variables).superRefine((env, ctx) => {
  if (env.REDIS_URL !== undefined && env.REDIS_CLUSTER_NODES.length > 0) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_CLUSTER_NODES'], message: 'set REDIS_URL or REDIS_CLUSTER_NODES, not both' })
  }
  if (env.REVOCATION_BACKOFF_MAX < env.REVOCATION_BACKOFF_BASE) {
    ctx.addIssue({ code: 'custom', path: ['REVOCATION_BACKOFF_MAX'], message: 'must not be smaller than REVOCATION_BACKOFF_BASE' })
  }
  if (env.UPSTREAM_TIMEOUT * 2 > env.REVOCATION_LEASE) {
    ctx.addIssue({ code: 'custom', path: ['REVOCATION_LEASE'], message: 'must be at least twice UPSTREAM_TIMEOUT, or a slow call could run twice' })
  }
}).transform((env) => ({
  http: {
    port: env.PORT,
    host: env.HOST,
    trustProxy: env.TRUST_PROXY,
    maxEventLoopDelayMs: env.MAX_EVENT_LOOP_DELAY,
    logoutBodyLimit: env.LOGOUT_BODY_LIMIT,
    hookBodyLimit: env.HOOK_BODY_LIMIT,
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT,
    requestTimeoutMs: env.REQUEST_TIMEOUT
  },
  logLevel: env.LOG_LEVEL,
  oidc: {
    issuer: env.OIDC_ISSUER as string,
    jwksUrl: env.OIDC_JWKS_URL,
    audiences: env.OIDC_AUDIENCES,
    algorithms: env.OIDC_ALGORITHMS,
    maxAgeSeconds: env.LOGOUT_TOKEN_MAX_AGE,
    clockToleranceSeconds: env.CLOCK_TOLERANCE,
    requireExp: env.LOGOUT_TOKEN_REQUIRE_EXP
  },
  redis: {
    url: env.REDIS_URL,
    clusterNodes: env.REDIS_CLUSTER_NODES,
    tls: env.REDIS_TLS,
    keyPrefix: env.REDIS_KEY_PREFIX,
    commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT
  },
  index: {
    sidTtlSeconds: env.SID_TTL,
    unresolvedSidTtlSeconds: env.UNRESOLVED_SID_TTL,
    maxSidsPerIdentity: env.MAX_SIDS_PER_IDENTITY
  },
  kratos: { adminUrl: env.KRATOS_ADMIN_URL as string, adminToken: env.KRATOS_ADMIN_TOKEN },
  hydra: { adminUrl: env.HYDRA_ADMIN_URL as string, adminToken: env.HYDRA_ADMIN_TOKEN },
  upstreamTimeoutMs: env.UPSTREAM_TIMEOUT,
  proxy: { httpProxy: env.http_proxy ?? env.HTTP_PROXY, httpsProxy: env.https_proxy ?? env.HTTPS_PROXY, noProxy: env.no_proxy ?? env.NO_PROXY },
  loginHook: { apiKeys: env.LOGIN_HOOK_API_KEYS, rateLimit: env.HOOK_RATE_LIMIT, rateWindowSeconds: env.HOOK_RATE_WINDOW },
  authFailures: { perAddress: env.AUTH_FAILURE_LIMIT, overall: env.AUTH_FAILURE_GLOBAL_LIMIT, windowSeconds: env.AUTH_FAILURE_WINDOW },
  adminApi: { apiKeys: env.ADMIN_API_KEYS },
  credentialChange: { revokeConsents: env.CREDENTIAL_CHANGE_REVOKE_CONSENTS },
  revocation: {
    maxAttempts: env.REVOCATION_MAX_ATTEMPTS,
    maxAgeMs: env.REVOCATION_MAX_AGE * 1000,
    concurrency: env.REVOCATION_CONCURRENCY,
    backoffBaseMs: env.REVOCATION_BACKOFF_BASE,
    backoffMaxMs: env.REVOCATION_BACKOFF_MAX,
    leaseMs: env.REVOCATION_LEASE
  },
  deadLetters: {
    maxAgeMs: env.DEAD_LETTER_MAX_AGE * 1000,
    maxCount: env.DEAD_LETTER_MAX_COUNT
  },
  audit: {
    maxAgeMs: env.AUDIT_MAX_AGE * 1000,
    maxEntries: env.AUDIT_MAX_ENTRIES
  }
}))

/** The service's whole configuration, as validated by {@link loadConfig}. */
export type Config = z.output<typeof envSchema>

/** Every problem found in the environment, each as `NAME: what is wrong`. */
export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID'
  constructor (readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** Reads a secret file; injected so that {@link loadConfig} stays testable without a file system. */
export type ReadSecretFile = (path: string) => string

/**
 * Validates the environment with one schema and returns the typed configuration. Every problem is
 * collected and thrown at once as a {@link ConfigError}. A secret `NAME` may come from the file named
 * by `NAME_FILE` (Docker and Kubernetes secrets); setting both is a problem.
 */
export function loadConfig (
  env: Record<string, string | undefined>,
  readSecretFile: ReadSecretFile = (path) => readFileSync(path, 'utf8')
): Config {
  const problems: string[] = []
  const resolved: Record<string, string | undefined> = { ...env }
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`]
    if (file === undefined || file === '') continue
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`${name}: set ${name} or ${name}_FILE, not both`)
      continue
    }
    try {
      resolved[name] = readSecretFile(file).replace(/\r?\n$/, '')
    } catch (err) {
      problems.push(`${name}_FILE: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`)
    }
  }
  const result = envSchema.safeParse(resolved)
  if (!result.success) {
    for (const issue of result.error.issues) {
      const name = issue.path.join('.') || 'environment'
      problems.push(`${name}: ${issue.message}`)
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems)
  return result.data
}

/** What an operator should know about a valid configuration, said once at startup. */
export function startupNotices (config: Config): Array<{ level: 'warn' | 'info', message: string }> {
  const notices: Array<{ level: 'warn' | 'info', message: string }> = []
  if (config.redis.url === undefined && config.redis.clusterNodes.length === 0) {
    notices.push({
      level: 'warn',
      message: 'REDIS_URL is not set: using an in-memory store for one instance; the session index and queued revocations are lost on restart'
    })
  }
  if (config.oidc.audiences.length === 0) {
    notices.push({ level: 'info', message: `OIDC_AUDIENCES is empty: logout tokens for any client of ${config.oidc.issuer} are accepted` })
  }
  if (config.loginHook.apiKeys.length === 0) {
    notices.push({ level: 'warn', message: 'LOGIN_HOOK_API_KEYS is not set: the login hook is not configured and refuses every call' })
  }
  if (config.adminApi.apiKeys.length === 0) {
    notices.push({ level: 'info', message: 'ADMIN_API_KEYS is not set: the admin API refuses every call' })
  }
  const proxies = trustedProxies(config.http.trustProxy)
  if (proxies !== undefined) notices.push({ level: proxies.level, message: `TRUST_PROXY: the client address is read from X-Forwarded-For ${proxies.message}` })
  return notices
}

/** Which proxies TRUST_PROXY trusts, in words for the startup log; undefined when it is off. */
function trustedProxies (trust: Config['http']['trustProxy']): { level: 'warn' | 'info', message: string } | undefined {
  if (trust === false) return undefined
  if (trust === true) {
    return {
      level: 'warn',
      message: 'as any peer sets it (TRUST_PROXY=true trusts every proxy, and any client can claim any address): ' +
        'set the proxies\' addresses or a hop count instead, unless the proxy in front overwrites the header'
    }
  }
  if (typeof trust === 'number') return { level: 'info', message: `as set by the nearest ${trust} prox${trust === 1 ? 'y' : 'ies'} (a hop count)` }
  return { level: 'info', message: `as set by these proxies only: ${trust.join(', ')}` }
}

/** Hides the password of a URL so that it can be logged or printed. */
export function redactUrl (raw: string): string {
  try {
    const parsed = new URL(raw)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return raw.replace(/\/\/[^@/]*@/, '//***@')
  }
}

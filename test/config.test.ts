import t from 'tap'
import { ConfigError, loadConfig, redactUrl, startupNotices } from '../src/config.js'

function problems (env: Record<string, string>, files: Record<string, string> = {}): string[] {
  try {
    loadConfig(env, (path) => {
      const content = files[path]
      if (content === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' })
      return content
    })
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

t.test('defaults serve a local Hydra and Kratos', async (t) => {
  const config = loadConfig({})
  t.equal(config.http.port, 8080)
  t.equal(config.http.host, '0.0.0.0')
  t.equal(config.logLevel, 'info')
  t.equal(config.oidc.issuer, 'http://127.0.0.1:4444/')
  t.equal(config.oidc.jwksUrl, undefined)
  t.same(config.oidc.audiences, [])
  t.same(config.oidc.algorithms, ['RS256'])
  t.equal(config.oidc.maxAgeSeconds, 300)
  t.equal(config.oidc.clockToleranceSeconds, 30)
  t.equal(config.oidc.requireExp, false)
  t.equal(config.redis.url, undefined)
  t.equal(config.redis.keyPrefix, 'logout-relay:')
  t.equal(config.index.sidTtlSeconds, 2_592_000)
  t.equal(config.kratos.adminUrl, 'http://127.0.0.1:4434')
  t.equal(config.hydra.adminUrl, 'http://127.0.0.1:4445')
  t.same(config.loginHook.apiKeys, [])
  t.equal(config.revocation.maxAttempts, 20)
  t.equal(config.credentialChange.revokeConsents, false)
  t.same(config.audit, { maxAgeMs: 2_592_000_000, maxEntries: 100_000 })
})

t.test('reads every documented variable', async (t) => {
  const config = loadConfig({
    PORT: '9000',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'debug',
    OIDC_ISSUER: 'https://auth.example.com/',
    OIDC_JWKS_URL: 'http://hydra:4444/.well-known/jwks.json',
    OIDC_AUDIENCES: 'app-a, app-b',
    OIDC_ALGORITHMS: 'RS256,ES256',
    LOGOUT_TOKEN_MAX_AGE: '120',
    CLOCK_TOLERANCE: '5',
    LOGOUT_TOKEN_REQUIRE_EXP: 'true',
    REDIS_URL: 'rediss://:pw@redis:6380/2',
    REDIS_KEY_PREFIX: 'relay:',
    SID_TTL: '3600',
    KRATOS_ADMIN_URL: 'http://kratos:4434',
    KRATOS_ADMIN_TOKEN: 'ory_pat_x',
    HYDRA_ADMIN_URL: 'http://hydra:4445',
    HYDRA_ADMIN_TOKEN: 'ory_pat_y',
    LOGIN_HOOK_API_KEYS: 'k1-0123456789abcdef,k2-0123456789abcdef',
    REVOCATION_MAX_ATTEMPTS: '7',
    CREDENTIAL_CHANGE_REVOKE_CONSENTS: 'true',
    AUDIT_MAX_AGE: '86400',
    AUDIT_MAX_ENTRIES: '5000'
  })
  t.equal(config.http.port, 9000)
  t.same(config.oidc.audiences, ['app-a', 'app-b'])
  t.same(config.oidc.algorithms, ['RS256', 'ES256'])
  t.equal(config.oidc.requireExp, true)
  t.equal(config.redis.url, 'rediss://:pw@redis:6380/2')
  t.equal(config.kratos.adminToken, 'ory_pat_x')
  t.same(config.loginHook.apiKeys, ['k1-0123456789abcdef', 'k2-0123456789abcdef'])
  t.equal(config.revocation.maxAttempts, 7)
  t.equal(config.index.sidTtlSeconds, 3600)
  t.equal(config.credentialChange.revokeConsents, true)
  t.same(config.audit, { maxAgeMs: 86_400_000, maxEntries: 5000 })
})

t.test('every problem is reported at once', async (t) => {
  const found = problems({
    PORT: 'eighty',
    LOG_LEVEL: 'loud',
    OIDC_ISSUER: 'not a url',
    OIDC_ALGORITHMS: 'RS256,HS256,none',
    LOGOUT_TOKEN_MAX_AGE: '-1',
    LOGOUT_TOKEN_REQUIRE_EXP: 'maybe',
    CREDENTIAL_CHANGE_REVOKE_CONSENTS: 'sometimes',
    REDIS_URL: 'http://redis:6379',
    REDIS_KEY_PREFIX: '{relay}:',
    LOGIN_HOOK_API_KEYS: 'tiny-key',
    KRATOS_ADMIN_URL: 'ftp://kratos'
  })
  const names = found.map((problem) => problem.split(':')[0])
  for (const name of ['PORT', 'LOG_LEVEL', 'OIDC_ISSUER', 'OIDC_ALGORITHMS', 'LOGOUT_TOKEN_MAX_AGE', 'LOGOUT_TOKEN_REQUIRE_EXP', 'CREDENTIAL_CHANGE_REVOKE_CONSENTS', 'REDIS_URL', 'REDIS_KEY_PREFIX', 'LOGIN_HOOK_API_KEYS', 'KRATOS_ADMIN_URL']) {
    t.ok(names.includes(name), `${name} reported`)
  }
  t.equal(found.filter((problem) => problem.startsWith('OIDC_ALGORITHMS')).length, 2, 'HS256 and none, each named')
  t.match(found.join('\n'), /"HS256" is not allowed/)
  t.notMatch(found.join('\n'), /tiny-key/, 'the key itself is never printed')
})

t.test('the audit trail\'s bounds are whole numbers: an age of a minute or more, at least one entry', async (t) => {
  for (const [name, value] of [['AUDIT_MAX_AGE', '59'], ['AUDIT_MAX_AGE', '1h'], ['AUDIT_MAX_ENTRIES', '0'], ['AUDIT_MAX_ENTRIES', '2.5']] as const) {
    t.match(problems({ [name]: value }), [new RegExp(`^${name}: must be a whole number`)], `${name}=${value}`)
  }
})

t.test('an API key a Bearer header cannot carry is refused at startup, naming the variable', async (t) => {
  for (const [name, key] of [['LOGIN_HOOK_API_KEYS', 'hook key 0123456789'], ['ADMIN_API_KEYS', 'quote"0123456789abcdef'], ['ADMIN_API_KEYS', 'pad=ding0123456789abc'], ['LOGIN_HOOK_API_KEYS', 'ünïcode-0123456789abcdef']] as const) {
    const found = problems({ [name]: `ok-key-0123456789abcdef, ${key}` })
    t.equal(found.length, 1, key)
    t.match(found[0], new RegExp(`^${name}: key #2 has a character a Bearer token cannot carry`))
    t.notOk(found[0]?.includes(key), 'without printing the key')
  }
  const fine = loadConfig({ LOGIN_HOOK_API_KEYS: 'O7H0rP3IaVr/7tnVbkzNLzkXDyPb+9Z~_.-J==' })
  t.same(fine.loginHook.apiKeys, ['O7H0rP3IaVr/7tnVbkzNLzkXDyPb+9Z~_.-J=='], 'base64, base64url and = padding are fine')
})

t.test('secrets from NAME_FILE', async (t) => {
  const config = loadConfig({ LOGIN_HOOK_API_KEYS_FILE: '/run/secrets/hook', KRATOS_ADMIN_TOKEN_FILE: '/run/secrets/kratos' }, (path) =>
    path === '/run/secrets/hook' ? 'from-file-0123456789abc\n' : 'kratos-token\n')
  t.same(config.loginHook.apiKeys, ['from-file-0123456789abc'])
  t.equal(config.kratos.adminToken, 'kratos-token')
  t.same(problems({ LOGIN_HOOK_API_KEYS: 'a-0123456789abcdefgh', LOGIN_HOOK_API_KEYS_FILE: '/x' }), ['LOGIN_HOOK_API_KEYS: set LOGIN_HOOK_API_KEYS or LOGIN_HOOK_API_KEYS_FILE, not both'])
  t.same(problems({ REDIS_URL_FILE: '/missing' }), ['REDIS_URL_FILE: cannot read "/missing" (ENOENT)'])
})

t.test('admin tokens must fit a header field, and are never printed', async (t) => {
  for (const token of ['two words', 'tab\there', 'clé-secrète', 'line\nbreak']) {
    const found = problems({ KRATOS_ADMIN_TOKEN: token, HYDRA_ADMIN_TOKEN: token })
    t.same(found.map((problem) => problem.split(':')[0]), ['KRATOS_ADMIN_TOKEN', 'HYDRA_ADMIN_TOKEN'], JSON.stringify(token))
    t.notMatch(found.join('\n'), token, 'the token itself is not in the message')
  }
  t.equal(loadConfig({ KRATOS_ADMIN_TOKEN: '  ory_pat_abc.DEF-123_~+/=  ' }).kratos.adminToken, 'ory_pat_abc.DEF-123_~+/=', 'trimmed, then kept as it is')
})

t.test('cross-field rules', async (t) => {
  t.match(problems({ REDIS_URL: 'redis://a:6379', REDIS_CLUSTER_NODES: 'b:7000' }).join(), /not both/)
  t.match(problems({ REDIS_CLUSTER_NODES: 'b:7000,c' }).join(), /"c" is not host:port/)
  t.match(problems({ REVOCATION_BACKOFF_BASE: '5000', REVOCATION_BACKOFF_MAX: '1000' }).join(), /REVOCATION_BACKOFF_MAX/)
  t.match(problems({ UPSTREAM_TIMEOUT: '20000', REVOCATION_LEASE: '30000' }).join(), /REVOCATION_LEASE/)
})

t.test('the proxy variables, as curl reads them: upper or lower case, the lower-case one first', async (t) => {
  t.same(loadConfig({}).proxy, { httpProxy: undefined, httpsProxy: undefined, noProxy: undefined })
  t.same(loadConfig({ HTTP_PROXY: 'http://proxy:3128', HTTPS_PROXY: 'http://proxy:3129', NO_PROXY: 'kratos, hydra' }).proxy,
    { httpProxy: 'http://proxy:3128', httpsProxy: 'http://proxy:3129', noProxy: 'kratos, hydra' })
  t.same(loadConfig({ HTTP_PROXY: 'http://upper:1', http_proxy: 'http://lower:1', https_proxy: 'https://lower:2', NO_PROXY: 'a', no_proxy: 'b' }).proxy,
    { httpProxy: 'http://lower:1', httpsProxy: 'https://lower:2', noProxy: 'b' })
  const found = problems({ HTTPS_PROXY: 'not a url', http_proxy: 'ftp://user:secret@proxy' })
  t.same(found.map((problem) => problem.split(':')[0]).sort(), ['HTTPS_PROXY', 'http_proxy'])
  t.notMatch(found.join('\n'), /secret/, 'a password in a proxy URL is never printed')
})

t.test('startup notices say what runs unprotected or undurable', async (t) => {
  const notices = startupNotices(loadConfig({})).map((notice) => `${notice.level} ${notice.message}`)
  t.match(notices.join('\n'), /warn REDIS_URL is not set: using an in-memory store/)
  t.match(notices.join('\n'), /warn LOGIN_HOOK_API_KEYS is not set: the login hook is not configured/)
  t.match(notices.join('\n'), /OIDC_AUDIENCES is empty: logout tokens for any client/)
  const quiet = startupNotices(loadConfig({ REDIS_URL: 'redis://r', LOGIN_HOOK_API_KEYS: 'k-0123456789abcdefgh', ADMIN_API_KEYS: 'a-0123456789abcdefgh', OIDC_AUDIENCES: 'app' }))
  t.same(quiet, [])
})

t.test('with TRUST_PROXY on, the startup log says which proxies are trusted', async (t) => {
  const said = (value: string): string[] => startupNotices(loadConfig({ TRUST_PROXY: value }))
    .filter((notice) => notice.message.startsWith('TRUST_PROXY')).map((notice) => `${notice.level} ${notice.message}`)
  t.same(said('false'), [])
  t.match(said('10.0.0.1,10.1.0.0/16'), [/^info .*these proxies only: 10\.0\.0\.1, 10\.1\.0\.0\/16/])
  t.match(said('2'), [/^info .*nearest 2 proxies/])
  t.match(said('true'), [/^warn .*trusts every proxy/])
})

t.test('passwords in URLs are hidden', async (t) => {
  t.equal(redactUrl('redis://user:secret@redis:6379/0'), 'redis://user:***@redis:6379/0')
  t.equal(redactUrl('redis://redis:6379'), 'redis://redis:6379')
})

import { Redis } from 'ioredis'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { formatCheck, maskSecret, runDoctor, weakKeyReason, type CheckResult, type DoctorOptions, type DoctorReport } from '../../src/ops/doctor.js'
import { HydraDouble } from '../doubles/hydra.js'
import { KratosDouble } from '../doubles/kratos.js'
import { checkContracts } from '../helper.js'
import { freePort, spawnRedis, type OwnedRedis } from '../helpers/redis.js'

// Random keys, as `openssl rand -hex 32` and `openssl rand -base64 24` make them.
const HOOK_KEY = '1884aa8eae42519bcdd21ec208aac38583252c4334a87445a869e5859c3202c7'
const ADMIN_KEY = 'O7H0rP3IaVr/7tnVbkzNLzkXDyPbl9ZJ'
const REDIS_PASSWORD = 'redis-pw-6f3b9c1d2e'

const CHECKS = ['configuration', 'redis', 'redis persistence', 'redis eviction', 'issuer', 'issuer keys', 'kratos admin', 'hydra admin', 'hydra clients', 'login hook keys', 'admin keys']
const RELAY = 'http://relay.test:8080'

/** A Redis as a queue's should be: AOF on; password protected, so that the test can see it is never printed. */
const durable = await spawnRedis({ appendOnly: true })
t.teardown(() => durable.close())
{
  const client = new Redis(durable.url)
  await client.config('SET', 'requirepass', REDIS_PASSWORD)
  client.disconnect()
}

function redisUrl (redis: OwnedRedis, password?: string): string {
  return `redis://${password !== undefined ? `:${password}@` : ''}127.0.0.1:${redis.port}`
}

interface Setup {
  hydra: HydraDouble
  kratos: KratosDouble
  /** An environment in which every check passes. */
  env: Record<string, string | undefined>
  run: (env?: Record<string, string | undefined>, options?: Partial<DoctorOptions>) => Promise<DoctorReport & { byName: Map<string, CheckResult>, output: string }>
}

async function setup (t: Test, hydraOptions: { token?: string } = {}): Promise<Setup> {
  const hydra = await HydraDouble.start(hydraOptions)
  const kratos = await new KratosDouble().listen()
  t.teardown(async () => { await hydra.close(); await kratos.close() })
  checkContracts(t, hydra, kratos)
  // The clients of OIDC_AUDIENCES, with the relay as their back-channel logout URI.
  hydra.clients.clear()
  for (const id of ['app-a', 'app-b']) hydra.addClient(id, { backchannel_logout_uri: `${RELAY}/backchannel-logout` })
  const env = {
    OIDC_ISSUER: hydra.issuer,
    OIDC_AUDIENCES: 'app-a,app-b',
    HYDRA_ADMIN_URL: hydra.url,
    KRATOS_ADMIN_URL: `${kratos.url}/`,
    REDIS_URL: redisUrl(durable, REDIS_PASSWORD),
    LOGIN_HOOK_API_KEYS: HOOK_KEY,
    ADMIN_API_KEYS: ADMIN_KEY,
    UPSTREAM_TIMEOUT: '1000',
    REVOCATION_LEASE: '5000'
  }
  return {
    hydra,
    kratos,
    env,
    async run (overrides = {}, options = {}) {
      const streamed: CheckResult[] = []
      const report = await runDoctor({ env: { ...env, ...overrides }, relayUrl: RELAY, onResult: (result) => streamed.push(result), ...options })
      t.same(streamed, report.checks, 'each check is told as it is known, in report order')
      const output = [...report.checks.map(formatCheck), report.setup ?? ''].join('\n')
      return { ...report, byName: new Map(report.checks.map((check) => [check.name, check])), output }
    }
  }
}

t.test('everything in order: every check passes, exit 0, and the settings to paste carry the live values', async (t) => {
  const { hydra, kratos, run } = await setup(t)
  const report = await run()
  t.same(report.checks.map((check) => check.name), CHECKS)
  for (const check of report.checks) t.equal(check.status, 'pass', `${check.name}: ${check.message}`)
  t.equal(report.exitCode, 0)
  t.match(report.byName.get('redis')?.message, `redis://:***@127.0.0.1:${durable.port}`)
  t.match(report.byName.get('redis persistence')?.message, /AOF is on \(appendfsync always\)/)
  t.match(report.byName.get('issuer')?.message, hydra.issuer)
  t.match(report.byName.get('issuer keys')?.message, /1 key for RS256/)
  t.equal(kratos.callsOf('isReady').length, 1)
  t.equal(hydra.callsOf('isReady').length, 1)
  t.equal(hydra.callsOf('discoverOidcConfiguration').length, 1)
  t.equal(hydra.callsOf('discoverJsonWebKeys').length, 1)

  const setupText = report.setup ?? ''
  t.match(setupText, `hydra create oauth2-client --endpoint ${hydra.url} \\`)
  t.match(setupText, '--backchannel-logout-callback http://relay.test:8080/backchannel-logout')
  t.match(setupText, `hydra update oauth2-client app-a --endpoint ${hydra.url} \\`)
  t.match(setupText, `hydra update oauth2-client app-b --endpoint ${hydra.url} \\`)
  t.match(setupText, 'url: http://relay.test:8080/hooks/login')
  t.match(setupText, `value: Bearer ${HOOK_KEY.slice(0, 4)}…`)
  t.match(setupText, 'url: http://relay.test:8080/hooks/credentials-changed')
  t.match(setupText, /credentials-changed\.jsonnet[\s\S]*- hook: revoke_active_sessions/, 'the credentials hook, then Kratos\' own revocation')
  t.match(report.byName.get('login hook keys')?.message, `${HOOK_KEY.slice(0, 4)}…`)
  t.notMatch(report.output, HOOK_KEY, 'the hook key is never printed whole')
  t.notMatch(report.output, ADMIN_KEY)
  t.notMatch(report.output, REDIS_PASSWORD)
  t.match(formatCheck(report.checks[0] as CheckResult), /^✔ configuration: valid$/)
})

t.test('an invalid configuration: every problem, nothing else checked, exit 78', async (t) => {
  const { hydra, kratos, run } = await setup(t)
  const report = await run({ OIDC_ISSUER: 'nope', LOGIN_HOOK_API_KEYS: 'tiny-k3y', REDIS_URL: 'http://redis' })
  t.equal(report.exitCode, 78)
  t.same(report.checks.map((check) => check.name), ['configuration'])
  const [check] = report.checks
  t.equal(check?.status, 'fail')
  t.same(check?.details?.map((line) => line.split(':')[0]).sort(), ['LOGIN_HOOK_API_KEYS', 'OIDC_ISSUER', 'REDIS_URL'])
  const line = formatCheck(check as CheckResult)
  t.match(line, /^✖ configuration: 3 problems; the relay would not start \(exit 78\) — fix: /)
  t.match(line, /\n {4}OIDC_ISSUER: must be a URL/)
  t.notMatch(line, 'tiny-k3y', 'not even a bad key is printed')
  t.equal(report.setup, undefined)
  t.equal(hydra.calls.length + kratos.calls.length, 0, 'nothing contacted')
})

t.test('redis: the in-memory store warns (exit 2); an unreachable Redis fails (exit 1)', async (t) => {
  const { run } = await setup(t)
  const memory = await run({ REDIS_URL: undefined })
  t.same(memory.checks.map((check) => check.name), CHECKS.filter((name) => !name.startsWith('redis ')))
  t.equal(memory.byName.get('redis')?.status, 'warn')
  t.match(memory.byName.get('redis')?.message, /in-memory store is not durable/)
  t.equal(memory.exitCode, 2, 'a warning alone: exit 2')
  t.match(formatCheck(memory.byName.get('redis') as CheckResult), /^✖ redis: warning: REDIS_URL is not set.* — fix: set REDIS_URL/)

  const port = await freePort()
  const down = await run({ REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${port}` })
  t.equal(down.byName.get('redis')?.status, 'fail')
  t.match(down.byName.get('redis')?.message, `redis://:***@127.0.0.1:${port} does not answer (`)
  t.match(down.byName.get('redis')?.message, /ECONNREFUSED/)
  t.notMatch(down.output, REDIS_PASSWORD)
  t.equal(down.exitCode, 1)

  const wrongPassword = await run({ REDIS_URL: redisUrl(durable, 'not-the-password') })
  t.equal(wrongPassword.byName.get('redis')?.status, 'fail')
  t.match(wrongPassword.byName.get('redis')?.message, /WRONGPASS|invalid password/)
})

t.test('redis persistence: AOF or RDB passes; neither warns; read from INFO where CONFIG is refused', async (t) => {
  const { run } = await setup(t)
  const spawned = async (options: { appendOnly?: boolean }, args: string[] = []): Promise<OwnedRedis> => {
    const redis = await spawnRedis(options, args)
    t.teardown(() => redis.close())
    return redis
  }
  const volatile = await spawned({ appendOnly: false }, ['--save', '', '--appendonly', 'no'])
  const report = await run({ REDIS_URL: redisUrl(volatile) })
  t.equal(report.byName.get('redis')?.status, 'pass')
  t.equal(report.byName.get('redis persistence')?.status, 'warn')
  t.match(report.byName.get('redis persistence')?.message, /AOF and RDB snapshots are off/)
  t.match(report.byName.get('redis persistence')?.fix, /appendonly yes/)
  t.equal(report.exitCode, 2)

  const rdb = await spawned({ appendOnly: false }, ['--save', '60 1000'])
  const snapshots = (await run({ REDIS_URL: redisUrl(rdb) })).byName.get('redis persistence')
  t.equal(snapshots?.status, 'pass')
  t.match(snapshots?.message, /RDB snapshots are on \(save 60 1000\)/)

  // Managed Redis: CONFIG is forbidden to the relay's user.
  const noConfig = ['--user', 'default', 'on', 'nopass', '~*', '&*', '+@all', '-config']
  const managedAof = await spawned({ appendOnly: true }, noConfig)
  const aof = await run({ REDIS_URL: redisUrl(managedAof) })
  t.equal(aof.byName.get('redis persistence')?.status, 'pass')
  t.match(aof.byName.get('redis persistence')?.message, /AOF is on \(INFO persistence; CONFIG GET is refused\)/)
  t.equal(aof.byName.get('redis eviction')?.status, 'pass', 'eviction read from INFO memory too')
  t.equal(aof.exitCode, 0)

  const managedNone = await spawned({ appendOnly: false }, noConfig)
  const none = (await run({ REDIS_URL: redisUrl(managedNone) })).byName.get('redis persistence')
  t.equal(none?.status, 'warn')
  t.match(none?.message, /CONFIG GET is refused/)
})

t.test('redis eviction: a maxmemory policy that drops keys warns', async (t) => {
  const { run } = await setup(t)
  const lru = await spawnRedis({ appendOnly: true }, ['--maxmemory', '100mb', '--maxmemory-policy', 'allkeys-lru'])
  t.teardown(() => lru.close())
  const report = await run({ REDIS_URL: redisUrl(lru) })
  const eviction = report.byName.get('redis eviction')
  t.equal(eviction?.status, 'warn')
  t.match(eviction?.message, /maxmemory-policy allkeys-lru/)
  t.match(eviction?.fix, /noeviction/)
  t.equal(report.exitCode, 2)
})

t.test('issuer: OIDC_ISSUER must equal the discovery issuer exactly, trailing slash included', async (t) => {
  const { hydra, run } = await setup(t)
  const withoutSlash = hydra.issuer.replace(/\/$/, '')
  const report = await run({ OIDC_ISSUER: withoutSlash })
  const issuer = report.byName.get('issuer')
  t.equal(issuer?.status, 'fail')
  t.match(issuer?.message, /the trailing slash matters/)
  t.equal(issuer?.fix, `set OIDC_ISSUER=${hydra.issuer}`)
  t.equal(report.byName.get('issuer keys')?.status, 'pass', 'the keys still load through the discovered jwks_uri')
  t.equal(report.exitCode, 1)
})

t.test('issuer: discovery unreachable fails, unless OIDC_JWKS_URL makes it optional (a warning)', async (t) => {
  const { hydra, run } = await setup(t)
  hydra.fail('discoverOidcConfiguration', { status: 500 })
  const report = await run()
  t.equal(report.byName.get('issuer')?.status, 'fail')
  t.match(report.byName.get('issuer')?.message, /openid-configuration answered 500/)
  t.equal(report.byName.get('issuer keys')?.status, 'fail')
  t.match(report.byName.get('issuer keys')?.message, /no JWKS to load/)

  const direct = await run({ OIDC_JWKS_URL: hydra.jwksUrl })
  t.equal(direct.byName.get('issuer')?.status, 'warn')
  t.match(direct.byName.get('issuer')?.message, /OIDC_JWKS_URL is set/)
  t.equal(direct.byName.get('issuer keys')?.status, 'pass')
  t.match(direct.byName.get('issuer keys')?.message, hydra.jwksUrl)
  t.equal(direct.exitCode, 2)
})

t.test('issuer keys: none for the allowed algorithms, or the JWKS unreachable, fails', async (t) => {
  const { hydra, run } = await setup(t)
  const es = await run({ OIDC_ALGORITHMS: 'ES256' })
  t.equal(es.byName.get('issuer keys')?.status, 'fail')
  t.match(es.byName.get('issuer keys')?.message, /none for OIDC_ALGORITHMS ES256 \(the keys: RS256\)/)
  t.match(es.byName.get('issuer keys')?.fix, /OIDC_ALGORITHMS/)

  hydra.fail('discoverJsonWebKeys', { status: 500 })
  const down = await run()
  t.equal(down.byName.get('issuer')?.status, 'pass')
  t.equal(down.byName.get('issuer keys')?.status, 'fail')
  t.match(down.byName.get('issuer keys')?.message, /jwks\.json \(the discovery document's jwks_uri\) answered 500/)
  t.equal(down.exitCode, 1)
})

t.test('kratos and hydra admin: not ready or not answering fails', async (t) => {
  const { hydra, kratos, run } = await setup(t)
  kratos.fail('isReady', { status: 503, times: 1 })
  hydra.fail('isReady', { status: 503, times: 1 })
  const notReady = await run()
  t.equal(notReady.byName.get('kratos admin')?.status, 'fail')
  t.match(notReady.byName.get('kratos admin')?.message, /health\/ready answers 503: up, but not ready/)
  t.equal(notReady.byName.get('hydra admin')?.status, 'fail')
  t.equal(notReady.exitCode, 1)

  const nobody = `http://127.0.0.1:${await freePort()}`
  const unreachable = await run({ KRATOS_ADMIN_URL: nobody, HYDRA_ADMIN_URL: nobody })
  t.match(unreachable.byName.get('kratos admin')?.message, `${nobody}/health/ready does not answer (ECONNREFUSED)`)
  t.match(unreachable.byName.get('kratos admin')?.fix, /KRATOS_ADMIN_URL/)
  t.match(unreachable.byName.get('hydra admin')?.fix, /HYDRA_ADMIN_URL/)

  kratos.fail('isReady', { kind: 'timeout', times: 1 })
  const slow = await run({ UPSTREAM_TIMEOUT: '300', REVOCATION_LEASE: '1000' })
  t.match(slow.byName.get('kratos admin')?.message, /does not answer \(no answer within 300 ms\)/)
})

/** A server on a free port that answers each request as `answer` says, and keeps the paths asked for. */
async function serve (t: Test, answer: (path: string) => { status: number, contentType: string, body: string }): Promise<{ url: string, asked: string[] }> {
  const asked: string[] = []
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    asked.push(path)
    const { status, contentType, body } = answer(path)
    res.writeHead(status, { 'content-type': contentType }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, asked }
}

t.test('kratos admin: /admin/health/ready where /health/ready is not served', async (t) => {
  const { run } = await setup(t)
  // A Kratos behind a proxy that passes /admin/ only.
  const proxied = await serve(t, (path) => path === '/admin/identities'
    ? { status: 200, contentType: 'application/json', body: '[]' }
    : { status: path === '/admin/health/ready' ? 200 : 404, contentType: 'application/json', body: '{}' })
  const report = await run({ KRATOS_ADMIN_URL: proxied.url })
  t.same(proxied.asked, ['/health/ready', '/admin/health/ready', '/admin/identities'])
  t.equal(report.byName.get('kratos admin')?.status, 'pass')
  t.match(report.byName.get('kratos admin')?.message, `${proxied.url}/admin/health/ready answers 200, and ${proxied.url} answers Kratos' admin API (GET /admin/identities)`)
})

t.test('an admin URL with a path prefix too many, or the public port, fails, naming the check and the fix', async (t) => {
  const { kratos, hydra, run } = await setup(t)
  kratos.expectStrays()
  hydra.expectStrays()
  const prefixed = await run({ KRATOS_ADMIN_URL: `${kratos.url}/admin`, HYDRA_ADMIN_URL: `${hydra.url}/admin/` })
  t.equal(prefixed.exitCode, 1)
  t.equal(prefixed.byName.get('kratos admin')?.status, 'fail', 'though /admin/health/ready answers 200 there')
  t.match(prefixed.byName.get('kratos admin')?.message, /GET \/admin\/identities answered 404: this URL has no Kratos' admin API/)
  t.match(prefixed.byName.get('kratos admin')?.fix, 'remove the path "/admin" from KRATOS_ADMIN_URL')
  t.equal(prefixed.byName.get('hydra admin')?.status, 'fail')
  t.match(prefixed.byName.get('hydra admin')?.fix, 'remove the path "/admin" from HYDRA_ADMIN_URL')
  t.ok(kratos.strays.includes('GET /admin/admin/identities'), 'the proof went where the relay would send its calls')

  const publicPort = await new KratosDouble({ publicPort: { redirectAdminTo: kratos.url } }).listen()
  t.teardown(() => publicPort.close())
  const onPublic = await run({ KRATOS_ADMIN_URL: publicPort.url })
  t.equal(onPublic.byName.get('kratos admin')?.status, 'fail', 'the public port answers /health/ready, but serves no admin route')
  t.match(onPublic.byName.get('kratos admin')?.message, `answered 307, a redirect to ${kratos.url}/admin/identities`)
  t.match(onPublic.byName.get('kratos admin')?.fix, "set KRATOS_ADMIN_URL to Kratos' admin API itself (port 4434 by default)")

  const hydraPublic = await HydraDouble.start({ publicPort: {} })
  t.teardown(() => hydraPublic.close())
  const onHydraPublic = await run({ HYDRA_ADMIN_URL: hydraPublic.url })
  t.equal(onHydraPublic.byName.get('hydra admin')?.status, 'fail', "Hydra's public port too")
  t.match(onHydraPublic.byName.get('hydra admin')?.fix, "set HYDRA_ADMIN_URL to Hydra's admin API's port (4445 by default), not the public port")
  t.match(formatCheck(onPublic.byName.get('kratos admin') as CheckResult), /^✖ kratos admin: .* — fix: set KRATOS_ADMIN_URL/)
})

t.test('an admin API that refuses the token, or answers something else with 200, fails', async (t) => {
  const { run } = await setup(t)
  const guarded = await HydraDouble.start({ token: 'the-right-token' })
  t.teardown(() => guarded.close())
  const refused = await run({ HYDRA_ADMIN_URL: guarded.url, HYDRA_ADMIN_TOKEN: 'a-wrong-token' })
  t.equal(refused.byName.get('hydra admin')?.status, 'fail')
  t.match(refused.byName.get('hydra admin')?.message, /answered 401: Hydra's admin API refuses the relay/)
  t.match(refused.byName.get('hydra admin')?.fix, /HYDRA_ADMIN_TOKEN/)

  const ui = await serve(t, () => ({ status: 200, contentType: 'text/html', body: '<html>login</html>' }))
  const html = await run({ KRATOS_ADMIN_URL: ui.url })
  t.equal(html.byName.get('kratos admin')?.status, 'fail')
  t.match(html.byName.get('kratos admin')?.message, /answered 200 but not with the JSON list Kratos' admin API gives/)
})

t.test('the admin tokens go along as Bearer tokens', async (t) => {
  const { hydra, run } = await setup(t, { token: 'hydra-admin-token' })
  const report = await run({ HYDRA_ADMIN_TOKEN: 'hydra-admin-token' })
  t.equal(report.byName.get('hydra admin')?.status, 'pass')
  t.equal(hydra.callsOf('isReady')[0]?.authorization, 'Bearer hydra-admin-token')
  t.notMatch(report.output, 'hydra-admin-token')
})

t.test('keys: unset, guessable, or shared between the hook and the admin API', async (t) => {
  const { run } = await setup(t)
  const noHook = await run({ LOGIN_HOOK_API_KEYS: undefined })
  t.equal(noHook.byName.get('login hook keys')?.status, 'fail')
  t.match(noHook.byName.get('login hook keys')?.message, /LOGIN_HOOK_API_KEYS is not set/)
  t.match(noHook.setup, 'value: Bearer <one of LOGIN_HOOK_API_KEYS>')

  const placeholder = await run({ LOGIN_HOOK_API_KEYS: `${HOOK_KEY},changeme-changeme-changeme` })
  t.equal(placeholder.byName.get('login hook keys')?.status, 'fail')
  t.match(placeholder.byName.get('login hook keys')?.message, 'key #2 (chan…) looks like a placeholder or an example (contains "changeme")')
  t.notMatch(placeholder.output, 'changeme-changeme-changeme')

  const noAdmin = await run({ ADMIN_API_KEYS: undefined })
  t.equal(noAdmin.byName.get('admin keys')?.status, 'warn')
  t.equal(noAdmin.exitCode, 2, 'an admin API left off is a choice: a warning')

  const shared = await run({ ADMIN_API_KEYS: `${ADMIN_KEY},${HOOK_KEY}` })
  t.equal(shared.byName.get('admin keys')?.status, 'fail')
  t.match(shared.byName.get('admin keys')?.message, `${maskSecret(HOOK_KEY)} is both a login hook key and an admin key`)

  const weak = await run({ ADMIN_API_KEYS: 'aaaaaaaabbbbbbbbaaaaaaaa' })
  t.equal(weak.byName.get('admin keys')?.status, 'fail')
  t.match(weak.byName.get('admin keys')?.message, /fewer than 8 distinct characters/)
  t.equal(weak.exitCode, 1)
})

t.test('what makes a key guessable', async (t) => {
  for (const key of [HOOK_KEY, ADMIN_KEY, 'ib_4TdIcLil-wgd-8hGjd-UdTi6inW5y', 'Zq8XtEsTy0a7Kf2LmN4pRvW9']) {
    t.equal(weakKeyReason(key), undefined, `${key} is random`)
  }
  for (const key of ['changeme-please-0000', 'my-secret-key-for-relay', 'hook-key-0123456789abcdef', 'PASSWORD1234567890', 'test-9f8e7d6c5b4a3210', 'your_api_key_goes_here', 'xxxxxxxxxxxxxxxxxxxxxxxx', 'abababababababababab']) {
    t.not(weakKeyReason(key), undefined, key)
  }
  t.equal(maskSecret('abcdefghijklmnop'), 'abcd…')
})

/** The `curl -X PATCH …` a detail line of the clients check gives, sent as curl would send it. */
async function runPatch (line: string, token?: string): Promise<number> {
  const match = /curl -X PATCH '([^']+)' -H 'Content-Type: application\/json'( -H "Authorization: Bearer \$HYDRA_ADMIN_TOKEN")? -d '([^']+)'$/.exec(line.trim())
  if (match === null) throw new Error(`not the patch command: ${line}`)
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(match[2] !== undefined && token !== undefined ? { authorization: `Bearer ${token}` } : {}) }
  const response = await fetch(match[1] ?? '', { method: 'PATCH', headers, body: match[3] ?? '' })
  await response.arrayBuffer()
  return response.status
}

t.test('hydra clients: each client that logs users in and does not send its logouts to the relay, with the JSON Patch that fixes it', async (t) => {
  const { hydra, run } = await setup(t)
  const fine = await run()
  t.equal(fine.byName.get('hydra clients')?.status, 'pass')
  t.equal(fine.byName.get('hydra clients')?.message, `2 clients send back-channel logouts to ${RELAY}/backchannel-logout`)

  hydra.addClient('app-c', { backchannel_logout_uri: '' })
  hydra.addClient('machine', { grant_types: ['client_credentials'], backchannel_logout_uri: '' })
  const warned = await run({ OIDC_AUDIENCES: undefined })
  const clients = warned.byName.get('hydra clients')
  t.equal(clients?.status, 'warn', 'a client without a back-channel logout URI may be intended')
  t.equal(warned.exitCode, 2)
  t.match(clients?.message, `1 of 3 clients do not send their back-channel logouts to ${RELAY}/backchannel-logout (--relay-url)`)
  t.match(clients?.message, '1 client that logs nobody in left out')
  t.same(clients?.details?.[0], '! app-c: has no backchannel_logout_uri: logouts through it never reach Kratos, unless that is intended')
  const command = clients?.details?.[1] ?? ''
  t.equal(command.trim(), `curl -X PATCH '${hydra.url}/admin/clients/app-c' -H 'Content-Type: application/json' -d '[{"op":"add","path":"/backchannel_logout_uri","value":"${RELAY}/backchannel-logout"},{"op":"add","path":"/backchannel_logout_session_required","value":true}]'`)
  t.match(formatCheck(clients as CheckResult), /^✖ hydra clients: warning: .*\n {4}! app-c: has no backchannel_logout_uri.*\n {6}curl -X PATCH /)

  t.equal(await runPatch(command), 200, 'the command works as printed')
  t.equal(hydra.clients.get('app-c')?.['backchannel_logout_uri'], `${RELAY}/backchannel-logout`)
  t.equal((await run({ OIDC_AUDIENCES: undefined })).byName.get('hydra clients')?.status, 'pass', 'and then the check passes')
})

t.test('hydra clients: with OIDC_AUDIENCES, its clients must send to the relay and exist; a client outside it must not send to the relay', async (t) => {
  const { hydra, run } = await setup(t)
  hydra.addClient('app-b', { backchannel_logout_uri: 'http://old-relay:8080/backchannel-logout' })
  hydra.addClient('app-d', { backchannel_logout_uri: `${RELAY}/backchannel-logout` })
  hydra.addClient('app-e', { backchannel_logout_uri: 'https://app-e.example/logout' })
  const report = await run({ OIDC_AUDIENCES: 'app-a,app-b,app-z' })
  const clients = report.byName.get('hydra clients')
  t.equal(clients?.status, 'fail')
  t.equal(report.exitCode, 1)
  const lines = (clients?.details ?? []).filter((line) => /^[✖!] /.test(line))
  t.same(lines, [
    `✖ app-b: sends its back-channel logouts to http://old-relay:8080/backchannel-logout, not ${RELAY}/backchannel-logout (OIDC_AUDIENCES names it): its logouts never reach Kratos`,
    '✖ app-d: sends its back-channel logouts to the relay, which refuses them: it is not in OIDC_AUDIENCES',
    `! app-e: sends its back-channel logouts to https://app-e.example/logout, not ${RELAY}/backchannel-logout: logouts through it never reach Kratos, unless that is intended; if not, run this and add it to OIDC_AUDIENCES:`,
    '✖ app-z: in OIDC_AUDIENCES, but Hydra has no such client'
  ])
})

t.test('hydra clients: every page of clients, through the admin token; none when Hydra\'s admin API fails', async (t) => {
  const { hydra, run } = await setup(t, { token: 'hydra-admin-token' })
  for (let i = 0; i < 600; i++) hydra.addClient(`bulk-${String(i).padStart(3, '0')}`, { backchannel_logout_uri: `${RELAY}/backchannel-logout` })
  hydra.addClient('zz-last', { backchannel_logout_uri: '' })
  const report = await run({ HYDRA_ADMIN_TOKEN: 'hydra-admin-token', OIDC_AUDIENCES: undefined })
  const clients = report.byName.get('hydra clients')
  t.match(clients?.details?.[0], /^! zz-last: /, 'found on the second page')
  t.same(hydra.callsOf('listOAuth2Clients').filter((call) => call.query.get('page_size') === '500').map((call) => call.authorization), ['Bearer hydra-admin-token', 'Bearer hydra-admin-token'])
  t.match(clients?.details?.[1], '-H "Authorization: Bearer $HYDRA_ADMIN_TOKEN"', 'the command names the token, never shows it')
  t.equal(await runPatch(clients?.details?.[1] ?? '', 'hydra-admin-token'), 200)
  t.notMatch(report.output, 'hydra-admin-token')

  hydra.fail('isReady', { status: 503, times: 1 })
  const down = await run({ HYDRA_ADMIN_TOKEN: 'hydra-admin-token' })
  t.equal(down.byName.get('hydra admin')?.status, 'fail')
  t.notOk(down.byName.has('hydra clients'), 'not listed while the admin API fails')
})

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { HydraDouble } from './doubles/hydra.js'
import { KratosDouble } from './doubles/kratos.js'
import { checkContracts } from './helper.js'
import { spawnRedis } from './helpers/redis.js'
import { startRelayProcess } from './helpers/relay-process.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const HOOK_KEY = 'c0d9f41e7a3b28e65f1a9d4c7b20e83f'
const ADMIN_KEY = 'f3a81c6e09d27b45e8c1a3f69d0b7e24'

interface Run { code: number | null, stdout: string, stderr: string }

/** `node --import tsx src/cli.ts …args` with only this environment (and PATH). */
async function cli (args: string[], env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr }
}

const redis = await spawnRedis({ appendOnly: true })
const hydra = await HydraDouble.start()
const kratos = await new KratosDouble().listen()
t.teardown(async () => { await hydra.close(); await kratos.close(); await redis.close() })
checkContracts(t, hydra, kratos)

const env = {
  OIDC_ISSUER: hydra.issuer,
  HYDRA_ADMIN_URL: hydra.url,
  KRATOS_ADMIN_URL: kratos.url,
  REDIS_URL: redis.url,
  LOGIN_HOOK_API_KEYS: HOOK_KEY,
  ADMIN_API_KEYS: ADMIN_KEY,
  OIDC_AUDIENCES: 'my-app'
}

/** Hydra's one client is OIDC_AUDIENCES', and sends its back-channel logouts to the relay at `relayUrl`. */
function clientOfRelay (relayUrl: string): void {
  hydra.clients.clear()
  hydra.addClient('my-app', { backchannel_logout_uri: `${relayUrl}/backchannel-logout` })
}

t.test('doctor: every check passes, exit 0, then the settings to paste', async (t) => {
  clientOfRelay('http://relay.internal:9000')
  const run = await cli(['doctor', '--relay-url', 'http://relay.internal:9000'], env)
  t.equal(run.code, 0, run.stdout + run.stderr)
  const lines = run.stdout.split('\n')
  const checks = lines.filter((line) => /^[✔✖] /.test(line))
  t.equal(checks.length, 11, 'one line per check')
  t.ok(checks.every((line) => line.startsWith('✔ ')), checks.join('\n'))
  t.ok(lines.includes('Every check passed.'))
  t.match(run.stdout, 'hydra update oauth2-client my-app --endpoint')
  t.match(run.stdout, '--backchannel-logout-callback http://relay.internal:9000/backchannel-logout')
  t.match(run.stdout, 'url: http://relay.internal:9000/hooks/login')
  t.match(run.stdout, 'value: Bearer c0d9…')
  t.notMatch(run.stdout, HOOK_KEY)
  t.notMatch(run.stdout, ADMIN_KEY)
  t.equal(run.stderr, '')
})

t.test('doctor: a failing check is a ✖ line with the fix, and exit 1', async (t) => {
  clientOfRelay('http://logout-relay:8080')
  kratos.fail('isReady', { status: 503, times: 1 })
  const run = await cli(['doctor'], env)
  t.equal(run.code, 1)
  t.match(run.stdout, /^✖ kratos admin: .*\/health\/ready answers 503: up, but not ready — fix: /m)
  t.match(run.stdout, /^✔ hydra admin: /m)
  t.match(run.stdout, /^1 check failed, 0 warned\.$/m)
  t.match(run.stdout, '--backchannel-logout-callback http://logout-relay:8080/backchannel-logout', 'the default relay URL')
})

t.test('doctor: warnings only, exit 2', async (t) => {
  const { REDIS_URL: _ignored, ...memory } = env
  const run = await cli(['doctor'], memory)
  t.equal(run.code, 2)
  t.match(run.stdout, /^✖ redis: warning: REDIS_URL is not set/m)
  t.match(run.stdout, /^0 checks failed, 1 warned\.$/m)
})

t.test('doctor: an invalid configuration prints every problem and exits 78', async (t) => {
  const run = await cli(['doctor'], { ...env, OIDC_ALGORITHMS: 'HS256', PORT: 'eighty' })
  t.equal(run.code, 78)
  t.match(run.stdout, /^✖ configuration: 2 problems/m)
  t.match(run.stdout, /^ {4}OIDC_ALGORITHMS: "HS256" is not allowed/m)
  t.match(run.stdout, /^ {4}PORT: /m)
  t.notMatch(run.stdout, /^✔/m, 'nothing else checked')
  t.notMatch(run.stdout, 'hydra create')
})

t.test('usage: help, an unknown command, a bad option', async (t) => {
  const help = await cli(['help'], {})
  t.equal(help.code, 0)
  t.match(help.stdout, /^usage: logout-relay <command>/)
  const unknown = await cli(['frobnicate'], {})
  t.equal(unknown.code, 64)
  t.match(unknown.stderr, 'unknown command "frobnicate"')
  const none = await cli([], {})
  t.equal(none.code, 64)
  t.match(none.stderr, /^usage: /)
  const option = await cli(['doctor', '--relay', 'x'], env)
  t.equal(option.code, 64)
  t.match(option.stderr, /--relay/)
  const url = await cli(['doctor', '--relay-url', 'not a url'], env)
  t.equal(url.code, 64)
})

t.test('serve runs the relay', async (t) => {
  const relay = await startRelayProcess({ env: { ...env, LOG_LEVEL: 'info' }, args: ['--import', 'tsx', 'src/cli.ts', 'serve'] })
  t.teardown(() => relay.signal('SIGKILL'))
  t.equal((await fetch(`${relay.url}/health/ready`)).status, 200)
  const sessions = await fetch(`${relay.url}/admin/identities/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/sessions`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  t.equal(sessions.status, 200)
  relay.signal('SIGTERM')
  t.equal(await relay.exited, 0)
  t.notMatch(relay.output.join('\n'), ADMIN_KEY)
})

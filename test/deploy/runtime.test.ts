import { execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { HydraDouble } from '../doubles/hydra.js'
import { KratosDouble } from '../doubles/kratos.js'
import { HOOK_KEY, checkContracts } from '../helper.js'
import { execForm, parseDockerfile, readText, repoPath, stageEnv } from '../helpers/deploy.js'
import { freePort, startRedis } from '../helpers/redis.js'
import { startRelayProcess } from '../helpers/relay-process.js'

// The image's runtime stage without Docker: the directory scripts/assemble-runtime.sh builds (the
// script the Dockerfile runs), started with the Dockerfile's own CMD, ENV and HEALTHCHECK.
const runtime = parseDockerfile(readText('Dockerfile')).stages.at(-1)
if (runtime === undefined) throw new Error('the Dockerfile has no stage')
const instruction = (keyword: string): string => runtime.instructions.find((i) => i.keyword === keyword)?.value ?? ''
const cmd = execForm(instruction('CMD'))
const healthcheck = execForm(instruction('HEALTHCHECK'))

const dir = mkdtempSync(join(tmpdir(), 'logout-relay-runtime-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
t.before(async () => {
  await promisify(execFile)('sh', [repoPath('scripts/assemble-runtime.sh'), dir], { cwd: tmpdir(), maxBuffer: 16 * 1024 * 1024 })
})

interface LockEntry { dev?: boolean, optional?: boolean }

/** Every package directory under node_modules, as the lockfile names them (`node_modules/a/node_modules/@s/b`). */
function installedPackages (base: string): string[] {
  const found: string[] = []
  const visit = (modules: string): void => {
    if (!existsSync(modules)) return
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue
      const names = entry.startsWith('@') ? readdirSync(join(modules, entry)).map((name) => join(entry, name)) : [entry]
      for (const name of names) {
        const path = join(modules, name)
        found.push(relative(base, path))
        visit(join(path, 'node_modules'))
      }
    }
  }
  visit(join(base, 'node_modules'))
  return found
}

t.test('the runtime holds the build output and the production dependencies, nothing else', async (t) => {
  t.same(readdirSync(dir).sort(), ['dist', 'node_modules', 'package-lock.json', 'package.json'])
  const dist = readdirSync(join(dir, 'dist'), { recursive: true }).map(String)
  for (const file of ['server.js', 'app.js', 'healthcheck.js']) t.ok(dist.includes(file), `dist/${file}`)
  t.same(dist.filter((file) => file.endsWith('.ts')), [], 'no TypeScript sources')
  t.same(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')), JSON.parse(readText('package.json')), 'the manifest, for "type": "module"')

  const lock = JSON.parse(readText('package-lock.json')) as { packages: Record<string, LockEntry> }
  const installed = installedPackages(dir)
  const production = Object.entries(lock.packages).filter(([path, entry]) => path !== '' && entry.dev !== true).map(([path]) => path)
  const development = Object.entries(lock.packages).filter(([, entry]) => entry.dev === true).map(([path]) => path)
  t.ok(development.length > 0 && production.length > 0)
  t.same(production.filter((path) => !installed.includes(path) && lock.packages[path]?.optional !== true), [], 'every production package is installed')
  t.same(installed.filter((path) => !production.includes(path)), [], 'nothing but production packages')
  for (const name of ['tap', 'typescript', 'tsx', 'eslint', 'testcontainers']) t.notOk(existsSync(join(dir, 'node_modules', name)), `no ${name}`)

  // Node looks for packages in every parent directory: none may lend the runtime one.
  for (let parent = dirname(dir); parent !== dirname(parent); parent = dirname(parent)) {
    t.notOk(existsSync(join(parent, 'node_modules')), `no node_modules in ${parent}`)
  }
  t.notOk(existsSync('/node_modules'))
})

/** Runs the image's HEALTHCHECK command in the runtime directory; resolves with its exit code. */
async function runHealthcheck (port: number): Promise<number | null> {
  const child = spawn(process.execPath, healthcheck.slice(1), { cwd: dir, env: { PATH: process.env['PATH'] ?? '', PORT: String(port) }, stdio: 'ignore' })
  return await new Promise((resolve) => child.on('exit', (code) => resolve(code)))
}

t.test('started as the image starts it: alive, healthy, and one real logout end to end', async (t) => {
  const redis = await startRedis()
  const hydra = await HydraDouble.start()
  const kratos = await new KratosDouble().listen()
  t.teardown(async () => { await hydra.close(); await kratos.close(); await redis.close() })
  checkContracts(t, hydra, kratos)

  t.equal(cmd[0], 'node', 'the image runs node; the test runs this machine\'s')
  t.equal(healthcheck[0], 'node', 'and so does its HEALTHCHECK')
  const relay = await startRelayProcess({
    args: cmd.slice(1),
    cwd: dir,
    env: {
      ...stageEnv(runtime),
      // The image listens on every interface of its container, on 8080; here, loopback only, on a free
      // port (this machine's 8080 may be taken).
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      OIDC_ISSUER: hydra.issuer,
      OIDC_JWKS_URL: hydra.jwksUrl,
      KRATOS_ADMIN_URL: kratos.url,
      HYDRA_ADMIN_URL: hydra.url,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: redis.prefix,
      LOGIN_HOOK_API_KEYS: HOOK_KEY
    }
  })
  t.teardown(() => relay.signal('SIGKILL'))

  const alive = await fetch(`${relay.url}/health/alive`)
  t.equal(alive.status, 200)
  t.same(await alive.json(), { status: 'ok' })
  t.equal((await fetch(`${relay.url}/health/ready`)).status, 200, 'ready: Redis answers')

  t.equal(await runHealthcheck(Number(new URL(relay.url).port)), 0, 'the HEALTHCHECK passes')
  t.equal(await runHealthcheck(await freePort()), 1, 'and fails where nothing serves')

  // A login through Hydra, reported by the Kratos hook; then Hydra's logout token for that session.
  const identityId = randomUUID()
  const sid = randomUUID()
  kratos.addSessions(identityId, 3)
  const login = hydra.addLoginRequest({ sessionId: sid, subject: identityId })
  const hook = await fetch(`${relay.url}/hooks/login`, {
    method: 'POST',
    headers: { authorization: `Bearer ${HOOK_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ identity_id: identityId, login_challenge: login.challenge })
  })
  t.equal(hook.status, 204, 'the login is indexed')
  t.equal(hydra.callsOf('getOAuth2LoginRequest').length, 1, 'the sid came from Hydra')

  const logout = await fetch(`${relay.url}/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ logout_token: await hydra.logoutToken(sid) })
  })
  t.equal(logout.status, 200, await logout.text())
  t.ok(hydra.callsOf('discoverJsonWebKeys').length > 0, 'the signature was checked against Hydra\'s keys')
  await kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(kratos.revokedIdentities(), [identityId])
  t.equal(kratos.activeSessions(identityId), 0, 'every Kratos session of the identity is gone')

  relay.signal('SIGTERM')
  t.equal(await relay.exited, 0, 'SIGTERM: a clean exit')
  t.ok(relay.output.every((line) => { try { JSON.parse(line); return true } catch { return false } }), 'every log line is JSON')
  t.notMatch(relay.output.join('\n'), HOOK_KEY, 'the key is never logged')
})

import { spawn, spawnSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import t from 'tap'
import { HydraDouble } from '../doubles/hydra.js'
import { KratosDouble } from '../doubles/kratos.js'
import { checkContracts } from '../helper.js'
import { freePort, spawnRedis } from '../helpers/redis.js'

// `logout-relay index backfill` as a process, the way an operator runs it, against the Ory doubles
// and a real Redis: its exit statuses, its progress on stderr and its summary on stdout.
const root = fileURLToPath(new URL('../..', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string, ms: number }

/** `node --import tsx src/cli.ts …args` with only this environment; `during` may signal the process once it has written to stderr. */
async function cli (args: string[], env: Record<string, string>, during?: (child: ReturnType<typeof spawn>, stderr: () => string) => void): Promise<Run> {
  const started = Date.now()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8')
    during?.(child, () => stderr)
  })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr, ms: Date.now() - started }
}

const redis = await spawnRedis({ appendOnly: true })
const hydra = await HydraDouble.start()
const kratos = await new KratosDouble().listen()
const client = new Redis(redis.url)
t.teardown(async () => { client.disconnect(); await hydra.close(); await kratos.close(); await redis.close() })
checkContracts(t, hydra, kratos)

/** The environment of a relay whose index lives under a prefix of its own. */
function envFor (prefix = `bf-${randomUUID().slice(0, 8)}:`): Record<string, string> {
  return {
    OIDC_ISSUER: hydra.issuer,
    HYDRA_ADMIN_URL: hydra.url,
    KRATOS_ADMIN_URL: kratos.url,
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: prefix,
    LOGIN_HOOK_API_KEYS: 'c0d9f41e7a3b28e65f1a9d4c7b20e83f'
  }
}

/** `count` more identities, each logged in once through two clients. */
function users (count: number): string[] {
  const ids = kratos.addIdentities(count)
  for (const id of ids) {
    const sid = randomUUID()
    hydra.addConsent({ subject: id, sid, clientId: 'app-a' })
    hydra.addConsent({ subject: id, sid, clientId: 'app-b' })
  }
  return ids
}

function jsonLines (text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>)
}

t.test('usage and configuration: 64 for a wrong command line, 78 for a configuration it cannot run with', async (t) => {
  const help = await cli(['index', 'backfill', '--help'], {})
  t.equal(help.code, 0)
  t.match(help.stdout, /^usage: logout-relay index backfill \[--rate N\]/)
  for (const args of [['index'], ['index', 'fill'], ['index', 'backfill', '--rate', '0'], ['index', 'backfill', '--rate', 'fast'], ['index', 'backfill', '--progress', 'fancy'], ['index', 'backfill', '--frobnicate']]) {
    const run = await cli(args, envFor())
    t.equal(run.code, 64, args.join(' '))
    t.match(run.stderr, /usage: logout-relay index backfill/)
  }
  const invalid = await cli(['index', 'backfill'], { ...envFor(), PORT: 'eighty' })
  t.equal(invalid.code, 78)
  t.match(invalid.stderr, /PORT: must be a whole number/)
  const { REDIS_URL: _unused, ...memory } = envFor()
  const noRedis = await cli(['index', 'backfill'], memory)
  t.equal(noRedis.code, 78)
  t.match(noRedis.stderr, /REDIS_URL \(or REDIS_CLUSTER_NODES\) is not set/)
  t.equal(hydra.callsOf('listOAuth2ConsentSessions').length, 0, 'nothing read')
})

t.test('a wrong admin URL stops it at once, with the fix (78); Redis down (1)', async (t) => {
  kratos.expectStrays()
  const prefixed = await cli(['index', 'backfill'], { ...envFor(), KRATOS_ADMIN_URL: `${kratos.url}/admin` })
  t.equal(prefixed.code, 78)
  t.match(prefixed.stderr, /KRATOS_ADMIN_URL is not Kratos' admin API: GET \/admin\/identities answered 404.* — fix: remove the path "\/admin" from KRATOS_ADMIN_URL/)
  const publicHydra = await HydraDouble.start({ publicPort: {} })
  t.teardown(() => publicHydra.close())
  const onPublic = await cli(['index', 'backfill'], { ...envFor(), HYDRA_ADMIN_URL: publicHydra.url })
  t.equal(onPublic.code, 78)
  t.match(onPublic.stderr, /HYDRA_ADMIN_URL is not Hydra's admin API: .* — fix: set HYDRA_ADMIN_URL to Hydra's admin API's port/)

  const port = await freePort()
  const down = await cli(['index', 'backfill'], { ...envFor(), REDIS_URL: `redis://:secret-pw@127.0.0.1:${port}` })
  t.equal(down.code, 1)
  t.match(down.stderr, `Redis (redis://:***@127.0.0.1:${port}) does not answer (`)
  t.match(down.stderr, /ECONNREFUSED/)
  t.match(down.stderr, 'nothing was read or written')
  t.notMatch(down.stderr, 'secret-pw')
})

t.test('not on a terminal: JSON progress lines on stderr, the summary as a table on stdout, exit 0', async (t) => {
  users(5)
  const env = envFor()
  const run = await cli(['index', 'backfill', '--rate', '1000'], env)
  t.equal(run.code, 0, run.stderr)
  const lines = jsonLines(run.stderr)
  t.match(lines[0], { event: 'start', dry_run: false, identities_total: kratos.identities.size, resumed_from: null })
  t.match(lines.at(-1), { event: 'progress', identities_done: kratos.identities.size, identities_total: kratos.identities.size, sids_indexed: Number, errors: 0 })
  t.match(run.stdout, /^logout-relay index backfill: done after \d+s\n/)
  t.match(run.stdout, /\n {2}identities read +\d+\n/)
  t.match(run.stdout, /\n {2}sids indexed +\d+\n/)
  t.match(run.stdout, 'Every identity is done; the cursor is deleted')
  t.equal(await client.exists(`${env['REDIS_KEY_PREFIX'] ?? ''}backfill:{cursor}`), 0)

  const again = await cli(['index', 'backfill', '--rate', '1000', '--json'], env)
  t.equal(again.code, 0)
  const summary = JSON.parse(again.stdout) as Record<string, Record<string, unknown>>
  t.match(summary, { outcome: 'done', exit_status: 0, dry_run: false, this_run: { sids_indexed: 0, errors: 0 }, cursor: { state: 'cleared' }, failures: [], stop: null })
  t.equal(summary['this_run']?.['already_known'], summary['this_run']?.['identities'], 'a second run finds every sid known')
})

t.test('on a terminal (--progress bar): a bar redrawn in place, with the percentage of Kratos\' count', async (t) => {
  users(3)
  const run = await cli(['index', 'backfill', '--rate', '1000', '--progress', 'bar'], envFor())
  t.equal(run.code, 0, run.stderr)
  t.match(run.stderr, '\r\x1b[2Kbackfill [')
  t.match(run.stderr, `100% ${kratos.identities.size}/${kratos.identities.size} identities · `)
  t.match(run.stderr, /indexed, \d+ known, 0 conflicts, 0 errors\n$/)
  t.notMatch(run.stderr, /^\{/m, 'no JSON lines')
  const quiet = await cli(['index', 'backfill', '--rate', '1000', '--progress', 'none', '--json'], envFor())
  t.equal(quiet.stderr, '')
})

t.test('on a real terminal (a pty, by util-linux script), the bar is the default', { skip: spawnSync('script', ['--version']).status !== 0 ? 'no script(1) to run it on a pty' : false }, async (t) => {
  users(1)
  const env = Object.entries({ ...envFor(), PATH: process.env['PATH'] ?? '' }).map(([name, value]) => `${name}=${value}`)
  const command = ['env', '-i', ...env, process.execPath, '--import', 'tsx', 'src/cli.ts', 'index', 'backfill', '--rate', '1000'].map((word) => `'${word}'`).join(' ')
  // Not spawnSync: the doubles answer from this process's event loop.
  const child = spawn('script', ['-qefc', command, '/dev/null'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve))
  const run = { status, stdout }
  t.equal(run.status, 0, run.stdout)
  t.match(run.stdout, '\x1b[2Kbackfill [', 'the bar, redrawn in place')
  t.notMatch(run.stdout, '"event":"progress"', 'no JSON lines')
  t.match(run.stdout, 'logout-relay index backfill: done after')
})

t.test('--dry-run reads everything and writes nothing', async (t) => {
  users(2)
  const env = envFor()
  const run = await cli(['index', 'backfill', '--rate', '1000', '--dry-run', '--json'], env)
  t.equal(run.code, 0, run.stderr)
  const summary = JSON.parse(run.stdout) as { this_run: { identities: number, sids_indexed: number }, cursor: { state: string } }
  t.equal(summary.this_run.identities, kratos.identities.size)
  t.ok(summary.this_run.sids_indexed >= 2, 'what it would index')
  t.equal(summary.cursor.state, 'untouched')
  t.same(await client.keys(`${env['REDIS_KEY_PREFIX'] ?? ''}*`), [], 'not one key')
})

t.test('--rate bounds the pace', async (t) => {
  users(1)
  const run = await cli(['index', 'backfill', '--rate', '10', '--json', '--progress', 'none'], envFor())
  t.equal(run.code, 0)
  const identities = kratos.identities.size
  const summary = JSON.parse(run.stdout) as { elapsed_seconds: number }
  t.ok(summary.elapsed_seconds >= (identities - 1) / 10 - 0.05, `${identities} identities at 10/s took ${summary.elapsed_seconds} s`)
})

t.test('Hydra failing for an identity: exit 1 with the identity listed; the next run tries it again, exit 0', async (t) => {
  users(2)
  const env = envFor()
  // Every attempt at the first identity's consent sessions fails (four, with the backoff between).
  hydra.fail('listOAuth2ConsentSessions', { status: 500, times: 4 })
  const run = await cli(['index', 'backfill', '--rate', '1000'], env)
  t.equal(run.code, 1, run.stdout)
  const first = [...kratos.identities].sort()[0] as string
  t.match(run.stdout, `identities whose consent sessions could not be read:\n  ${first}: hydra GET /admin/oauth2/auth/sessions/consent: HTTP 500`)
  t.match(run.stdout, /The cursor is kept \(bf-[0-9a-f]{8}:backfill:\{cursor\}, for 7 days\): run the command again to continue where this run stopped, trying the 1 that failed first/)
  t.match(jsonLines(run.stderr).filter((line) => line['event'] === 'retry').length, 3)

  const retried = await cli(['index', 'backfill', '--rate', '1000', '--json'], env)
  t.equal(retried.code, 0, retried.stdout)
  t.match(JSON.parse(retried.stdout), { outcome: 'done', this_run: { identities: 1 }, resumed_from: { failed: 1 }, cursor: { state: 'cleared' } })
})

t.test('Ctrl-C stops after the identity in progress, exit 130; the next run resumes there', async (t) => {
  users(8)
  const env = envFor()
  let signalled = false
  const run = await cli(['index', 'backfill', '--rate', '10', '--progress', 'lines'], env, (child, stderr) => {
    if (!signalled && jsonLines(stderr()).some((line) => line['event'] === 'start')) {
      signalled = true
      setTimeout(() => child.kill('SIGINT'), 250)
    }
  })
  t.equal(run.code, 130, run.stderr)
  t.match(run.stdout, /: interrupted after /)
  t.match(run.stdout, 'The cursor is kept')
  const cursor = JSON.parse(await client.get(`${env['REDIS_KEY_PREFIX'] ?? ''}backfill:{cursor}`) ?? '{}') as { totals?: { identities: number } }
  const doneBefore = cursor.totals?.identities ?? 0
  t.ok(doneBefore > 0 && doneBefore < kratos.identities.size, `${doneBefore} done before the interruption`)

  const resumed = await cli(['index', 'backfill', '--rate', '1000', '--json'], env)
  t.equal(resumed.code, 0)
  t.match(JSON.parse(resumed.stdout), { resumed_from: { identities: doneBefore }, this_run: { identities: kratos.identities.size - doneBefore }, since_start: { identities: kratos.identities.size } })
})

t.test('a second run while one holds the cursor exits 1', async (t) => {
  const env = envFor()
  await client.set(`${env['REDIS_KEY_PREFIX'] ?? ''}backfill:{cursor}:lock`, 'another-run', 'PX', 30_000)
  const run = await cli(['index', 'backfill'], env)
  t.equal(run.code, 1)
  t.match(run.stderr, /another backfill is running \(it holds bf-[0-9a-f]{8}:backfill:\{cursor\}:lock, which expires 30 s after that run stops\)/)
})

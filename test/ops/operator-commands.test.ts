import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { build, eventually, type Harness, type TestContext } from '../helper.js'
import { freePort, spawnRedis } from '../helpers/redis.js'

/** `logout-relay dead-letters …` and `logout-relay audit …`, run as processes against a real Redis and a relay beside them. */

const root = fileURLToPath(new URL('../..', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

/** `node --import tsx src/cli.ts …args` with only this environment (and PATH); stdout is a pipe, not a terminal. */
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

const jsonLines = <T = Record<string, unknown>>(run: Run): T[] => run.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as T)

const redis = await spawnRedis()
t.teardown(() => redis.close())

/** The relay (in this process) and the environment the commands share with it. */
async function setup (t: TestContext): Promise<{ relay: Harness, env: Record<string, string> }> {
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `${redis.prefix}${randomUUID().slice(0, 8)}:`, DEAD_LETTER_MAX_AGE: '86400' }
  const relay = await build(t, { redis, env: { ...env, REVOCATION_MAX_ATTEMPTS: '1' } })
  return { relay, env }
}

/** Logs `count` identities out while Kratos fails: `count` dead letters. */
async function bury (relay: Harness, count: number): Promise<Array<{ identityId: string, sid: string }>> {
  relay.kratos.fail('deleteIdentitySessions', { status: 503 })
  const logins = []
  for (let i = 0; i < count; i++) {
    const login = await relay.login()
    if ((await relay.logout(await relay.hydra.logoutToken(login.sid, { clientId: 'app-a' }))).statusCode !== 200) throw new Error('logout refused')
    logins.push(login)
  }
  const buried = await eventually(async () => (await relay.app.inject('/metrics')).body.includes(`logout_relay_dead_letters ${count}\n`), 10_000)
  if (!buried) throw new Error('not buried')
  return logins
}

t.test('Kratos failing, then `dead-letters retry <id>`: revoked at last, and the audit trail says it was an operator\'s retry', async (t) => {
  const { relay, env } = await setup(t)
  const [{ identityId, sid }] = await bury(relay, 1) as [{ identityId: string, sid: string }]

  const listed = await cli(['dead-letters', 'list'], env)
  t.equal(listed.code, 0, listed.stderr)
  const [letter, ...others] = jsonLines<{ id: string }>(listed)
  t.same(others, [], 'JSON lines when stdout is no terminal')
  t.match(letter, {
    kind: 'kratos-sessions',
    identity_id: identityId,
    sid,
    cause: { kind: 'backchannel-logout', client_id: 'app-a' },
    attempts: 1,
    last_error: 'kratos DELETE /admin/identities/{id}/sessions: HTTP 503',
    last_status: 503,
    expires_by: 'age'
  })

  relay.kratos.heal('deleteIdentitySessions')
  const retried = await cli(['dead-letters', 'retry', letter!.id], env)
  t.equal(retried.code, 0, retried.stderr)
  t.match(jsonLines(retried), [{ id: letter!.id, status: 'queued', kind: 'kratos-sessions', identity_id: identityId, sid }])
  t.ok(await eventually(() => relay.kratos.activeSessions(identityId) === 0), 'the relay\'s worker revoked it')

  const audit = await cli(['audit', '--identity', identityId], env)
  t.equal(audit.code, 0, audit.stderr)
  const records = jsonLines<{ outcome: string, cause: { kind: string, via?: string, original?: { kind: string } } }>(audit)
  t.same(records.map((record) => [record.outcome, record.cause.kind, record.cause.via, record.cause.original?.kind]),
    [['succeeded', 'operator-retry', 'cli', 'backchannel-logout'], ['dead_lettered', 'backchannel-logout', undefined, undefined]], 'newest first')

  const table = await cli(['audit', '--identity', identityId, '--table'], env)
  t.equal(table.code, 0)
  const [header, newest] = table.stdout.split('\n')
  t.match(header, /^FINISHED +OUTCOME +KIND +IDENTITY +SID +ATTEMPTS +FAILED ATTEMPTS +CAUSE$/)
  t.match(newest, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ +succeeded +kratos-sessions +${identityId} +${sid} +1 +- +operator retry \\(cli\\) of back-channel logout \\(client app-a\\)$`))
  t.match(table.stdout, /\n2 revocations, newest first\n$/)

  t.match((await relay.app.inject('/metrics')).body, /logout_relay_operator_retried_revocations_total\{via="cli",outcome="succeeded"\} 1/,
    'the relay counts the outcome of a retry from the command line')
})

t.test('an unknown id: exit 1 and a clear message; nothing changes', async (t) => {
  const { relay, env } = await setup(t)
  await bury(relay, 1)
  const id = randomUUID()
  for (const action of ['retry', 'drop']) {
    const run = await cli(['dead-letters', action, id], env)
    t.equal(run.code, 1, action)
    t.equal(run.stdout, '')
    t.equal(run.stderr, `logout-relay dead-letters: no dead letter has the id ${id} (retried or dropped already, removed by its retention, or never one)\n`)
  }
  t.equal(jsonLines(await cli(['dead-letters', 'list'], env)).length, 1)
})

t.test('`retry --all` sends every dead letter back; `drop --all` refuses without --yes (64), and with it removes them all', async (t) => {
  const { relay, env } = await setup(t)
  const logins = await bury(relay, 3)

  const table = await cli(['dead-letters', 'list', '--table'], env)
  t.equal(table.code, 0)
  const lines = table.stdout.split('\n')
  t.match(lines[0], /^ID +KIND +IDENTITY +SID +ATTEMPTS +STATUS +LAST ERROR +CREATED +BURIED +REMOVED BY RETENTION +CAUSE$/)
  t.equal(lines.filter((line) => /^[0-9a-f-]{36} +kratos-sessions /.test(line)).length, 3, 'a row each')
  t.ok(logins.every(({ identityId }) => table.stdout.includes(identityId)))
  t.match(table.stdout, /\n3 dead letters, oldest first\n$/)
  t.equal(jsonLines(await cli(['dead-letters', 'list', '--limit', '2'], env)).length, 2, '--limit')

  // Kratos still fails: the retried jobs are tried once more and buried again.
  const retried = await cli(['dead-letters', 'retry', '--all', '--table'], env)
  t.equal(retried.code, 0, retried.stderr)
  t.match(retried.stdout, /^retried [0-9a-f-]{36} \(kratos-sessions, identity [0-9a-f-]{36}, sid [0-9a-f-]{36}\): queued again, as an operator's retry$/m)
  t.match(retried.stdout, /\nretried 3 dead letters\n$/)
  t.ok(await eventually(async () => jsonLines<{ cause: { kind: string } }>(await cli(['dead-letters', 'list'], env)).filter((letter) => letter.cause.kind === 'operator-retry').length === 3, 20_000),
    'buried again, as an operator\'s retry')

  const refused = await cli(['dead-letters', 'drop', '--all'], env)
  t.equal(refused.code, 64)
  t.match(refused.stderr, /drop --all removes every dead letter for good, and their revocations never happen: add --yes to mean it/)
  t.equal(jsonLines(await cli(['dead-letters', 'list'], env)).length, 3, 'nothing dropped')

  const dropped = await cli(['dead-letters', 'drop', '--all', '--yes'], env)
  t.equal(dropped.code, 0, dropped.stderr)
  t.same(jsonLines<{ status: string }>(dropped).map((entry) => entry.status), ['dropped', 'dropped', 'dropped'])
  t.equal((await cli(['dead-letters', 'list'], env)).stdout, '', 'none left')
  t.equal((await cli(['dead-letters', 'list', '--table'], env)).stdout, 'No dead letters.\n')
})

t.test('`audit --since` lists every identity\'s recent revocations', async (t) => {
  const { relay, env } = await setup(t)
  const logins = [await relay.login(), await relay.login()]
  for (const { sid } of logins) t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  t.ok(await eventually(() => logins.every(({ identityId }) => relay.kratos.activeSessions(identityId) === 0)))
  await eventually(async () => jsonLines(await cli(['audit', '--since', '1h'], env)).length === 2)
  for (const since of ['30m', '1h', '2d']) {
    const run = await cli(['audit', '--since', since], env)
    t.equal(run.code, 0)
    t.same(jsonLines<{ identity_id: string }>(run).map((record) => record.identity_id).sort(), logins.map((login) => login.identityId).sort(), since)
  }
  t.equal(jsonLines(await cli(['audit', '--since', '1h', '--limit', '1'], env)).length, 1)
  t.equal((await cli(['audit', '--since', '1h', '--table'], env)).stdout.split('\n').filter((line) => / succeeded +kratos-sessions /.test(line)).length, 2)
})

t.test('a wrong command line is a 64 with the usage; an invalid configuration a 78; Redis unreachable or not set, a 1', async (t) => {
  const env = { REDIS_URL: redis.url }
  const usage: Array<[string[], RegExp]> = [
    [['dead-letters'], /dead-letters needs list, retry or drop/],
    [['dead-letters', 'purge'], /unknown dead-letters command "purge"/],
    [['dead-letters', 'retry'], /retry takes a dead letter's id, or --all/],
    [['dead-letters', 'retry', randomUUID(), '--all'], /retry takes a dead letter's id, or --all/],
    [['dead-letters', 'list', '--json', '--table'], /give --json or --table, not both/],
    [['dead-letters', 'list', '--limit', '0'], /--limit must be a whole number/],
    [['dead-letters', 'list', '--frobnicate'], /frobnicate/],
    [['audit'], /audit needs --identity, --since, or both/],
    [['audit', '--since', '5x'], /--since must be a duration such as 30m, 1h or 2d, got "5x"/],
    [['audit', '--identity', 'alice'], /--identity must be a Kratos identity id/]
  ]
  for (const [args, message] of usage) {
    const run = await cli(args, env)
    t.equal(run.code, 64, args.join(' '))
    t.match(run.stderr, message, args.join(' '))
    t.match(run.stderr, /usage: logout-relay <command>/)
  }
  const invalid = await cli(['dead-letters', 'list'], { ...env, AUDIT_MAX_ENTRIES: 'many' })
  t.equal(invalid.code, 78)
  t.match(invalid.stderr, /AUDIT_MAX_ENTRIES: must be a whole number/)

  const nowhere = { REDIS_URL: `redis://127.0.0.1:${await freePort()}`, REDIS_COMMAND_TIMEOUT: '300' }
  for (const args of [['dead-letters', 'list'], ['dead-letters', 'retry', randomUUID()], ['dead-letters', 'drop', '--all', '--yes'], ['audit', '--since', '1h']]) {
    const run = await cli(args, nowhere)
    t.equal(run.code, 1, args.join(' '))
    t.equal(run.stderr, `logout-relay ${args[0] ?? ''}: cannot reach Redis at ${nowhere.REDIS_URL}\n`)
  }
  const memory = await cli(['dead-letters', 'list'], {})
  t.equal(memory.code, 1)
  t.match(memory.stderr, /REDIS_URL \(or REDIS_CLUSTER_NODES\) is not set/)
})

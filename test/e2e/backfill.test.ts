import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { requireOryBinaries, root } from './helpers/binaries.js'
import { authorize, rpInitiatedLogout } from './helpers/oauth2.js'
import { CaptureServer } from './helpers/recording.js'
import { startStack } from './helpers/stack.js'

// Logins made before the relay was installed: Kratos' login hook goes to a listener that answers as
// the relay would, so the relay's index never hears of them, until `logout-relay index backfill`
// finds them through Kratos' identities and Hydra's consent sessions. Real Hydra v2.3.0 and Kratos
// v1.3.1, the relay and the command as processes.
t.setTimeout(600_000)

/** `logout-relay index backfill …args` with the relay's environment; its exit status, stdout and stderr. */
async function backfill (env: Record<string, string>, args: string[] = []): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli.ts'), 'index', 'backfill', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8') })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8') })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`backfill did not finish:\n${stdout}\n${stderr}`)) }, 120_000)
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

const binaries = requireOryBinaries(t)
if (binaries !== undefined) {
  // Kratos' login hook is answered, but not by the relay: logins before its installation.
  const hooks = await CaptureServer.start(() => 204)
  t.teardown(async () => { await hooks.close() })
  const stack = await startStack(t, binaries, { hookOrigin: hooks.origin })
  const { ory, relay, indexedSids, noActiveSession, logoutsAnswered, logoutsSoFar } = stack

  t.test('a login the relay never indexed is found by the backfill, and its logout then ends every Kratos session', async (t) => {
    const identity = await stack.identity()
    const [first, second] = [await stack.client(), await stack.client()]
    const browser = stack.browser()
    // Consent accepted with remember: true, as the test's consent UI does; a second client of the same
    // login session asks its own consent.
    const login = await authorize(browser, ory, first, { kind: 'password', identifier: identity.email, password: identity.password })
    const other = await authorize(browser, ory, second, { kind: 'kratos-session' })
    t.equal(other.idToken.sid, login.idToken.sid, 'one login session, two clients')
    t.ok(hooks.requests.some((request) => request.path === '/hooks/login'), 'Kratos called its login hook, elsewhere')
    t.same(await indexedSids(identity.id), [], 'the relay does not know the sid')

    const run = await backfill(relay.env, ['--json', '--rate', '50'])
    t.equal(run.code, 0, run.stdout + run.stderr)
    const summary = JSON.parse(run.stdout) as { outcome: string, this_run: Record<string, number>, cursor: { state: string } }
    t.equal(summary.outcome, 'done')
    t.ok(summary.this_run['sids_indexed'] !== undefined && summary.this_run['sids_indexed'] >= 1)
    t.equal(summary.this_run['errors'], 0)
    t.equal(summary.cursor.state, 'cleared')
    t.same(await indexedSids(identity.id), [login.idToken.sid], 'the relay\'s index holds the ID token\'s sid')

    await ory.apiLogin(identity.email, identity.password)
    t.equal((await ory.sessions(identity.id, { active: true })).length, 2, 'the browser\'s session and an API login')
    const before = logoutsSoFar()
    await rpInitiatedLogout(browser, ory, login.tokens.id_token)
    const answered = await logoutsAnswered(before, 2)
    t.match(answered.map((line) => line['outcome']).sort(), ['duplicate', 'queued'])
    await noActiveSession(identity.id, 'after the logout of the backfilled login session')
  })

  t.test('a login session whose every consent Hydra skipped (a remembered consent) is not found', async (t) => {
    const identity = await stack.identity()
    const client = await stack.client()
    const asked = await authorize(stack.browser(), ory, client, { kind: 'password', identifier: identity.email, password: identity.password })
    // Another browser: a new login session; the same client and scopes, so Hydra skips the consent.
    const skipped = await authorize(stack.browser(), ory, client, { kind: 'password', identifier: identity.email, password: identity.password })
    t.not(skipped.idToken.sid, asked.idToken.sid, 'two login sessions')
    const consents = await ory.consentSessions(identity.id) as Array<{ consent_request: { login_session_id: string, skip: boolean } }>
    t.same(consents.map((consent) => consent.consent_request.login_session_id), [asked.idToken.sid], 'Hydra lists the consent it asked for, not the one it skipped')

    const run = await backfill(relay.env, ['--json', '--rate', '50'])
    t.equal(run.code, 0, run.stdout + run.stderr)
    t.same(await indexedSids(identity.id), [asked.idToken.sid], 'the skipped login session stays unknown to the index')
  })

  t.test('a second run indexes nothing new: the live login session is known, the ended one is gone from Hydra\'s consents', async (t) => {
    const run = await backfill(relay.env, ['--json', '--rate', '50'])
    t.equal(run.code, 0)
    const summary = JSON.parse(run.stdout) as { this_run: Record<string, number> }
    t.equal(summary.this_run['sids_indexed'], 0)
    t.equal(summary.this_run['already_known'], 1, 'the second test\'s; the first one\'s logout ended its login session, and Hydra lists its consents without one')
    t.equal(summary.this_run['consent_sessions'], 3, 'the consents are still listed')
  })
}

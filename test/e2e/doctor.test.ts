import { spawn } from 'node:child_process'
import t from 'tap'
import { join } from 'node:path'
import { requireOryBinaries, root } from './helpers/binaries.js'
import { randomHex } from './helpers/ory.js'
import { waitFor } from './helpers/process.js'
import { metricValue, RelayProcess, runDoctor } from './helpers/relay.js'
import { freePorts, startStack } from './helpers/stack.js'

// `logout-relay doctor` against the real pair, and the relay's revocations against a Kratos address
// that is not Kratos' admin API: each must be told apart from the real thing.
t.setTimeout(600_000)

/** The line of a check in the doctor's output (`✔ name: …` or `✖ name: …`), or undefined. */
function checkLine (output: string, name: string): string | undefined {
  return output.split('\n').find((line) => line.startsWith(`✔ ${name}:`) || line.startsWith(`✖ ${name}:`))
}

const binaries = requireOryBinaries(t)
if (binaries !== undefined) {
  const stack = await startStack(t, binaries)
  const { ory, relay } = stack
  const { kratosPublic, kratosAdmin, hydraPublic } = ory.addresses

  t.test('9. doctor passes against the real pair, with a Redis with AOF and random keys', async (t) => {
    t.match(relay.env['LOGIN_HOOK_API_KEYS'], /^[0-9a-f]{64}$/, 'the hook key is random hex')
    t.match(relay.env['ADMIN_API_KEYS'], /^[0-9a-f]{64}$/, 'the admin key is random hex')
    const { code, output } = await runDoctor(relay.env)
    for (const name of ['configuration', 'redis', 'redis persistence', 'redis eviction', 'issuer', 'issuer keys', 'kratos admin', 'hydra admin', 'hydra clients', 'login hook keys', 'admin keys']) {
      t.match(checkLine(output, name), /^✔ /, `${name} passes`)
    }
    t.match(checkLine(output, 'redis persistence'), /AOF is on/)
    t.equal(code, 0, 'exit 0', { output })
  })

  const misaddressed: Array<[string, string, string]> = [
    ['KRATOS_ADMIN_URL', kratosPublic, 'Kratos\' public port'],
    ['KRATOS_ADMIN_URL', `${kratosAdmin}/admin`, 'Kratos\' admin port with the path prefix /admin'],
    ['HYDRA_ADMIN_URL', hydraPublic, 'Hydra\'s public port']
  ]
  for (const [variable, url, what] of misaddressed) {
    const check = variable === 'KRATOS_ADMIN_URL' ? 'kratos admin' : 'hydra admin'
    t.test(`9. doctor fails, naming ${check}, with ${variable} at ${what}`, async (t) => {
      const { code, output } = await runDoctor(relay.env, { [variable]: url })
      t.not(code, 0, 'a non-zero exit', { output })
      t.match(checkLine(output, check), /^✖ /, `the ${check} check fails`)
    })
  }

  // A relay whose KRATOS_ADMIN_URL is not Kratos' admin API must not count a revocation as done: each
  // address answers the DELETE in its own way (recorded in test/fixtures/ory-recorded), and none of
  // those answers is Kratos' own 404 "no session".
  const wrongKratos: Array<[string, string]> = [
    [`${kratosAdmin}/admin`, 'Kratos\' admin port with the path prefix /admin (404 from the router, text/plain)'],
    [kratosPublic, 'Kratos\' public port (403, CSRF)']
  ]
  for (const [url, what] of wrongKratos) {
    t.test(`a revocation through ${what} is not counted as succeeded, and the sessions stay`, async (t) => {
      const [port] = await freePorts(1)
      const env = { ...relay.env, PORT: String(port), KRATOS_ADMIN_URL: url, REDIS_KEY_PREFIX: `misaddressed-${randomHex(4)}:` }
      const other = await RelayProcess.start(env, join(stack.dir, `relay-${String(port)}.log`))
      t.teardown(async () => { await other.stop() })
      const identity = await stack.identity()
      await ory.apiLogin(identity.email, identity.password)

      const answer = await other.admin('POST', `/admin/identities/${identity.id}/logout`)
      t.equal(answer.status, 202, 'the global logout is recorded')
      // The worker runs the job at once: it either counts it done, or fails it and retries.
      const samples = await waitFor(async () => {
        const now = await other.metrics()
        return metricValue(now, 'logout_relay_revocations_total', { kind: 'kratos-sessions' }) > 0 ? now : undefined
      }, { ...stack.wait, processes: [ory.kratos, other.process], what: 'the relay to attempt the Kratos revocation' })
      t.equal((await ory.sessions(identity.id, { active: true })).length, 1, 'Kratos still has the session')
      t.equal(metricValue(samples, 'logout_relay_revocations_total', { outcome: 'succeeded', kind: 'kratos-sessions' }), 0,
        'the revocation is not counted as succeeded', { relayLog: other.logs().filter((line) => String(line.msg).includes('revocation')) })
    })
  }

  t.test('doctor lists the clients whose back-channel logouts do not reach the relay; its JSON Patch fixes each at the real Hydra', async (t) => {
    const relayUrl = relay.url
    const [toRelay, none, elsewhere] = [
      await stack.client(),
      await stack.client({ backchannelLogoutUri: '' }),
      await stack.client({ backchannelLogoutUri: 'http://127.0.0.1:9/backchannel-logout' })
    ]
    const { code, output } = await doctorWith(relay.env, ['--relay-url', relayUrl])
    t.equal(code, 2, 'a warning: their logouts may be meant to go elsewhere', { output })
    t.match(checkLine(output, 'hydra clients'), /^✖ hydra clients: warning: 2 of 3 clients do not send their back-channel logouts to /)
    t.notMatch(output, `! ${toRelay.client_id}:`)
    const commands = output.split('\n').filter((line) => line.trim().startsWith('curl -X PATCH'))
    t.equal(commands.length, 2)
    t.match(output, `! ${none.client_id}: has no backchannel_logout_uri`)
    t.match(output, `! ${elsewhere.client_id}: sends its back-channel logouts to http://127.0.0.1:9/backchannel-logout`)
    for (const command of commands) {
      const match = /curl -X PATCH '([^']+)' -H 'Content-Type: application\/json' -d '([^']+)'$/.exec(command.trim())
      t.ok(match, command)
      const answer = await fetch(match?.[1] ?? '', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: match?.[2] ?? '' })
      t.equal(answer.status, 200, await answer.text())
    }
    const again = await doctorWith(relay.env, ['--relay-url', relayUrl])
    t.match(checkLine(again.output, 'hydra clients'), /^✔ hydra clients: 3 clients send back-channel logouts to /)
    t.equal(again.code, 0, 'every check passes', { output: again.output })
  })
}

/** `logout-relay doctor …args` with the relay's environment. */
async function doctorWith (env: Record<string, string>, args: string[]): Promise<{ code: number | null, output: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli.ts'), 'doctor', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, output }))
  })
}

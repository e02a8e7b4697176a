import t from 'tap'
import { join } from 'node:path'
import { requireOryBinaries } from './helpers/binaries.js'
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
    for (const name of ['configuration', 'redis', 'redis persistence', 'redis eviction', 'issuer', 'issuer keys', 'kratos admin', 'hydra admin', 'login hook keys', 'admin keys']) {
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
}

import t from 'tap'
import { requireOryBinaries } from './helpers/binaries.js'
import { authorize, rpInitiatedLogout } from './helpers/oauth2.js'
import { waitFor } from './helpers/process.js'
import { metricValue } from './helpers/relay.js'
import { startStack } from './helpers/stack.js'

// Kratos is down while a logout arrives: the relay answers Hydra 200 all the same, keeps the
// revocation in its queue, and makes it once Kratos is back — the same relay process, no restart.
t.setTimeout(600_000)

const binaries = requireOryBinaries(t)
if (binaries !== undefined) {
  const stack = await startStack(t, binaries)
  const { ory, relay } = stack

  t.test('8. a logout while Kratos is stopped is queued, and the sessions end once Kratos is back', async (t) => {
    const identity = await stack.identity()
    const client = await stack.client()
    const browser = stack.browser()
    const { tokens } = await authorize(browser, ory, client, { kind: 'password', identifier: identity.email, password: identity.password })
    await ory.apiLogin(identity.email, identity.password)
    t.equal((await ory.sessions(identity.id, { active: true })).length, 2, 'a browser session and an API login')
    const relayPid = relay.process.pid

    await ory.stopKratos()
    const metricsBefore = await relay.metrics()
    const before = stack.logoutsSoFar()
    await rpInitiatedLogout(browser, ory, tokens.id_token)
    const [answered] = await stack.logoutsAnswered(before, 1)
    t.match(answered, { statusCode: 200, outcome: 'queued', identity: identity.id }, 'the relay answered 200 and queued the revocation')

    const retried = (samples: Awaited<ReturnType<typeof relay.metrics>>): number =>
      metricValue(samples, 'logout_relay_revocations_total', { outcome: 'retried', kind: 'kratos-sessions' })
    const whileDown = await waitFor(async () => {
      const now = await relay.metrics()
      return retried(now) - retried(metricsBefore) >= 2 ? now : undefined
    }, { timeoutMs: 30_000, processes: [ory.hydra, relay.process], what: 'the relay to retry the revocation while Kratos is down' })
    t.equal(metricValue(whileDown, 'logout_relay_queue_depth', { state: 'waiting' }) + metricValue(whileDown, 'logout_relay_queue_depth', { state: 'active' }), 1, 'the job waits in the queue')
    t.equal(metricValue(whileDown, 'logout_relay_dead_letters'), 0, 'nothing given up')
    // The relay writes its log in batches (a quarter second at most): the line may still be on its way.
    const said = await waitFor(() => relay.logs().find((line) => line.msg === 'revocation failed; will retry'),
      { timeoutMs: 5000, processes: [relay.process], what: 'the relay to log that it will retry' }).catch(() => undefined)
    t.match(said, { target: { kind: 'kratos-sessions', identityId: identity.id } }, 'the relay says it will retry, naming the identity')

    await ory.startKratos()
    await stack.noActiveSession(identity.id, 'once Kratos is back')
    t.same(await ory.sessions(identity.id), [], 'both sessions are gone')
    t.equal(relay.process.pid, relayPid, 'the same relay process')
    t.ok(relay.process.running, 'still running')
    const after = await waitFor(async () => {
      const now = await relay.metrics()
      return metricValue(now, 'logout_relay_queue_depth', { state: 'waiting' }) + metricValue(now, 'logout_relay_queue_depth', { state: 'active' }) === 0 ? now : undefined
    }, { ...stack.wait, what: 'the queue to be empty' })
    t.equal(metricValue(after, 'logout_relay_revocations_total', { outcome: 'succeeded', kind: 'kratos-sessions' }) -
      metricValue(metricsBefore, 'logout_relay_revocations_total', { outcome: 'succeeded', kind: 'kratos-sessions' }), 1, 'one revocation succeeded')
  })
}

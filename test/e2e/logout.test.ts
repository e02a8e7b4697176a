import t from 'tap'
import { requireOryBinaries } from './helpers/binaries.js'
import { authorize, rpInitiatedLogout } from './helpers/oauth2.js'
import { expect, randomHex } from './helpers/ory.js'
import { waitFor } from './helpers/process.js'
import { metricValue } from './helpers/relay.js'
import { startStack } from './helpers/stack.js'

// Logins and logouts through real Ory Hydra and Kratos, the relay between them as a process: the
// browser is a cookie jar, the test plays the login, consent and logout UI. One stack for the file.
t.setTimeout(600_000)

const binaries = requireOryBinaries(t)
if (binaries !== undefined) {
  const stack = await startStack(t, binaries)
  const { ory, relay, indexedSids, noActiveSession, logoutsAnswered, logoutsSoFar } = stack
  const WAIT = stack.wait

  /** Login hook calls the relay indexed so far (its metric: the count is exact, the log is written in batches). */
  const hookCalls = async (): Promise<number> => metricValue(await relay.metrics(), 'logout_relay_login_hook_calls_total', { outcome: 'indexed' })

  /** The Kratos sessions of a user with a browser login through Hydra and `apiLogins` native-app logins. */
  const sessionsOnDevices = async (identity: { id: string, email: string, password: string }, apiLogins: number): Promise<void> => {
    for (let i = 0; i < apiLogins; i++) await ory.apiLogin(identity.email, identity.password)
  }

  t.test('1. a login through Hydra indexes the ID token\'s sid for the Kratos identity', async (t) => {
    const identity = await stack.identity()
    const client = await stack.client()
    const hooksBefore = await hookCalls()
    const { idToken, loginRequest } = await authorize(stack.browser(), ory, client, { kind: 'password', identifier: identity.email, password: identity.password })
    t.equal(idToken.sub, identity.id, 'Kratos makes the identity id the subject')
    t.equal(loginRequest.skip, false)
    t.equal(loginRequest.session_id, idToken.sid, 'the login request\'s session_id is the ID token\'s sid')
    t.same(await indexedSids(identity.id), [idToken.sid], 'the relay lists the sid for the identity')
    t.equal(await hookCalls() - hooksBefore, 1, 'Kratos called the login hook once, and the relay indexed it')
  })

  t.test('2. RP-initiated logout ends every Kratos session of the identity', async (t) => {
    const identity = await stack.identity()
    const client = await stack.client()
    const browser = stack.browser()
    const { idToken, tokens } = await authorize(browser, ory, client, { kind: 'password', identifier: identity.email, password: identity.password })
    await sessionsOnDevices(identity, 2)
    t.equal((await ory.sessions(identity.id, { active: true })).length, 3, 'the browser\'s session and two API logins')

    const before = logoutsSoFar()
    const landed = await rpInitiatedLogout(browser, ory, tokens.id_token)
    t.equal(landed.origin, ory.addresses.ui, 'Hydra sent the browser to its post-logout redirect')
    const [answered] = await logoutsAnswered(before, 1)
    t.match(answered, { method: 'POST', statusCode: 200, outcome: 'queued', identity: identity.id }, 'the relay answered Hydra 200 and queued the revocation')
    await noActiveSession(identity.id, 'after the RP-initiated logout')
    t.same(await ory.sessions(identity.id), [], 'the sessions are gone, not only inactive')
    t.equal(idToken.sid.length > 0, true)
  })

  t.test('3. Hydra\'s admin revocation by sid ends every Kratos session of the identity', async (t) => {
    const identity = await stack.identity()
    const client = await stack.client()
    const { idToken } = await authorize(stack.browser(), ory, client, { kind: 'password', identifier: identity.email, password: identity.password })
    await sessionsOnDevices(identity, 2)
    t.equal((await ory.sessions(identity.id, { active: true })).length, 3)

    const before = logoutsSoFar()
    await expect(204, ory.hydraAdmin(`/admin/oauth2/auth/sessions/login?sid=${encodeURIComponent(idToken.sid)}`), { method: 'DELETE' })
    const [answered] = await logoutsAnswered(before, 1)
    t.match(answered, { statusCode: 200, outcome: 'queued', identity: identity.id })
    await noActiveSession(identity.id, 'after the revocation by sid')
  })

  t.test('4. two clients of one login session: two logout tokens, both 200, one Kratos revocation', async (t) => {
    const identity = await stack.identity()
    const [first, second] = [await stack.client(), await stack.client()]
    const browser = stack.browser()
    const one = await authorize(browser, ory, first, { kind: 'password', identifier: identity.email, password: identity.password })
    // The same browser: Hydra remembers the login session and asks to skip the login; Kratos, seeing
    // its own session cookie, accepts the login request by itself.
    const two = await authorize(browser, ory, second, { kind: 'kratos-session' })
    t.equal(two.loginRequest.skip, true)
    t.equal(two.idToken.sid, one.idToken.sid, 'both clients are in one login session')
    await sessionsOnDevices(identity, 1)

    const metricsBefore = await relay.metrics()
    const before = logoutsSoFar()
    await rpInitiatedLogout(browser, ory, one.tokens.id_token)
    const answered = await logoutsAnswered(before, 2)
    t.same(answered.map((line) => line['statusCode']), [200, 200], 'both logout tokens answered 200')
    t.same(answered.map((line) => line['outcome']).sort(), ['duplicate', 'queued'])
    await noActiveSession(identity.id, 'after the logout of two clients')

    const metricsAfter = await waitFor(async () => {
      const now = await relay.metrics()
      return metricValue(now, 'logout_relay_revocations_total', { outcome: 'succeeded', kind: 'kratos-sessions' }) >
        metricValue(metricsBefore, 'logout_relay_revocations_total', { outcome: 'succeeded', kind: 'kratos-sessions' })
        ? now
        : undefined
    }, { ...WAIT, what: 'the revocation to be counted' })
    const delta = (name: string, labels: Record<string, string>): number => metricValue(metricsAfter, name, labels) - metricValue(metricsBefore, name, labels)
    t.equal(delta('logout_relay_logout_tokens_total', { outcome: 'queued' }), 1)
    t.equal(delta('logout_relay_logout_tokens_total', { outcome: 'duplicate' }), 1)
    t.equal(delta('logout_relay_revocations_total', { outcome: 'succeeded', kind: 'kratos-sessions' }), 1, 'Kratos got one revocation')
    t.equal(delta('logout_relay_revocations_total', { outcome: 'retried' }), 0)
  })

  t.test('5. a registration through Hydra is indexed (hook before session), and a logout revokes', async (t) => {
    // Random and unrelated: Kratos refuses a password too similar to the identifier.
    const email = `new-${randomHex(6)}@example.com`
    const password = `pw-${randomHex(12)}`
    const client = await stack.client()
    const browser = stack.browser()
    const hooksBefore = await hookCalls()
    const { idToken, tokens } = await authorize(browser, ory, client, { kind: 'register', email, password })
    const identityId = idToken.sub
    t.equal(await hookCalls() - hooksBefore, 1, 'the registration called the login hook')
    t.same(await indexedSids(identityId), [idToken.sid], 'the registration\'s login session is indexed')
    await ory.apiLogin(email, password)
    t.equal((await ory.sessions(identityId, { active: true })).length, 2, 'the registration\'s session and an API login')

    await rpInitiatedLogout(browser, ory, tokens.id_token)
    await noActiveSession(identityId, 'after logging out of the registration\'s session')
  })

  t.test('6. an authorization that reuses the remembered login session keeps its sid, and a logout still revokes', async (t) => {
    const identity = await stack.identity()
    const [first, second, third] = [await stack.client(), await stack.client(), await stack.client()]
    const browser = stack.browser()
    const login = await authorize(browser, ory, first, { kind: 'password', identifier: identity.email, password: identity.password })
    const hooksBefore = await hookCalls()

    // What Kratos v1.3.1 does with a login challenge whose request says skip: its login flow sees the
    // browser's Kratos session and accepts Hydra's login request itself, running no login hook.
    const viaKratos = await authorize(browser, ory, second, { kind: 'kratos-session' })
    t.equal(viaKratos.loginRequest.skip, true, 'Hydra asks to skip the login')
    t.equal(viaKratos.loginRequest.subject, identity.id)
    t.equal(viaKratos.idToken.sid, login.idToken.sid, 'the same sid')
    t.equal(await hookCalls(), hooksBefore, 'no login hook: Kratos ran no login flow')

    // A login UI that accepts the skipped login itself, at Hydra's admin API, with the same subject.
    const viaUi = await authorize(browser, ory, third, { kind: 'accept-at-hydra', subject: viaKratos.loginRequest.subject })
    t.equal(viaUi.loginRequest.skip, true)
    t.equal(viaUi.idToken.sid, login.idToken.sid, 'the same sid')
    t.same(await indexedSids(identity.id), [login.idToken.sid], 'still the one sid indexed')

    await sessionsOnDevices(identity, 1)
    const before = logoutsSoFar()
    await rpInitiatedLogout(browser, ory, viaUi.tokens.id_token)
    const answered = await logoutsAnswered(before, 3)
    t.same(answered.map((line) => line['statusCode']), [200, 200, 200], 'one logout token per client, each answered 200')
    await noActiveSession(identity.id, 'after logging out of the reused login session')
  })

  t.test('Hydra delivered every back-channel logout: none failed', async (t) => {
    t.equal(ory.backchannelLogouts().failed, 0, ory.hydra.tail())
  })
}

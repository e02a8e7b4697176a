import { decodeJwt } from 'jose'
import t from 'tap'
import { requireOryBinaries } from './helpers/binaries.js'
import type { Browser } from './helpers/browser.js'
import { authorize, changePassword, loginRequest, startAuthorization, whoami } from './helpers/oauth2.js'
import { call, randomHex } from './helpers/ory.js'
import { waitFor } from './helpers/process.js'
import { RecordingProxy } from './helpers/proxy.js'
import { metricValue, type Sample } from './helpers/relay.js'
import { startStack } from './helpers/stack.js'

// A password change in Kratos' settings flow logs the user out of every app, against real Ory Hydra and
// Kratos with the shipped configuration: Kratos' web hook makes the relay revoke every Hydra login
// session of the identity (Hydra tells every client by back-channel logout, which the relay answers as
// already handled), and Kratos' own revoke_active_sessions ends the other Kratos sessions but keeps the
// one the password was changed in.
t.setTimeout(600_000)

const binaries = requireOryBinaries(t)
if (binaries !== undefined) {
  const stack = await startStack(t, binaries)
  const { ory, relay } = stack

  // The clients' back-channel logout URI: a proxy in front of the relay's, which records each logout
  // token Hydra sends and what the relay answered.
  const backchannel = await RecordingProxy.start(relay.url)
  t.teardown(async () => { await backchannel.close() })

  t.test('8. a password change in the settings flow ends every Hydra login session and every other Kratos session', async (t) => {
    const identity = await stack.identity()
    const [appA, appB] = [await stack.client({ backchannelLogoutUri: `${backchannel.origin}/backchannel-logout` }),
      await stack.client({ backchannelLogoutUri: `${backchannel.origin}/backchannel-logout` })]
    const password = { identifier: identity.email, password: identity.password }

    // Device 1 logs in through app A, device 2 through app B; each then opens the other app, whose
    // authorization reuses its device's login session: two sids, each with both clients.
    const devices: Browser[] = [stack.browser(), stack.browser()]
    const [device1, device2] = devices as [Browser, Browser]
    const first1 = await authorize(device1, ory, appA, { kind: 'password', ...password })
    const second1 = await authorize(device1, ory, appB, { kind: 'kratos-session' })
    const first2 = await authorize(device2, ory, appB, { kind: 'password', ...password })
    const second2 = await authorize(device2, ory, appA, { kind: 'kratos-session' })
    const [sid1, sid2] = [first1.idToken.sid, first2.idToken.sid]
    t.equal(second1.idToken.sid, sid1, 'device 1: both apps in one login session')
    t.equal(second2.idToken.sid, sid2, 'device 2: both apps in one login session')
    t.not(sid1, sid2, 'a login session per device')
    t.same((await stack.indexedSids(identity.id)).sort(), [sid1, sid2].sort(), 'the relay indexed both sids')
    // A native app's session too: revoke_active_sessions must end it as well.
    const native = await ory.apiLogin(identity.email, identity.password)

    const [kratos1, kratos2] = [(await whoami(device1, ory)).session, (await whoami(device2, ory)).session]
    if (kratos1 === undefined || kratos2 === undefined) throw new Error('each device holds a Kratos session after its login')
    t.equal((await ory.sessions(identity.id, { active: true })).length, 3, 'three active Kratos sessions: two browsers and the native app')

    const metricsBefore = await relay.metrics()
    const before = stack.logoutsSoFar()
    const hookLinesBefore = relay.requests('/hooks/credentials-changed').length

    // Random and unrelated to the email, so that Kratos' password policy accepts it.
    const newPassword = `new-${randomHex(12)}`
    const changed = await changePassword(device1, ory, newPassword)
    t.comment(`Kratos answered the settings flow in ${Math.round(changed.ms)} ms`)
    t.equal(changed.status, 200, 'Kratos saved the password', { messages: changed.messages })
    t.equal(changed.state, 'success', 'the settings flow succeeded', { messages: changed.messages })

    // The relay's hook: the identity's two sids queued for revocation at Hydra, each marked.
    const [hookLine] = await waitFor(() => {
      const lines = relay.requests('/hooks/credentials-changed').slice(hookLinesBefore)
      return lines.length > 0 ? lines : undefined
    }, { ...stack.wait, what: 'the relay to log the credentials hook' })
    t.match(hookLine, { method: 'POST', statusCode: 204, outcome: 'credentials_changed_queued', identity: identity.id, flow: 'settings', sids: 2, queued: 2 },
      'Kratos called the credentials hook once, and the relay queued a revocation per sid')
    t.equal(relay.requests('/hooks/credentials-changed').length - hookLinesBefore, 1, 'exactly once')
    t.notOk(hookLine !== undefined && 'credentialMethod' in hookLine, 'Kratos v1.3.1 does not tell which settings method changed')

    // Kratos' revoke_active_sessions: the session the password was changed in is the only one left.
    t.same((await ory.sessions(identity.id, { active: true })).map((session) => session.id), [kratos1.id],
      'Kratos lists only device 1\'s session as active')
    t.equal((await whoami(device2, ory)).status, 401, 'device 2\'s Kratos session cookie no longer holds a session')
    t.equal((await call(ory.kratosPublic('/sessions/whoami'), { headers: { 'x-session-token': native.session_token } })).status, 401,
      'the native app\'s session token no longer holds a session')

    // Hydra revoked both login sessions and sent a logout token to each client of each: four, each
    // answered 200 by the relay as already handled.
    const answered = await stack.logoutsAnswered(before, 4)
    t.same(answered.map((line) => line['statusCode']), [200, 200, 200, 200], 'the relay answered every logout token 200')
    t.same(answered.map((line) => line['outcome']), ['already_handled', 'already_handled', 'already_handled', 'already_handled'],
      'as already handled: its own revocations echoed')
    const deliveries = backchannel.calls.map((delivery) => {
      const token = new URLSearchParams(delivery.body).get('logout_token')
      if (token === null) throw new Error(`a back-channel logout without a logout_token: ${delivery.method} ${delivery.path}`)
      const claims = decodeJwt(token)
      return { client: ([claims.aud].flat()[0] ?? ''), sid: String(claims['sid']), status: delivery.status }
    })
    const key = (client: string, sid: string): string => `${client} ${sid}`
    t.same(deliveries.map((d) => key(d.client, d.sid)).sort(),
      [key(appA.client_id, sid1), key(appA.client_id, sid2), key(appB.client_id, sid1), key(appB.client_id, sid2)].sort(),
      'both clients received a logout token for each sid, once')
    t.same(deliveries.map((d) => d.status), [200, 200, 200, 200], 'and each delivery was answered 200')

    // The relay's counts: both revocations at Hydra succeeded, and nothing went to Kratos.
    const succeeded = (samples: Sample[]): number => metricValue(samples, 'logout_relay_revocations_total', { outcome: 'succeeded', kind: 'hydra-login-session' })
    const metricsAfter = await waitFor(async () => {
      const now = await relay.metrics()
      return succeeded(now) - succeeded(metricsBefore) >= 2 ? now : undefined
    }, { ...stack.wait, what: 'the relay to count both Hydra login session revocations as succeeded' })
    const delta = (name: string, labels: Record<string, string> = {}): number => metricValue(metricsAfter, name, labels) - metricValue(metricsBefore, name, labels)
    t.equal(delta('logout_relay_revocations_total', { outcome: 'succeeded', kind: 'hydra-login-session' }), 2, 'two Hydra login sessions revoked')
    t.equal(delta('logout_relay_credentials_changed_total', { flow: 'settings', outcome: 'queued' }), 1, 'one credentials change counted')
    t.equal(delta('logout_relay_logout_tokens_total', { outcome: 'already_handled' }), 4, 'four logout tokens already handled')
    t.equal(delta('logout_relay_logout_tokens_total', { outcome: 'queued' }), 0, 'no logout token queued a revocation')
    t.equal(delta('logout_relay_logout_tokens_total', { outcome: 'duplicate' }), 0)
    t.equal(delta('logout_relay_revocations_total', { kind: 'kratos-sessions' }), 0, 'no Kratos revocation by the relay')
    t.equal(delta('logout_relay_revocations_total', { outcome: 'retried' }), 0, 'nothing retried')
    t.equal(ory.backchannelLogouts().failed, 0, 'Hydra delivered every back-channel logout')

    // Hydra forgot both login sessions: each device has to log in again.
    for (const [i, device] of devices.entries()) {
      const { challenge } = await startAuthorization(device, ory, appA, 'openid')
      t.equal((await loginRequest(ory, challenge)).skip, false, `device ${i + 1} is asked to log in again at Hydra`)
    }

    // Device 1 still works: its Kratos session, after every back-channel logout was answered.
    const still = await whoami(device1, ory)
    t.equal(still.status, 200, 'device 1\'s Kratos session cookie still returns its session')
    t.equal(still.session?.id, kratos1.id, 'the same session')
    t.equal(still.session?.identity.id, identity.id)
    t.same((await ory.sessions(identity.id, { active: true })).map((session) => session.id), [kratos1.id], 'and Kratos still lists it as the only active one')

    // The password did change: the old one is refused, the new one logs in.
    await t.rejects(ory.apiLogin(identity.email, identity.password), /answered 400/, 'the old password is refused')
    const relogin = await authorize(device1, ory, appA, { kind: 'password', identifier: identity.email, password: newPassword })
    t.equal(relogin.loginRequest.skip, false, 'device 1 logs in at Hydra again with the new password')
    t.not(relogin.idToken.sid, sid1, 'in a new login session')
    t.ok((await stack.indexedSids(identity.id)).includes(relogin.idToken.sid), 'which the relay indexed')
    // Hydra asked to log in again (skip: false), so Kratos made it a refreshing login of the session it had.
    t.equal((await whoami(device1, ory)).session?.id, kratos1.id, 'Kratos refreshed device 1\'s session instead of making another')
  })
}

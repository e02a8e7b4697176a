import t from 'tap'
import { requireOryBinaries } from './helpers/binaries.js'
import { authorize, loginRequest, refresh, startAuthorization } from './helpers/oauth2.js'
import { waitFor } from './helpers/process.js'
import { metricValue } from './helpers/relay.js'
import { startStack } from './helpers/stack.js'

// The relay's admin API logs an identity out everywhere, against real Ory Hydra and Kratos: every
// Hydra login session by sid (Hydra then sends back-channel logout to every client), every Kratos
// session, and with revoke_consents the consents and the tokens issued under them.
t.setTimeout(600_000)

const binaries = requireOryBinaries(t)
if (binaries !== undefined) {
  // The relay reaches Hydra's admin API through a proxy that records the order of its calls.
  const stack = await startStack(t, binaries, { proxyHydraAdmin: true })
  const { ory, relay } = stack

  /** A user on two browsers, each through its own client with a refresh token, and a native-app session. */
  async function userEverywhere (): Promise<{ id: string, sids: string[], browsers: ReturnType<typeof stack.browser>[], refreshTokens: string[], accessTokens: string[], clients: Awaited<ReturnType<typeof stack.client>>[] }> {
    const identity = await stack.identity()
    const clients = [await stack.client(), await stack.client()]
    const browsers = [stack.browser(), stack.browser()]
    const logins = []
    for (const [i, browser] of browsers.entries()) {
      logins.push(await authorize(browser, ory, clients[i] as (typeof clients)[number], { kind: 'password', identifier: identity.email, password: identity.password }))
    }
    await ory.apiLogin(identity.email, identity.password)
    return {
      id: identity.id,
      sids: logins.map((login) => login.idToken.sid).sort(),
      browsers,
      clients,
      refreshTokens: logins.map((login) => {
        if (login.tokens.refresh_token === undefined) throw new Error('Hydra issued no refresh token for offline_access')
        return login.tokens.refresh_token
      }),
      accessTokens: logins.map((login) => login.tokens.access_token)
    }
  }

  t.test('7. POST /admin/identities/{id}/logout with revoke_consents ends every session and consent of the identity', async (t) => {
    const user = await userEverywhere()
    t.equal(new Set(user.sids).size, 2, 'two Hydra login sessions')
    t.same(await stack.indexedSids(user.id).then((sids) => sids.sort()), user.sids, 'both indexed')
    t.equal((await ory.sessions(user.id, { active: true })).length, 3, 'three Kratos sessions')
    t.equal((await ory.consentSessions(user.id)).length, 2, 'a consent session per client')
    for (const token of user.refreshTokens) t.equal((await ory.introspect(token)).active, true, 'the refresh token is active before')

    const metricsBefore = await relay.metrics()
    const before = stack.logoutsSoFar()
    const answer = await relay.admin<{ identity_id: string, sids: string[], steps: Array<Record<string, unknown>> }>('POST', `/admin/identities/${user.id}/logout`, { revoke_consents: true })
    t.equal(answer.status, 202, 'recorded')
    t.same(answer.body.sids, user.sids, 'every indexed sid')
    t.same(answer.body.steps, [
      ...user.sids.map((sid) => ({ kind: 'hydra-login-session', sid, status: 'queued' })),
      { kind: 'kratos-sessions', identity_id: user.id, status: 'queued' },
      { kind: 'hydra-consent-sessions', subject: user.id, status: 'queued' }
    ], 'a login session step per sid, the Kratos sessions, the consents')

    await stack.noActiveSession(user.id, 'after the global logout')
    const metricsAfter = await waitFor(async () => {
      const now = await relay.metrics()
      const succeeded = (kind: string): number => metricValue(now, 'logout_relay_revocations_total', { outcome: 'succeeded', kind }) -
        metricValue(metricsBefore, 'logout_relay_revocations_total', { outcome: 'succeeded', kind })
      return succeeded('hydra-login-session') === 2 && succeeded('hydra-consent-sessions') === 1 ? now : undefined
    }, { ...stack.wait, what: 'the admin steps to be counted as succeeded' })
    t.equal(metricValue(metricsAfter, 'logout_relay_revocations_total', { outcome: 'retried' }) -
      metricValue(metricsBefore, 'logout_relay_revocations_total', { outcome: 'retried' }), 0, 'no step was retried')

    // Hydra finds the clients to send a logout token to through the login session's consent flows
    // (listUserAuthenticatedClients joins hydra_oauth2_flow on login_session_id), and revoking the
    // consents deletes those flows: a login session revoked after, or while, the consents are gone
    // notifies no client. So the consents may go only once every login session is revoked.
    const calls = stack.hydraAdminCalls
    const logins = calls.filter((call) => call.method === 'DELETE' && call.path.startsWith('/admin/oauth2/auth/sessions/login'))
    const consents = calls.filter((call) => call.method === 'DELETE' && call.path.startsWith('/admin/oauth2/auth/sessions/consent'))
    t.equal(logins.length, 2, 'a revocation per sid')
    t.equal(consents.length, 1, 'one revocation of the consents')
    const lastLoginAnswered = Math.max(...logins.map((call) => call.finishedAt ?? Infinity))
    t.ok(consents.every((call) => call.startedAt >= lastLoginAnswered),
      'the consents are revoked only after Hydra answered every login session revocation',
      { calls: calls.map((call) => ({ call: `${call.method} ${call.path.split('?')[0] ?? ''}`, startedAt: call.startedAt, finishedAt: call.finishedAt })) })

    // Hydra revokes each login session and sends a logout token to its client: one per sid.
    const answered = await stack.logoutsAnswered(before, 2).catch((err: unknown) => err as Error)
    t.notOk(answered instanceof Error, 'Hydra sent a logout token for each login session, and the relay answered them',
      answered instanceof Error ? { error: answered.message.split('\n')[0] } : {})
    if (!(answered instanceof Error)) t.same(answered.map((line) => line['statusCode']), [200, 200], 'Hydra\'s back-channel logouts answered 200')
    await waitFor(async () => (await ory.consentSessions(user.id)).length === 0 ? true : undefined,
      { ...stack.wait, what: 'Hydra to list no consent session of the subject' })
    for (const [i, token] of user.refreshTokens.entries()) {
      t.equal((await ory.introspect(token)).active, false, `refresh token ${i + 1} is inactive at Hydra's introspection`)
      const refused = await refresh(ory, user.clients[i] as (typeof user.clients)[number], token)
      t.equal(refused.status, 400, 'and the token endpoint refuses it')
    }
    for (const token of user.accessTokens) t.equal((await ory.introspect(token)).active, false, 'the access token is inactive too')

    // Hydra forgot both login sessions: each browser has to log in again.
    for (const [i, browser] of user.browsers.entries()) {
      const { challenge } = await startAuthorization(browser, ory, user.clients[i] as (typeof user.clients)[number], 'openid')
      t.equal((await loginRequest(ory, challenge)).skip, false, `browser ${i + 1} is asked to log in again`)
    }

    t.equal(ory.backchannelLogouts().failed, 0, 'Hydra delivered every back-channel logout')
  })

  t.test('7b. without revoke_consents the sessions end and Hydra keeps the consents', async (t) => {
    const user = await userEverywhere()
    const before = stack.logoutsSoFar()
    const answer = await relay.admin<{ steps: Array<Record<string, unknown>> }>('POST', `/admin/identities/${user.id}/logout`)
    t.equal(answer.status, 202, 'recorded')
    t.notOk(answer.body.steps.some((step) => step['kind'] === 'hydra-consent-sessions'), 'no consent step')
    await stack.logoutsAnswered(before, 2)
    await stack.noActiveSession(user.id, 'after the global logout without consents')
    t.equal((await ory.consentSessions(user.id)).length, 2, 'Hydra still lists both consent sessions')
    for (const token of user.refreshTokens) t.equal((await ory.introspect(token)).active, true, 'the refresh token is still active')
  })
}

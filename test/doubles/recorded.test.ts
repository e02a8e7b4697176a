import { randomUUID } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import t from 'tap'
import { HydraDouble } from './hydra.js'
import { KratosDouble, kratosWebHookRequest } from './kratos.js'
import type { OryDouble } from './ory-double.js'
import { comparable, loadRecorded, type Exchange } from './recorded.js'

// The doubles against what real Ory Hydra and Kratos answered, as recorded from them by the
// end-to-end suite (test/fixtures/ory-recorded): the same statuses, header names, media types and
// JSON shapes. No Ory binary is needed: this runs with the fast tests.

/** Recorded exchanges a double does not play, and why. */
const NOT_PLAYED: Record<string, string> = {
  'hydra.public_port_list_clients': 'the Hydra double serves the public and admin operations on one port',
  'hydra.public_port_health_ready': 'the Hydra double serves the public and admin operations on one port',
  'kratos.public_port_delete_identity_sessions': 'the Kratos double is the admin port',
  'kratos.public_port_list_identities': 'the Kratos double is the admin port',
  'kratos.public_port_health_ready': 'the Kratos double is the admin port'
}

async function ask (double: OryDouble, method: string, path: string): Promise<Exchange> {
  const url = `${double.url}${path}`
  const response = await fetch(url, { method, headers: { accept: 'application/json' }, redirect: 'manual' })
  const text = await response.text()
  let body: unknown = text === '' ? null : text
  try {
    if (text !== '') body = JSON.parse(text)
  } catch {}
  const headers: Record<string, string> = {}
  response.headers.forEach((value, name) => { headers[name] = value })
  return { request: { method, url }, response: { status: response.status, headers, body } }
}

const hydra = await HydraDouble.start()
const kratos = await new KratosDouble().listen()
t.teardown(async () => { await Promise.all([hydra.close(), kratos.close()]) })

const played: Record<string, () => Promise<Exchange>> = {
  'hydra.discovery': async () => await ask(hydra, 'GET', '/.well-known/openid-configuration'),
  'hydra.jwks': async () => await ask(hydra, 'GET', '/.well-known/jwks.json'),
  'hydra.login_request': async () =>
    await ask(hydra, 'GET', `/admin/oauth2/auth/requests/login?login_challenge=${hydra.addLoginRequest({ sessionId: randomUUID() }).challenge}`),
  // Hydra v2.3.0 answered a completed flow's challenge as a fresh one (200); the double does too,
  // unless a test marks the request handled (410, as the OpenAPI document allows).
  'hydra.login_request_handled': async () =>
    await ask(hydra, 'GET', `/admin/oauth2/auth/requests/login?login_challenge=${hydra.addLoginRequest({ sessionId: randomUUID() }).challenge}`),
  'hydra.login_request_unknown': async () => await ask(hydra, 'GET', `/admin/oauth2/auth/requests/login?login_challenge=${randomUUID()}`),
  'hydra.revoke_login_session': async () => await ask(hydra, 'DELETE', `/admin/oauth2/auth/sessions/login?sid=${randomUUID()}`),
  'hydra.revoke_login_session_unknown_sid': async () => await ask(hydra, 'DELETE', `/admin/oauth2/auth/sessions/login?sid=${randomUUID()}`),
  'hydra.revoke_consent_sessions': async () => await ask(hydra, 'DELETE', `/admin/oauth2/auth/sessions/consent?subject=${randomUUID()}&all=true`),
  'hydra.backchannel_logout': async () => {
    const token = await hydra.logoutToken(randomUUID())
    return {
      request: { method: 'POST', url: '/backchannel-logout', body: { logout_token: token } },
      token: { header: decodeProtectedHeader(token), claims: decodeJwt(token) }
    }
  },
  'hydra.list_clients': async () => await ask(hydra, 'GET', '/admin/clients?page_size=1'),
  'hydra.wrong_path_list_clients': async () => await ask(hydra, 'GET', '/admin/admin/clients?page_size=1'),
  'hydra.health_alive': async () => await ask(hydra, 'GET', '/health/alive'),
  'hydra.health_ready': async () => await ask(hydra, 'GET', '/health/ready'),

  'kratos.web_hook': async () => {
    const request = kratosWebHookRequest({ identity_id: randomUUID(), login_challenge: 'challenge' }, 'key-0123456789abcdef')
    return { request: { method: request.method, url: '/hooks/login', headers: request.headers, body: JSON.parse(request.body) as unknown } }
  },
  'kratos.list_identity_sessions': async () => {
    const id = randomUUID()
    kratos.addSessions(id, 2)
    return await ask(kratos, 'GET', `/admin/identities/${id}/sessions`)
  },
  'kratos.delete_identity_sessions': async () => {
    const id = randomUUID()
    kratos.addSessions(id, 2)
    return await ask(kratos, 'DELETE', `/admin/identities/${id}/sessions`)
  },
  'kratos.delete_identity_sessions_none_left': async () => {
    const id = randomUUID()
    kratos.addSessions(id, 1)
    await ask(kratos, 'DELETE', `/admin/identities/${id}/sessions`)
    return await ask(kratos, 'DELETE', `/admin/identities/${id}/sessions`)
  },
  'kratos.delete_identity_sessions_no_identity': async () => await ask(kratos, 'DELETE', `/admin/identities/${randomUUID()}/sessions`),
  'kratos.wrong_path_delete_identity_sessions': async () => await ask(kratos, 'DELETE', `/admin/admin/identities/${randomUUID()}/sessions`),
  'kratos.list_identities': async () => await ask(kratos, 'GET', '/admin/identities?page_size=1'),
  'kratos.wrong_path_list_identities': async () => await ask(kratos, 'GET', '/admin/admin/identities?page_size=1'),
  'kratos.health_ready_unprefixed': async () => await ask(kratos, 'GET', '/health/ready'),
  'kratos.health_alive': async () => await ask(kratos, 'GET', '/admin/health/alive'),
  'kratos.health_ready': async () => await ask(kratos, 'GET', '/admin/health/ready')
}

for (const service of ['hydra', 'kratos'] as const) {
  const recording = loadRecorded(service)
  t.test(`the ${service} double answers as ${service} ${recording[`${service}_version`]} did`, async (t) => {
    for (const [name, recorded] of Object.entries(recording.exchanges)) {
      const key = `${service}.${name}`
      const play = played[key]
      if (play === undefined) {
        t.ok(NOT_PLAYED[key], `${key} is played by the double, or says why not`)
        continue
      }
      const mine = await play()
      // The relay's tests post the logout token themselves: only its form and token are the double's.
      const expected = structuredClone(recorded)
      if (key === 'hydra.backchannel_logout') Reflect.deleteProperty(expected.request, 'headers')
      t.same(comparable(mine), comparable(expected), key)
    }
  })
}

t.test('every exchange the doubles play was recorded', async (t) => {
  const recorded = (['hydra', 'kratos'] as const).flatMap((service) => Object.keys(loadRecorded(service).exchanges).map((name) => `${service}.${name}`))
  t.same(Object.keys(played).filter((key) => !recorded.includes(key)), [])
})

t.test('the doubles count a path that is no operation as a violation, and answer it as Ory\'s router does', async (t) => {
  t.same(kratos.violations.map((violation) => violation.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/, '{id}')), [
    'DELETE /admin/admin/identities/{id}/sessions is no operation of the API',
    'GET /admin/admin/identities is no operation of the API'
  ])
  kratos.violations.length = 0
  t.same(hydra.violations, ['GET /admin/admin/clients is no operation of the API'])
  hydra.violations.length = 0
})

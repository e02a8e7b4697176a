import { randomUUID } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import t from 'tap'
import { linkRelations, nextPageToken } from '../../src/ory/pagination.js'
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

/** The listings whose `Link` relations are compared too: the double's state matches the recording's. */
const LINKS_COMPARED = new Set([
  'hydra.list_consent_sessions', 'hydra.list_consent_sessions_first_page', 'hydra.list_consent_sessions_none',
  'hydra.list_clients_first_page', 'hydra.list_clients_next_page',
  'kratos.list_identities_first_page', 'kratos.list_identities_next_page', 'kratos.list_identities_count'
])

/** Each relation of an answer's `Link` header, with the names of its target's query parameters and the page size. */
function linkShape (exchange: Exchange): Record<string, unknown> {
  const relations = linkRelations(exchange.response?.headers['link'])
  return Object.fromEntries(Object.entries(relations).map(([rel, target]) => {
    const url = new URL(target, 'http://link.invalid')
    return [rel, { path: url.pathname, params: [...url.searchParams.keys()].sort(), page_size: url.searchParams.get('page_size'), per_page: url.searchParams.get('per_page'), page: url.searchParams.get('page') }]
  }))
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
// The listings, page by page, as recorded: a Hydra with two clients and a subject with two consent
// sessions of one login session, a Kratos with two identities.
const listingHydra = await HydraDouble.start()
const listingKratos = await new KratosDouble().listen()
t.teardown(async () => { await Promise.all([hydra.close(), kratos.close(), listingHydra.close(), listingKratos.close()]) })
listingHydra.addClient('e2e-000000000002')
const consentSubject = randomUUID()
{
  const sid = randomUUID()
  listingHydra.addConsent({ subject: consentSubject, sid, clientId: 'example-client' })
  listingHydra.addConsent({ subject: consentSubject, sid, clientId: 'e2e-000000000002' })
}
listingKratos.addIdentities(2)

/** The `page_token` of an exchange's `next` link. */
function nextOf (exchange: Exchange): string {
  const token = nextPageToken(exchange.response?.headers['link'])
  if (token === undefined) throw new Error(`${exchange.request.url} has no next page`)
  return encodeURIComponent(token)
}

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
  'hydra.list_consent_sessions': async () => await ask(listingHydra, 'GET', `/admin/oauth2/auth/sessions/consent?subject=${consentSubject}`),
  'hydra.list_consent_sessions_first_page': async () => await ask(listingHydra, 'GET', `/admin/oauth2/auth/sessions/consent?subject=${consentSubject}&page_size=1`),
  'hydra.list_consent_sessions_none': async () => await ask(listingHydra, 'GET', `/admin/oauth2/auth/sessions/consent?subject=${randomUUID()}`),
  'hydra.list_clients_first_page': async () => await ask(listingHydra, 'GET', '/admin/clients?page_size=1'),
  'hydra.list_clients_next_page': async () => {
    const first = await ask(listingHydra, 'GET', '/admin/clients?page_size=1')
    return await ask(listingHydra, 'GET', `/admin/clients?page_size=1&page_token=${nextOf(first)}`)
  },
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
  'kratos.list_identities_first_page': async () => await ask(listingKratos, 'GET', '/admin/identities?page_size=1'),
  'kratos.list_identities_next_page': async () => {
    const first = await ask(listingKratos, 'GET', '/admin/identities?page_size=1')
    return await ask(listingKratos, 'GET', `/admin/identities?page_size=1&page_token=${nextOf(first)}`)
  },
  'kratos.list_identities_count': async () => await ask(listingKratos, 'GET', '/admin/identities?page=0&per_page=1'),
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
      if (LINKS_COMPARED.has(key)) t.same(linkShape(mine), linkShape(expected), `${key}: the Link header's relations and their parameters`)
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
  t.same([...listingHydra.violations, ...listingKratos.violations], [], 'the listings are answered within the contracts')
})

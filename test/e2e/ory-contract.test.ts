import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import t from 'tap'
import { nextPageToken } from '../../src/ory/pagination.js'
import { comparable, loadRecorded, type Exchange, type RecordedFile } from '../doubles/recorded.js'
import { ORY_VERSIONS, requireOryBinaries, root } from './helpers/binaries.js'
import { authorize, completeAuthorization, startAuthorization } from './helpers/oauth2.js'
import { randomHex } from './helpers/ory.js'
import { waitFor } from './helpers/process.js'
import { CaptureServer, Sanitizer, headerRecord, type CapturedRequest } from './helpers/recording.js'
import { startStack } from './helpers/stack.js'

// What the relay's doubles (test/doubles) pretend Hydra and Kratos answer, asked of the real servers:
// each exchange is compared, by shape (status, header names, media type, JSON shapes, token claims),
// with the recording in test/fixtures/ory-recorded. RECORD_ORY_FIXTURES=1 writes the recording anew
// from this run instead. Kratos' login hook and a client's back-channel logout URI point at a listener
// of the test that records what Ory sends.
t.setTimeout(600_000)

const RECORD = process.env['RECORD_ORY_FIXTURES'] === '1'
const RECORDINGS = join(root, 'test/fixtures/ory-recorded')

const binaries = requireOryBinaries(t)
if (binaries !== undefined) {
  const capture = await CaptureServer.start((request) => request.path.startsWith('/hooks/login') ? 204 : 200)
  t.teardown(async () => { await capture.close() })
  const stack = await startStack(t, binaries, { hookOrigin: capture.origin })
  const { ory } = stack
  // The client's redirect URI shows as the compose stack's example app.
  const sanitize = new Sanitizer(ory.addresses).origin(stack.appOrigin, 'http://127.0.0.1:5555').secret(stack.keys.hook).secret(stack.keys.admin)
  const hydra: Record<string, Exchange> = {}
  const tokens = new WeakMap<Exchange, string>()
  const kratos: Record<string, Exchange> = {}

  /** Asks an Ory API, as the relay would (JSON accepted, redirects not followed), and keeps the exchange, sanitized. */
  const ask = async (into: Record<string, Exchange>, name: string, method: string, url: string): Promise<Exchange> => {
    const response = await fetch(url, { method, headers: { accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.timeout(15_000) })
    const text = await response.text()
    let body: unknown = text === '' ? null : text
    try {
      if (text !== '') body = JSON.parse(text)
    } catch {}
    const exchange: Exchange = {
      request: { method, url: sanitize.string(url) },
      response: { status: response.status, headers: sanitize.headers(headerRecord(response.headers)), body: sanitize.value(body) }
    }
    into[name] = exchange
    const next = nextPageToken(response.headers.get('link') ?? undefined)
    if (next !== undefined) tokens.set(exchange, next)
    return exchange
  }

  /**
   * The `page_token` of an exchange's `next` link, as the run gave it (the recording keeps it opaque):
   * read from the unsanitized answer, which `ask` keeps aside.
   */
  const nextToken = (exchange: Exchange): string => {
    const token = tokens.get(exchange)
    if (token === undefined) throw new Error(`${exchange.request.url} has no next page`)
    return encodeURIComponent(token)
  }

  /** A request Ory made to the capture listener, as an exchange: what it sent, body parsed. */
  const sent = (request: CapturedRequest, body: unknown): Exchange => ({
    request: { method: request.method, url: sanitize.string(`${capture.origin}${request.path}`), headers: sanitize.headers(request.headers), body: sanitize.value(body) }
  })

  // ---- Hydra ----------------------------------------------------------------------------------------
  await ask(hydra, 'discovery', 'GET', ory.hydraPublic('/.well-known/openid-configuration'))
  const jwks = await fetch(ory.hydraPublic('/.well-known/jwks.json')).then(async (response) => await response.json() as { keys: Array<{ n?: string }> })
  for (const key of jwks.keys) if (key.n !== undefined) sanitize.secret(key.n)
  await ask(hydra, 'jwks', 'GET', ory.hydraPublic('/.well-known/jwks.json'))

  const identity = await stack.identity()
  sanitize.secret(identity.email, 'user-000000000000@example.com').secret(identity.password)
  const client = await stack.client({ backchannelLogoutUri: `${capture.origin}/backchannel-logout` })
  sanitize.secret(client.client_id, 'e2e-000000000001').secret(client.client_secret)
  const browser = stack.browser()
  const started = await startAuthorization(browser, ory, client, 'openid offline_access')
  sanitize.secret(started.challenge).secret(started.state)
  await ask(hydra, 'login_request', 'GET', ory.hydraAdmin(`/admin/oauth2/auth/requests/login?login_challenge=${encodeURIComponent(started.challenge)}`))
  const { idToken } = await completeAuthorization(browser, ory, client, started, { kind: 'password', identifier: identity.email, password: identity.password })
  await ask(hydra, 'login_request_handled', 'GET', ory.hydraAdmin(`/admin/oauth2/auth/requests/login?login_challenge=${encodeURIComponent(started.challenge)}`))
  await ask(hydra, 'login_request_unknown', 'GET', ory.hydraAdmin(`/admin/oauth2/auth/requests/login?login_challenge=${randomHex(32)}`))

  const hook = await waitFor(() => capture.requests.find((request) => request.path === '/hooks/login'),
    { ...stack.wait, what: 'Kratos to call the login hook' })
  kratos['web_hook'] = sent(hook, JSON.parse(hook.body))

  await ask(hydra, 'revoke_login_session', 'DELETE', ory.hydraAdmin(`/admin/oauth2/auth/sessions/login?sid=${encodeURIComponent(idToken.sid)}`))
  const logout = await waitFor(() => capture.requests.find((request) => request.path === '/backchannel-logout'),
    { ...stack.wait, what: 'Hydra to send the back-channel logout' })
  const form = Object.fromEntries(new URLSearchParams(logout.body))
  const token = form['logout_token'] ?? ''
  hydra['backchannel_logout'] = {
    ...sent(logout, { ...form, logout_token: 'header.claims.signature' }),
    token: { header: sanitize.value(decodeProtectedHeader(token)), claims: sanitize.value(decodeJwt(token)) }
  }
  await ask(hydra, 'revoke_login_session_unknown_sid', 'DELETE', ory.hydraAdmin(`/admin/oauth2/auth/sessions/login?sid=${crypto.randomUUID()}`))
  await ask(hydra, 'revoke_consent_sessions', 'DELETE', ory.hydraAdmin(`/admin/oauth2/auth/sessions/consent?subject=${identity.id}&all=true`))
  await ask(hydra, 'list_clients', 'GET', ory.hydraAdmin('/admin/clients?page_size=1'))
  await ask(hydra, 'wrong_path_list_clients', 'GET', ory.hydraAdmin('/admin/admin/clients?page_size=1'))
  await ask(hydra, 'public_port_list_clients', 'GET', ory.hydraPublic('/admin/clients?page_size=1'))
  await ask(hydra, 'health_alive', 'GET', ory.hydraAdmin('/health/alive'))
  await ask(hydra, 'health_ready', 'GET', ory.hydraAdmin('/health/ready'))
  await ask(hydra, 'public_port_health_ready', 'GET', ory.hydraPublic('/health/ready'))

  // The listings the backfill and doctor page through: a second user's login session with two
  // clients (two consent sessions, one sid), and a second client.
  const lister = await stack.identity()
  sanitize.secret(lister.email, 'user-000000000001@example.com').secret(lister.password)
  const other = await stack.client({ backchannelLogoutUri: `${capture.origin}/backchannel-logout` })
  sanitize.secret(other.client_id, 'e2e-000000000002').secret(other.client_secret)
  const listerBrowser = stack.browser()
  await authorize(listerBrowser, ory, client, { kind: 'password', identifier: lister.email, password: lister.password })
  await authorize(listerBrowser, ory, other, { kind: 'kratos-session' })
  const consents = `/admin/oauth2/auth/sessions/consent?subject=${lister.id}`
  await ask(hydra, 'list_consent_sessions', 'GET', ory.hydraAdmin(consents))
  // Two consent sessions, one a page: Hydra v2.3.0 links no next page (its handler passes the page and
  // the page size to the Link header the wrong way round), only first and prev.
  await ask(hydra, 'list_consent_sessions_first_page', 'GET', ory.hydraAdmin(`${consents}&page_size=1`))
  await ask(hydra, 'list_consent_sessions_none', 'GET', ory.hydraAdmin(`/admin/oauth2/auth/sessions/consent?subject=${crypto.randomUUID()}`))
  const firstClients = await ask(hydra, 'list_clients_first_page', 'GET', ory.hydraAdmin('/admin/clients?page_size=1'))
  await ask(hydra, 'list_clients_next_page', 'GET', ory.hydraAdmin(`/admin/clients?page_size=1&page_token=${nextToken(firstClients)}`))

  // ---- Kratos ---------------------------------------------------------------------------------------
  const session = await ory.apiLogin(identity.email, identity.password)
  sanitize.secret(session.session_token)
  const sessions = `/admin/identities/${identity.id}/sessions`
  await ask(kratos, 'list_identity_sessions', 'GET', ory.kratosAdmin(sessions))
  await ask(kratos, 'delete_identity_sessions', 'DELETE', ory.kratosAdmin(sessions))
  await ask(kratos, 'delete_identity_sessions_none_left', 'DELETE', ory.kratosAdmin(sessions))
  await ask(kratos, 'delete_identity_sessions_no_identity', 'DELETE', ory.kratosAdmin(`/admin/identities/${crypto.randomUUID()}/sessions`))
  await ask(kratos, 'wrong_path_delete_identity_sessions', 'DELETE', ory.kratosAdmin(`/admin${sessions}`))
  await ask(kratos, 'public_port_delete_identity_sessions', 'DELETE', ory.kratosPublic(sessions))
  await ask(kratos, 'list_identities', 'GET', ory.kratosAdmin('/admin/identities?page_size=1'))
  await ask(kratos, 'wrong_path_list_identities', 'GET', ory.kratosAdmin('/admin/admin/identities?page_size=1'))
  await ask(kratos, 'public_port_list_identities', 'GET', ory.kratosPublic('/admin/identities?page_size=1'))
  await ask(kratos, 'health_ready_unprefixed', 'GET', ory.kratosAdmin('/health/ready'))
  await ask(kratos, 'health_alive', 'GET', ory.kratosAdmin('/admin/health/alive'))
  await ask(kratos, 'health_ready', 'GET', ory.kratosAdmin('/admin/health/ready'))
  await ask(kratos, 'public_port_health_ready', 'GET', ory.kratosPublic('/health/ready'))
  const firstIdentities = await ask(kratos, 'list_identities_first_page', 'GET', ory.kratosAdmin('/admin/identities?page_size=1'))
  await ask(kratos, 'list_identities_next_page', 'GET', ory.kratosAdmin(`/admin/identities?page_size=1&page_token=${nextToken(firstIdentities)}`))
  await ask(kratos, 'list_identities_count', 'GET', ory.kratosAdmin('/admin/identities?page=0&per_page=1'))

  const fresh: Record<string, RecordedFile> = {
    hydra: {
      hydra_version: ORY_VERSIONS.hydra,
      kratos_version: ORY_VERSIONS.kratos,
      description: 'Ory Hydra as the relay meets it: the public discovery, keys and back-channel logout; the admin login requests and revocations; the listings of consent sessions and clients, page by page; what a wrong path prefix and its public port answer on an admin path.',
      exchanges: hydra
    },
    kratos: {
      hydra_version: ORY_VERSIONS.hydra,
      kratos_version: ORY_VERSIONS.kratos,
      description: 'Ory Kratos as the relay meets it: the login web hook it sends; the admin revocation of an identity\'s sessions; the listing of identities, page by page and counted; what a wrong path prefix and its public port answer.',
      exchanges: kratos
    }
  }

  if (RECORD) {
    mkdirSync(RECORDINGS, { recursive: true })
    for (const [name, file] of Object.entries(fresh)) writeFileSync(join(RECORDINGS, `${name}.json`), `${JSON.stringify(file, null, 2)}\n`)
    t.comment(`recorded ${Object.keys(fresh).join(', ')} into test/fixtures/ory-recorded`)
  }

  for (const [name, file] of Object.entries(fresh)) {
    t.test(`${name}: the real servers still answer as recorded`, async (t) => {
      const recorded = loadRecorded(name)
      t.same({ hydra: recorded.hydra_version, kratos: recorded.kratos_version }, ORY_VERSIONS, 'recorded from the versions the suite runs')
      t.same(Object.keys(file.exchanges).sort(), Object.keys(recorded.exchanges).sort(), 'the same exchanges')
      for (const [exchange, now] of Object.entries(file.exchanges)) {
        const then = recorded.exchanges[exchange]
        if (then === undefined) continue
        t.same(comparable(now), comparable(then), exchange)
      }
    })
  }
}

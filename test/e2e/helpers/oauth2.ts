import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'
import type { Browser } from './browser.js'
import { call, expect, randomHex, type OAuth2Client, type OryPair } from './ory.js'

/** How the test, playing the login UI, answers Hydra's login request. */
export type LoginPlay =
  /** Kratos' browser login flow with the password method: what a user does on the login page. */
  | { kind: 'password', identifier: string, password: string }
  /** Kratos' browser registration flow with the password method: a sign-up through Hydra. */
  | { kind: 'register', email: string, password: string }
  /** The browser goes to Kratos' login flow with the challenge; Kratos, seeing its session, accepts by itself. */
  | { kind: 'kratos-session' }
  /** The UI accepts Hydra's login request through Hydra's admin API, for this subject. */
  | { kind: 'accept-at-hydra', subject: string }

/** Hydra's login request, as its admin API returns it (the members the suite reads). */
export interface LoginRequest {
  challenge: string
  skip: boolean
  subject: string
  session_id: string
  [member: string]: unknown
}

export interface Authorization {
  tokens: { id_token: string, access_token: string, refresh_token?: string, scope: string, token_type: string, expires_in: number }
  /** The ID token's claims, verified against Hydra's JWKS. */
  idToken: JWTPayload & { sid: string, sub: string }
  /** The login request as Hydra's admin API showed it to the UI. */
  loginRequest: LoginRequest
}

/** Reads a query parameter of a URL, failing with the URL when it is absent. */
function param (url: URL, name: string): string {
  const value = url.searchParams.get(name)
  if (value === null || value === '') throw new Error(`${url.href} has no ${name}`)
  return value
}

/** The UI's and the client's origins: where the browser's redirects stop, since the test plays both. */
function stopsAt (...origins: string[]): (location: URL) => boolean {
  const set = new Set(origins.map((origin) => new URL(origin).origin))
  return (location) => set.has(location.origin)
}

interface UiNode { attributes: { name?: string, value?: unknown }, messages?: Array<{ text: string }> }
interface KratosFlow { id: string, state?: string, ui: { action: string, method: string, nodes: UiNode[], messages?: Array<{ text: string }> } }

/** Reads a Kratos browser flow, as the UI does, with the browser's cookies (the CSRF cookie). */
async function readFlow (browser: Browser, ory: OryPair, kind: 'login' | 'registration' | 'settings', id: string): Promise<KratosFlow> {
  const response = await browser.request(ory.kratosPublic(`/self-service/${kind}/flows?id=${encodeURIComponent(id)}`), { headers: { accept: 'application/json' } })
  if (response.status !== 200) throw new Error(`Kratos' ${kind} flow ${id}: ${response.status} ${response.text.slice(0, 500)}`)
  return JSON.parse(response.text) as KratosFlow
}

function csrfToken (flow: KratosFlow): string {
  const value = flow.ui.nodes.find((node) => node.attributes.name === 'csrf_token')?.attributes.value
  if (typeof value !== 'string' || value === '') throw new Error(`Kratos' flow ${flow.id} has no csrf_token node`)
  return value
}

/** What Kratos says about a flow that came back to the UI instead of going on: its messages. */
async function flowMessages (browser: Browser, ory: OryPair, kind: 'login' | 'registration', location: URL): Promise<string> {
  const id = location.searchParams.get('flow')
  if (id === null) return location.href
  let flow: KratosFlow
  try {
    flow = await readFlow(browser, ory, kind, id)
  } catch {
    return location.href
  }
  const messages = [...(flow.ui.messages ?? []), ...flow.ui.nodes.flatMap((node) => node.messages ?? [])].map((m) => m.text)
  return `${location.href}: ${messages.join('; ') || 'no message'}`
}

/**
 * Plays a Kratos browser flow started with Hydra's login challenge, the way the self-service UI does:
 * create it, read it for the CSRF token, submit the password method as a form. Returns where Kratos
 * sends the browser: back to Hydra, with the login verifier.
 */
async function kratosBrowserFlow (browser: Browser, ory: OryPair, kind: 'login' | 'registration', challenge: string, fields: Record<string, string>): Promise<URL> {
  const ui = ory.addresses.ui
  const start = await browser.request(ory.kratosPublic(`/self-service/${kind}/browser?login_challenge=${encodeURIComponent(challenge)}`))
  if (start.location === undefined || !stopsAt(ui)(start.location)) {
    throw new Error(`Kratos' ${kind} flow did not send the browser to the UI: ${start.status} ${start.location?.href ?? start.text.slice(0, 500)}\n${browser.trail()}`)
  }
  const flow = await readFlow(browser, ory, kind, param(start.location, 'flow'))
  const submitted = await browser.request(flow.ui.action, { form: { csrf_token: csrfToken(flow), method: 'password', ...fields } })
  if (submitted.location === undefined || submitted.location.origin !== new URL(ory.issuer).origin) {
    const why = submitted.location !== undefined ? await flowMessages(browser, ory, kind, submitted.location) : submitted.text.slice(0, 1000)
    throw new Error(`Kratos' ${kind} did not go back to Hydra (${submitted.status}): ${why}\n${browser.trail()}\n${ory.tails()}`)
  }
  return submitted.location
}

/** A settings flow that Kratos answered: its state, what it says, and how long the submission took. */
export interface SettingsOutcome {
  status: number
  /** `success` once the new credential is saved and the flow's after hooks ran. */
  state: string | undefined
  /** Kratos' messages on the flow and its nodes (why it refused, or that it saved). */
  messages: string[]
  /** Milliseconds from submitting the form to Kratos' answer (its after hooks included). */
  ms: number
}

/**
 * Changes the password in Kratos' browser settings flow, as a self-service UI does it over JSON with
 * the browser's cookies (the session and the CSRF cookie): `GET /self-service/settings/browser` for a
 * new flow, its `csrf_token` node, then `POST` the password method to the flow's action.
 */
export async function changePassword (browser: Browser, ory: OryPair, password: string): Promise<SettingsOutcome> {
  const json = { accept: 'application/json' }
  const started = await browser.request(ory.kratosPublic('/self-service/settings/browser'), { headers: json })
  if (started.status !== 200) throw new Error(`Kratos' settings flow did not start: ${started.status} ${started.text.slice(0, 500)}\n${browser.trail()}`)
  const flow = JSON.parse(started.text) as KratosFlow
  const begin = performance.now()
  const submitted = await browser.request(flow.ui.action, { json: { method: 'password', password, csrf_token: csrfToken(flow) }, headers: json })
  const ms = performance.now() - begin
  let answer: Partial<KratosFlow> & { error?: { message?: string, reason?: string } } = {}
  try {
    answer = JSON.parse(submitted.text) as typeof answer
  } catch {}
  const messages = [
    ...(answer.ui?.messages ?? []),
    ...(answer.ui?.nodes ?? []).flatMap((node) => node.messages ?? [])
  ].map((m) => m.text)
  if (answer.error !== undefined) messages.push([answer.error.message, answer.error.reason].filter((m) => m !== undefined).join(': '))
  return { status: submitted.status, state: answer.state, messages, ms }
}

/** The Kratos session the browser's cookies hold, as `GET /sessions/whoami` on the public port answers it. */
export async function whoami (browser: Browser, ory: OryPair): Promise<{ status: number, session: { id: string, active: boolean, identity: { id: string } } | undefined }> {
  const answer = await browser.request(ory.kratosPublic('/sessions/whoami'), { headers: { accept: 'application/json' } })
  return { status: answer.status, session: answer.status === 200 ? JSON.parse(answer.text) as { id: string, active: boolean, identity: { id: string } } : undefined }
}

/** Accepts Hydra's consent request through its admin API, as a consent app does: every requested scope, remembered. */
async function acceptConsent (ory: OryPair, challenge: string): Promise<string> {
  const request = await expect<{ requested_scope: string[], requested_access_token_audience: string[] }>(200,
    ory.hydraAdmin(`/admin/oauth2/auth/requests/consent?consent_challenge=${encodeURIComponent(challenge)}`))
  const accepted = await expect<{ redirect_to: string }>(200, ory.hydraAdmin(`/admin/oauth2/auth/requests/consent/accept?consent_challenge=${encodeURIComponent(challenge)}`), {
    method: 'PUT',
    json: { grant_scope: request.requested_scope, grant_access_token_audience: request.requested_access_token_audience, remember: true, remember_for: 0 }
  })
  return accepted.redirect_to
}

/** Accepts Hydra's login request through its admin API, as a login UI does. */
export async function acceptLoginAtHydra (ory: OryPair, challenge: string, subject: string, extra: Record<string, unknown> = {}): Promise<string> {
  const accepted = await expect<{ redirect_to: string }>(200, ory.hydraAdmin(`/admin/oauth2/auth/requests/login/accept?login_challenge=${encodeURIComponent(challenge)}`), {
    method: 'PUT',
    json: { subject, remember: true, remember_for: 0, ...extra }
  })
  return accepted.redirect_to
}

/** Hydra's login request for a challenge, as the UI reads it. */
export async function loginRequest (ory: OryPair, challenge: string): Promise<LoginRequest> {
  return await expect<LoginRequest>(200, ory.hydraAdmin(`/admin/oauth2/auth/requests/login?login_challenge=${encodeURIComponent(challenge)}`))
}

/** The client's credentials as client_secret_basic sends them (RFC 6749 §2.3.1: form-encoded, then Base64). */
function basicAuth (client: OAuth2Client): string {
  const encode = (value: string): string => encodeURIComponent(value).replace(/%20/g, '+')
  return `Basic ${Buffer.from(`${encode(client.client_id)}:${encode(client.client_secret)}`).toString('base64')}`
}

/** Starts an authorization at Hydra and follows it to the login UI; returns the login challenge. */
export async function startAuthorization (browser: Browser, ory: OryPair, client: OAuth2Client, scope: string): Promise<{ challenge: string, state: string }> {
  const state = randomHex(12)
  const authorize = new URL(ory.hydraPublic('/oauth2/auth'))
  authorize.search = new URLSearchParams({
    client_id: client.client_id, response_type: 'code', scope, redirect_uri: client.redirect_uri, state, nonce: randomHex(12)
  }).toString()
  const atUi = await browser.followUntil(authorize, stopsAt(ory.addresses.ui, client.redirect_uri))
  if (atUi.pathname !== '/login') throw new Error(`Hydra sent the browser to ${atUi.href}, not the login UI\n${browser.trail()}`)
  return { challenge: param(atUi, 'login_challenge'), state }
}

/**
 * The whole authorization code flow, as a browser with the test as login and consent UI goes through
 * it: authorize at Hydra → the login UI (played as `login` says) → back to Hydra → the consent UI
 * (accepted at Hydra's admin API, remembered) → the client's redirect URI → the code exchanged at
 * `/oauth2/token`. The ID token is verified against Hydra's JWKS.
 */
export async function authorize (browser: Browser, ory: OryPair, client: OAuth2Client, login: LoginPlay, scope = 'openid offline_access'): Promise<Authorization> {
  return await completeAuthorization(browser, ory, client, await startAuthorization(browser, ory, client, scope), login)
}

/** The rest of {@link authorize}, from the login UI on, for an authorization {@link startAuthorization} began. */
export async function completeAuthorization (browser: Browser, ory: OryPair, client: OAuth2Client, started: { challenge: string, state: string }, login: LoginPlay): Promise<Authorization> {
  const { challenge, state } = started
  const request = await loginRequest(ory, challenge)
  let backAtHydra: URL
  switch (login.kind) {
    case 'password':
      backAtHydra = await kratosBrowserFlow(browser, ory, 'login', challenge, { identifier: login.identifier, password: login.password })
      break
    case 'register':
      backAtHydra = await kratosBrowserFlow(browser, ory, 'registration', challenge, { 'traits.email': login.email, password: login.password })
      break
    case 'kratos-session': {
      const response = await browser.request(ory.kratosPublic(`/self-service/login/browser?login_challenge=${encodeURIComponent(challenge)}`))
      if (response.location === undefined || response.location.origin !== new URL(ory.issuer).origin) {
        throw new Error(`Kratos did not accept the login request itself: ${response.status} ${response.location?.href ?? response.text.slice(0, 500)}\n${browser.trail()}`)
      }
      backAtHydra = response.location
      break
    }
    case 'accept-at-hydra':
      backAtHydra = new URL(await acceptLoginAtHydra(ory, challenge, login.subject))
      break
  }
  const atConsent = await browser.followUntil(backAtHydra, stopsAt(ory.addresses.ui, client.redirect_uri))
  if (atConsent.pathname !== '/consent') throw new Error(`Hydra sent the browser to ${atConsent.href}, not the consent UI\n${browser.trail()}`)
  const afterConsent = await acceptConsent(ory, param(atConsent, 'consent_challenge'))
  const atClient = await browser.followUntil(afterConsent, stopsAt(ory.addresses.ui, client.redirect_uri))
  if (atClient.origin + atClient.pathname !== client.redirect_uri) throw new Error(`Hydra sent the browser to ${atClient.href}, not the client\n${browser.trail()}`)
  if (atClient.searchParams.get('state') !== state) throw new Error(`the state came back as ${String(atClient.searchParams.get('state'))}`)

  const exchanged = await call<Authorization['tokens']>(ory.hydraPublic('/oauth2/token'), {
    form: { grant_type: 'authorization_code', code: param(atClient, 'code'), redirect_uri: client.redirect_uri },
    headers: { authorization: basicAuth(client) }
  })
  if (exchanged.status !== 200) throw new Error(`the code exchange answered ${exchanged.status}: ${exchanged.text}`)
  const { payload } = await jwtVerify(exchanged.body.id_token, createRemoteJWKSet(new URL(ory.hydraPublic('/.well-known/jwks.json'))), {
    issuer: ory.issuer, audience: client.client_id
  })
  if (typeof payload['sid'] !== 'string' || typeof payload.sub !== 'string') throw new Error(`the ID token has no sid or sub: ${JSON.stringify(payload)}`)
  return { tokens: exchanged.body, idToken: payload as Authorization['idToken'], loginRequest: request }
}

/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) in the browser: `/oauth2/sessions/logout`
 * with the ID token as hint → Hydra's logout UI, whose request the test accepts through Hydra's admin
 * API → back to Hydra, which ends the login session and sends back-channel logout → the post-logout
 * redirect.
 */
export async function rpInitiatedLogout (browser: Browser, ory: OryPair, idToken: string): Promise<URL> {
  const logout = new URL(ory.hydraPublic('/oauth2/sessions/logout'))
  logout.search = new URLSearchParams({ id_token_hint: idToken }).toString()
  const atUi = await browser.followUntil(logout, stopsAt(ory.addresses.ui))
  if (atUi.pathname !== '/logout') throw new Error(`Hydra sent the browser to ${atUi.href}, not the logout UI\n${browser.trail()}`)
  const challenge = param(atUi, 'logout_challenge')
  const accepted = await expect<{ redirect_to: string }>(200, ory.hydraAdmin(`/admin/oauth2/auth/requests/logout/accept?logout_challenge=${encodeURIComponent(challenge)}`), { method: 'PUT' })
  return await browser.followUntil(accepted.redirect_to, stopsAt(ory.addresses.ui))
}

/** A refresh at Hydra's token endpoint; returns the status and body, so that a refused refresh can be asserted. */
export async function refresh (ory: OryPair, client: OAuth2Client, refreshToken: string): Promise<{ status: number, body: unknown }> {
  const answer = await call(ory.hydraPublic('/oauth2/token'), {
    form: { grant_type: 'refresh_token', refresh_token: refreshToken },
    headers: { authorization: basicAuth(client) }
  })
  return { status: answer.status, body: answer.body }
}

import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import Jsonnet from '@arakoodev/jsonnet'
import t from 'tap'
import { parseCredentialsChangedBody } from '../../src/usecases/credentials-changed.js'
import { build, eventually } from '../helper.js'

const template = readFileSync(new URL('../../config/kratos/credentials-changed.jsonnet', import.meta.url), 'utf8')

/**
 * Evaluates the template as Kratos does: the file is a function and the hook context its `ctx`
 * top-level argument (go-jsonnet's TLACode). JSON is Jsonnet, so the context is passed as code.
 */
function evaluate (ctx: unknown): unknown {
  const vm = new Jsonnet()
  let output: string
  try {
    output = vm.evaluateSnippet(`(${template})(${JSON.stringify(ctx)})`)
  } finally {
    vm.destroy()
  }
  // This binding returns an evaluation error as its text instead of throwing it.
  try {
    return JSON.parse(output)
  } catch {
    throw new Error(output)
  }
}

const KRATOS = 'http://127.0.0.1:4433'

function identity (id: string = randomUUID()) {
  return { id, schema_id: 'default', state: 'active', traits: { email: 'user@example.com' }, metadata_public: null }
}

function ui (action: string) {
  return { action, method: 'POST', nodes: [{ type: 'input', group: 'default', attributes: { name: 'csrf_token', type: 'hidden', value: 'x' } }] }
}

/**
 * The context of a settings hook after Kratos saved the change, as selfservice/hook/web_hook.go builds
 * it: the settings flow (state success, with its identity), the request, the identity. Kratos v1.3.1
 * sets no session, and sets `flow.active` only for an oidc link; `v26` adds the session.
 */
function settingsContext (options: { identityId?: string, version: 'v1.3.1' | 'v26', active?: string, requestUrl?: string, flowRequestUrl?: string }) {
  const id = options.identityId ?? randomUUID()
  const flowId = randomUUID()
  const who = identity(id)
  return {
    flow: {
      id: flowId,
      type: 'browser',
      expires_at: '2026-11-22T03:00:00Z',
      issued_at: '2026-11-22T02:30:00Z',
      request_url: options.flowRequestUrl ?? `${KRATOS}/self-service/settings/browser`,
      ...(options.active !== undefined ? { active: options.active } : {}),
      ui: ui(`${KRATOS}/self-service/settings?flow=${flowId}`),
      identity: who,
      state: 'success'
    },
    request_headers: { Accept: ['application/json'], 'Content-Type': ['application/json'] },
    request_method: 'POST',
    request_url: options.requestUrl ?? `${KRATOS}/self-service/settings?flow=${flowId}`,
    request_cookies: { csrf_token_806060ca: 'x' },
    identity: who,
    ...(options.version === 'v26' ? { session: { id: randomUUID(), active: true, authenticator_assurance_level: 'aal1', identity: who } } : {})
  }
}

/**
 * The context of a recovery hook: the recovery flow (state passed_challenge, `active` its method, no
 * identity of its own), the identity of the new session; no session in any version.
 */
function recoveryContext (options: { identityId?: string, method?: string }) {
  const id = options.identityId ?? randomUUID()
  const flowId = randomUUID()
  return {
    flow: {
      id: flowId,
      type: 'browser',
      expires_at: '2026-11-22T03:00:00Z',
      issued_at: '2026-11-22T02:30:00Z',
      request_url: `${KRATOS}/self-service/recovery/browser`,
      ...(options.method !== undefined ? { active: options.method } : {}),
      ui: ui(`${KRATOS}/self-service/recovery?flow=${flowId}`),
      state: 'passed_challenge'
    },
    request_headers: { Accept: ['text/html'] },
    request_method: 'POST',
    request_url: `${KRATOS}/self-service/recovery?flow=${flowId}`,
    request_cookies: {},
    identity: identity(id)
  }
}

t.test('a settings change, as Kratos v1.3.1 and v26 pass it, becomes the hook body the relay expects', async (t) => {
  for (const version of ['v1.3.1', 'v26'] as const) {
    const identityId = randomUUID()
    const body = evaluate(settingsContext({ identityId, version }))
    t.same(body, { identity_id: identityId, flow: 'settings' }, `${version}, password: Kratos does not tell the method`)
    t.same(parseCredentialsChangedBody(body), { identityId, flow: 'settings' })
  }
  for (const method of ['password', 'totp', 'webauthn', 'passkey', 'lookup_secret']) {
    const identityId = randomUUID()
    const body = evaluate(settingsContext({ identityId, version: 'v26', active: method }))
    t.same(body, { identity_id: identityId, flow: 'settings', method }, `${method}, where the flow names it`)
    t.same(parseCredentialsChangedBody(body), { identityId, flow: 'settings', method })
  }
})

t.test('an oidc link is told by the flow (v1.3.1 sets active) or by the callback URL', async (t) => {
  const identityId = randomUUID()
  const callback = `${KRATOS}/self-service/methods/oidc/callback/google?code=x&state=y`
  t.same(evaluate(settingsContext({ identityId, version: 'v1.3.1', active: 'oidc', requestUrl: callback })), { identity_id: identityId, flow: 'settings', method: 'oidc' })
  t.same(evaluate(settingsContext({ identityId, version: 'v26', requestUrl: callback })), { identity_id: identityId, flow: 'settings', method: 'oidc' })
})

t.test('a recovery, with its method (code or link), in any version', async (t) => {
  for (const method of ['code', 'link']) {
    const identityId = randomUUID()
    const body = evaluate(recoveryContext({ identityId, method }))
    t.same(body, { identity_id: identityId, flow: 'recovery', method }, method)
    t.same(parseCredentialsChangedBody(body), { identityId, flow: 'recovery', method })
  }
  const identityId = randomUUID()
  t.same(evaluate(recoveryContext({ identityId })), { identity_id: identityId, flow: 'recovery' }, 'no method named')
})

t.test('the password set in the settings flow a recovery opens is a settings change', async (t) => {
  // Kratos creates that settings flow from the recovery request: its request_url is the recovery's.
  const identityId = randomUUID()
  const ctx = settingsContext({ identityId, version: 'v1.3.1', flowRequestUrl: `${KRATOS}/self-service/recovery?flow=${randomUUID()}` })
  t.same(evaluate(ctx), { identity_id: identityId, flow: 'settings' })
})

t.test('a method longer than the relay takes is cut, not refused', async (t) => {
  const body = evaluate(settingsContext({ version: 'v26', active: 'x'.repeat(100) })) as { method: string }
  t.equal(body.method.length, 64)
  t.ok(parseCredentialsChangedBody(body))
})

t.test('a context without an identity fails loudly: the template is wired where it does not belong', async (t) => {
  for (const ctx of [{ ...settingsContext({ version: 'v1.3.1' }), identity: null }, { flow: { state: 'choose_method' }, request_method: 'GET' }]) {
    t.throws(() => evaluate(ctx), /runtime error: logout-relay: the hook context has no identity/)
  }
})

t.test('the evaluated body, sent as Kratos sends it, ends every Hydra login session of the identity', async (t) => {
  const relay = await build(t)
  const { identityId, sid } = await relay.login(2)
  const body = evaluate(settingsContext({ identityId, version: 'v1.3.1' }))
  const response = await relay.app.inject({
    method: 'POST',
    url: '/hooks/credentials-changed',
    headers: { authorization: `Bearer ${relay.config.loginHook.apiKeys[0] ?? ''}`, 'content-type': 'application/json' },
    payload: JSON.stringify(body)
  })
  t.equal(response.statusCode, 204)
  const [call] = await relay.hydra.waitForCalls('revokeOAuth2LoginSessions', 1)
  t.equal(call?.query.get('sid'), sid)
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200, 'Hydra\'s back-channel logout for it')
  t.ok(await eventually(async () => /outcome="already_handled"/.test((await relay.app.inject('/metrics')).body)))
  t.equal(relay.kratos.callsOf('deleteIdentitySessions').length, 0)
})

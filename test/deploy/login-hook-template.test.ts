import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import Jsonnet from '@arakoodev/jsonnet'
import t from 'tap'
import { parseLoginHookBody } from '../../src/usecases/login-hook.js'
import { build } from '../helper.js'

const template = readFileSync(new URL('../../config/kratos/login-hook.jsonnet', import.meta.url), 'utf8')

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

function cancelled (ctx: unknown): boolean {
  try {
    evaluate(ctx)
    return false
  } catch (err) {
    // Kratos cancels the call when evaluation fails with the runtime error "cancel".
    return /^runtime error: cancel\n/i.test((err as Error).message)
  }
}

function loginContext (challenge: string | null | undefined, identityId = randomUUID()) {
  return {
    flow: {
      id: randomUUID(),
      type: 'browser',
      expires_at: '2026-11-22T03:00:00Z',
      issued_at: '2026-11-22T02:30:00Z',
      request_url: 'http://127.0.0.1:4433/self-service/login/browser',
      active: 'password',
      ui: { action: 'http://127.0.0.1:4433/self-service/login?flow=x', method: 'POST', nodes: [] },
      refresh: false,
      requested_aal: 'aal1',
      state: 'choose_method',
      ...(challenge !== undefined ? { oauth2_login_challenge: challenge } : {})
    },
    request_headers: { Accept: ['text/html'], 'User-Agent': ['Mozilla/5.0'] },
    request_method: 'POST',
    request_url: 'http://127.0.0.1:4433/self-service/login?flow=x',
    request_cookies: {},
    identity: {
      id: identityId,
      schema_id: 'default',
      state: 'active',
      traits: { email: 'user@example.com' },
      metadata_public: null
    },
    session: { id: randomUUID(), active: true, authenticator_assurance_level: 'aal1' }
  }
}

t.test('a login through Hydra becomes the hook body the relay expects', async (t) => {
  const identityId = randomUUID()
  const body = evaluate(loginContext('7bd8f3c5a2e94b1d8f0b', identityId))
  t.same(body, { identity_id: identityId, login_challenge: '7bd8f3c5a2e94b1d8f0b' })
  t.same(parseLoginHookBody(body), { identityId, loginChallenge: '7bd8f3c5a2e94b1d8f0b' })
})

t.test('a registration through Hydra (no session yet) works the same', async (t) => {
  const identityId = randomUUID()
  const { session, ...registration } = loginContext('c0ffee', identityId)
  t.ok(session)
  t.same(evaluate({ ...registration, flow: { ...registration.flow, type: 'browser', active: 'password' } }), { identity_id: identityId, login_challenge: 'c0ffee' })
})

t.test('logins that did not come from Hydra cancel the call', async (t) => {
  t.ok(cancelled(loginContext(undefined)), 'no challenge member')
  t.ok(cancelled(loginContext(null)), 'null challenge')
  t.ok(cancelled(loginContext('')), 'empty challenge')
  t.ok(cancelled({ ...loginContext('abc'), identity: null }), 'no identity')
  t.ok(cancelled({ request_method: 'POST' }), 'no flow at all')
})

t.test('the evaluated body, sent as Kratos sends it, indexes the login', async (t) => {
  const relay = await build(t)
  const identityId = randomUUID()
  const sid = randomUUID()
  const request = relay.hydra.addLoginRequest({ sessionId: sid })
  relay.kratos.addSessions(identityId, 2)
  const body = evaluate(loginContext(request.challenge, identityId))
  t.equal((await relay.hook(body)).statusCode, 204)
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.same(relay.kratos.revokedIdentities(), [identityId])
})

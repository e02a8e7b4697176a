import { randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import type * as OryClient from '@ory/client'
import t from 'tap'
import { UpstreamError, createHydraAdmin, createKratosAdmin, uuidPathTemplate } from '../../src/ory/admin.js'
import { HydraDouble } from '../doubles/hydra.js'
import { KratosDouble } from '../doubles/kratos.js'
import { checkContracts } from '../helper.js'

async function failure (promise: Promise<unknown>): Promise<UpstreamError | undefined> {
  try {
    await promise
    return undefined
  } catch (err) {
    if (err instanceof UpstreamError) return err
    throw err
  }
}

t.test('Kratos: 204 and 404 both mean the sessions are gone', async (t) => {
  const kratos = await new KratosDouble({ token: 'kratos-secret-token' }).listen()
  t.teardown(() => kratos.close())
  checkContracts(t, kratos)
  const admin = createKratosAdmin({ adminUrl: `${kratos.url}/`, token: 'kratos-secret-token', timeoutMs: 1500 })
  t.teardown(admin.close)
  const identityId = randomUUID()
  kratos.addSessions(identityId, 2)
  t.same(await admin.revokeIdentitySessions(identityId), { status: 204 })
  t.equal(kratos.activeSessions(identityId), 0)
  t.same(await admin.revokeIdentitySessions(identityId), { status: 404 })
  const calls = kratos.callsOf('deleteIdentitySessions')
  t.equal(calls.length, 2, 'the second call got a 404 and succeeded')
  t.equal(calls[0]?.path, `/admin/identities/${identityId}/sessions`)
  t.equal(calls[0]?.authorization, 'Bearer kratos-secret-token')
})

t.test("a 404 that is not Ory's own answer is misrouted, never 'nothing left to revoke'", async (t) => {
  const kratos = await new KratosDouble().listen()
  const hydra = await HydraDouble.start()
  t.teardown(async () => { await kratos.close(); await hydra.close() })
  kratos.expectStrays()
  hydra.expectStrays()
  // One /admin too many: every operation is a route that does not exist.
  const kratosAdmin = createKratosAdmin({ adminUrl: `${kratos.url}/admin`, timeoutMs: 1500 })
  const hydraAdmin = createHydraAdmin({ adminUrl: `${hydra.url}/admin`, timeoutMs: 1500 })
  t.teardown(async () => { await kratosAdmin.close(); await hydraAdmin.close() })
  const kratosFailure = await failure(kratosAdmin.revokeIdentitySessions(randomUUID()))
  t.match(kratosFailure, { misrouted: true, transient: false, status: 404 }, "Kratos' router: text/plain 404 page not found")
  t.match(kratosFailure?.message, /not kratos's admin API/)
  // Hydra's admin router answers a route it does not have with a JSON 404; and Hydra answers 204 for
  // a sid or subject it does not know, so any 404 there means the route is not there.
  t.match(await failure(hydraAdmin.revokeLoginSession(randomUUID())), { misrouted: true, status: 404 })
  t.match(await failure(hydraAdmin.revokeConsentSessions(randomUUID())), { misrouted: true, status: 404 })
  t.ok(kratos.strays.some((stray) => stray.startsWith('DELETE /admin/admin/identities/')))
})

t.test("a UUID path template makes @ory/client's own request, and builds it once", async (t) => {
  const { Configuration, IdentityApiAxiosParamCreator } = createRequire(import.meta.url)('@ory/client') as typeof OryClient
  const identities = IdentityApiAxiosParamCreator(new Configuration({ basePath: 'http://kratos:4434', accessToken: 'kratos-secret-token' }))
  const built: string[] = []
  const template = uuidPathTemplate(async (id) => {
    built.push(id)
    return await identities.deleteIdentitySessions(id)
  })
  const ids = [randomUUID(), randomUUID(), randomUUID().toUpperCase()]
  for (const id of ids) {
    const request = await template(id)
    t.same(request, await identities.deleteIdentitySessions(id), `the builder's request for ${id}`)
    t.equal(request.url, `/admin/identities/${id}/sessions`)
    t.same(request.options.headers, { Authorization: 'Bearer kratos-secret-token' })
  }
  t.equal(built.length, 1, 'one build, for the stand-in, serves every UUID')
  t.notOk(ids.includes(built[0] ?? ''), 'built for a stand-in, not for a caller\'s id')

  // Not a UUID: the builder itself, which encodes it.
  for (const value of ['a b/c?d', '../../admin', `${randomUUID()}/x`]) {
    const request = await template(value)
    t.same(request, await identities.deleteIdentitySessions(value), `the builder's request for ${JSON.stringify(value)}`)
    t.equal(built.at(-1), value)
  }
  t.ok(Object.isFrozen((await template(randomUUID())).options.headers), 'the request shared by every call cannot be changed')
})

t.test('a path template whose builder does not show the stand-in once falls back to the builder', async (t) => {
  const calls: string[] = []
  const template = uuidPathTemplate(async (id) => {
    calls.push(id)
    return { url: `/x/${id}/y/${id}`, options: { method: 'DELETE' } }
  })
  const id = randomUUID()
  t.same(await template(id), { url: `/x/${id}/y/${id}`, options: { method: 'DELETE' } })
  t.same(await template(id), { url: `/x/${id}/y/${id}`, options: { method: 'DELETE' } })
  t.same(calls.slice(1), [id, id], 'every call after the stand-in went through the builder')
})

t.test('Kratos: failures are classified, and never carry the token', async (t) => {
  const kratos = await new KratosDouble({ token: 'kratos-secret-token' }).listen()
  t.teardown(() => kratos.close())
  checkContracts(t, kratos)
  const admin = createKratosAdmin({ adminUrl: kratos.url, token: 'kratos-secret-token', timeoutMs: 1500 })
  t.teardown(admin.close)
  const cases: Array<[Parameters<KratosDouble['fail']>[1], boolean, number | undefined]> = [
    [{ status: 500 }, true, 500],
    [{ status: 503 }, true, 503],
    [{ status: 429 }, true, 429],
    [{ status: 408 }, true, 408],
    [{ kind: 'timeout' }, true, undefined],
    [{ kind: 'reset' }, true, undefined],
    [{ status: 401 }, false, 401],
    [{ status: 403 }, false, 403],
    [{ status: 400 }, false, 400]
  ]
  for (const [fault, transient, status] of cases) {
    kratos.fail('deleteIdentitySessions', { ...fault, times: 1 })
    const err = await failure(admin.revokeIdentitySessions(randomUUID()))
    t.equal(err?.transient, transient, `${JSON.stringify(fault)} transient=${String(transient)}`)
    t.equal(err?.status, status)
    t.equal(err?.service, 'kratos')
    t.notMatch(JSON.stringify({ ...err, message: err?.message, stack: err?.stack, cause: String(err?.cause) }), /kratos-secret-token/)
  }
  const wrongToken = createKratosAdmin({ adminUrl: kratos.url, token: 'wrong', timeoutMs: 1500 })
  t.teardown(wrongToken.close)
  t.equal((await failure(wrongToken.revokeIdentitySessions(randomUUID())))?.status, 401)
  const nobody = createKratosAdmin({ adminUrl: 'http://127.0.0.1:1', token: 'kratos-secret-token', timeoutMs: 1500 })
  t.teardown(nobody.close)
  const refused = await failure(nobody.revokeIdentitySessions(randomUUID()))
  t.equal(refused?.transient, true)
  t.equal(refused?.message, 'kratos DELETE /admin/identities/{id}/sessions: no answer (ECONNREFUSED)')
})

t.test('the generic admin call: any GET with the admin token, on the same client, its answer unjudged', async (t) => {
  const kratos = await new KratosDouble({ token: 'kratos-secret-token' }).listen()
  const hydra = await HydraDouble.start({ token: 'hydra-secret' })
  t.teardown(() => kratos.close())
  t.teardown(() => hydra.close())
  checkContracts(t, kratos, hydra)
  const kratosAdmin = createKratosAdmin({ adminUrl: kratos.url, token: 'kratos-secret-token', timeoutMs: 1500 })
  const hydraAdmin = createHydraAdmin({ adminUrl: hydra.url, token: 'hydra-secret', timeoutMs: 1500 })
  t.teardown(kratosAdmin.close)
  t.teardown(hydraAdmin.close)
  const identityId = randomUUID()
  kratos.addSessions(identityId, 2)
  const sessions = await kratosAdmin.get(`/admin/identities/${identityId}/sessions?active=true`)
  t.equal(sessions.status, 200)
  t.match(sessions.headers['content-type'], /^application\/json/)
  t.equal((JSON.parse(sessions.body) as unknown[]).length, 2)
  const [call] = kratos.callsOf('listIdentitySessions')
  t.equal(call?.authorization, 'Bearer kratos-secret-token')
  t.equal(call?.query.get('active'), 'true')

  const alive = await hydraAdmin.get('/health/alive')
  t.same([alive.status, JSON.parse(alive.body)], [200, { status: 'ok' }])
  kratos.fail('listIdentitySessions', { status: 503, times: 1 })
  t.equal((await kratosAdmin.get(`/admin/identities/${identityId}/sessions`)).status, 503, 'any status is the caller\'s to judge')
  kratos.fail('listIdentitySessions', { kind: 'reset', times: 1 })
  const reset = await failure(kratosAdmin.get(`/admin/identities/${identityId}/sessions`))
  t.same([reset?.transient, reset?.service, reset?.message], [true, 'kratos', 'kratos GET /admin/identities/' + identityId + '/sessions: no answer (UND_ERR_SOCKET)'])
})

t.test('Hydra: login challenge → session id; revocations', async (t) => {
  const hydra = await HydraDouble.start({ token: 'hydra-secret' })
  t.teardown(() => hydra.close())
  checkContracts(t, hydra)
  const admin = createHydraAdmin({ adminUrl: hydra.url, token: 'hydra-secret', timeoutMs: 1500 })
  t.teardown(admin.close)
  const sid = randomUUID()
  const request = hydra.addLoginRequest({ sessionId: sid })
  t.equal(await admin.loginSessionId(request.challenge), sid)
  t.equal(await admin.loginSessionId('unknown'), null)
  t.equal(await admin.loginSessionId(hydra.addLoginRequest({ sessionId: randomUUID(), handled: true }).challenge), null)
  hydra.fail('getOAuth2LoginRequest', { status: 502, times: 1 })
  t.equal((await failure(admin.loginSessionId(request.challenge)))?.transient, true)

  t.same(await admin.revokeLoginSession(sid), { status: 204 })
  t.equal(hydra.callsOf('revokeOAuth2LoginSessions')[0]?.query.get('sid'), sid)
  t.same(await admin.revokeConsentSessions('subject-1'), { status: 204 })
  const consent = hydra.callsOf('revokeOAuth2ConsentSessions')[0]
  t.equal(consent?.query.get('subject'), 'subject-1')
  t.equal(consent?.query.get('all'), 'true')
  t.equal(consent?.authorization, 'Bearer hydra-secret')
})

import { randomUUID } from 'node:crypto'
import t from 'tap'
import { UpstreamError, createHydraAdmin, createKratosAdmin } from '../../src/ory/admin.js'
import { countIdentities, listClients, listConsentSessions, listIdentitiesPage } from '../../src/ory/listings.js'
import { linkRelations, nextPageToken } from '../../src/ory/pagination.js'
import { HydraDouble } from '../doubles/hydra.js'
import { KratosDouble } from '../doubles/kratos.js'
import { checkContracts } from '../helper.js'

const hydra = await HydraDouble.start()
const kratos = await new KratosDouble().listen()
const admin = { timeoutMs: 2000 }
const hydraAdmin = createHydraAdmin({ ...admin, adminUrl: hydra.url })
const kratosAdmin = createKratosAdmin({ ...admin, adminUrl: kratos.url })
t.teardown(async () => {
  await Promise.all([hydraAdmin.close(), kratosAdmin.close()])
  await Promise.all([hydra.close(), kratos.close()])
})
checkContracts(t, hydra, kratos)

t.test('Link headers: relations, quoted or not, several in one; the next page token', async (t) => {
  t.same(linkRelations('</a?page_token=1>; rel="first",</a?x=1,2&page_token=2>; rel="next"'), { first: '/a?page_token=1', next: '/a?x=1,2&page_token=2' })
  t.same(linkRelations(['<https://x.example/a?page_token=3>; rel=next', '</b>; rel="prev last"']), { next: 'https://x.example/a?page_token=3', prev: '/b', last: '/b' })
  t.equal(nextPageToken('</a?page_size=2&page_token=a%2Bb>; rel="next"'), 'a+b')
  t.equal(nextPageToken('</a?page_size=2>; rel="first"'), undefined)
  t.equal(nextPageToken(undefined), undefined)
})

t.test('identities: page after page in id order, the next token from the Link header', async (t) => {
  const ids = kratos.addIdentities(5).sort()
  const seen: string[] = []
  let token: string | undefined
  let pages = 0
  do {
    const page = await listIdentitiesPage(kratosAdmin, token, 2)
    seen.push(...page.ids)
    token = page.next
    pages++
  } while (token !== undefined)
  t.same(seen, ids)
  t.equal(pages, 3)
  t.same(kratos.callsOf('listIdentities').map((call) => call.query.get('page_size')), ['2', '2', '2'])
  t.equal(await countIdentities(kratosAdmin), 5, 'the count of the older page pagination')
  kratos.fail('listIdentities', { status: 500, times: 1 })
  t.equal(await countIdentities(kratosAdmin), undefined, 'no count is no error')
})

t.test('consent sessions: asked ones only, newest first; an ended login session has no sid; pages Hydra does not link are counted', async (t) => {
  const subject = randomUUID()
  const [live, ended] = [randomUUID(), '']
  hydra.addConsent({ subject, sid: live, clientId: 'app-a' })
  hydra.addConsent({ subject, sid: live, clientId: 'app-b', skip: true })
  hydra.addConsent({ subject, sid: ended, clientId: 'app-c' })
  hydra.addConsent({ subject, sid: randomUUID(), clientId: 'app-d', rememberFor: 60, requestedAt: Date.now() - 120_000 })
  const { sessions, unread } = await listConsentSessions(hydraAdmin, subject)
  t.same(sessions, [{ sid: undefined, clientId: 'app-c' }, { sid: live, clientId: 'app-a' }], 'the skipped and the expired consents are not listed')
  t.equal(unread, 0)
  t.same(await listConsentSessions(hydraAdmin, randomUUID()), { sessions: [], unread: 0 })

  // Seven consents, two a page: Hydra v2.3.0's next link names page size 1 and an offset of 3 (rows
  // 4 and 5 would be skipped): it is not followed, and the rest is counted as unread.
  const many = randomUUID()
  for (let i = 0; i < 7; i++) hydra.addConsent({ subject: many, sid: randomUUID() })
  const paged = await listConsentSessions(hydraAdmin, many, 2)
  t.equal(paged.sessions.length, 2, 'the newest page')
  t.equal(paged.unread, 5, 'the five older ones are counted as unread')
  t.same(hydra.callsOf('listOAuth2ConsentSessions').filter((call) => call.query.get('subject') === many).map((call) => call.query.get('page_size')), ['2'])
})

t.test('clients: every page; an empty listing ends though Hydra links a next page', async (t) => {
  hydra.clients.clear()
  t.same(await listClients(hydraAdmin), { clients: [], truncated: false })
  t.equal(hydra.callsOf('listOAuth2Clients').length, 1)
  for (let i = 0; i < 5; i++) hydra.addClient(`app-${i}`, { backchannel_logout_uri: i === 0 ? '' : `http://relay/${i}` })
  const { clients } = await listClients(hydraAdmin, 2)
  t.same(clients.map((client) => client.clientId), ['app-0', 'app-1', 'app-2', 'app-3', 'app-4'])
  t.same(clients[0], { clientId: 'app-0', backchannelLogoutUri: '', grantTypes: ['authorization_code', 'refresh_token'], responseTypes: ['code'] })
})

t.test('an answer that is no listing is an UpstreamError: transient, refused, or misrouted', async (t) => {
  kratos.fail('listIdentities', { status: 503, times: 1 })
  const transient = await listIdentitiesPage(kratosAdmin, undefined).catch((err: unknown) => err)
  t.ok(transient instanceof UpstreamError && transient.transient)

  const guarded = await HydraDouble.start({ token: 'the-token' })
  t.teardown(() => guarded.close())
  const wrongToken = createHydraAdmin({ ...admin, adminUrl: guarded.url, token: 'not-the-token' })
  t.teardown(() => wrongToken.close())
  const refused = await listConsentSessions(wrongToken, randomUUID()).catch((err: unknown) => err)
  t.ok(refused instanceof UpstreamError && !refused.transient && refused.status === 401)

  hydra.expectStrays()
  const prefixed = createHydraAdmin({ ...admin, adminUrl: `${hydra.url}/admin` })
  t.teardown(() => prefixed.close())
  const misrouted = await listClients(prefixed).catch((err: unknown) => err)
  t.ok(misrouted instanceof UpstreamError && misrouted.misrouted, 'a router\'s 404 for a wrong path')
})

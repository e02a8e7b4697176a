import { randomUUID } from 'node:crypto'
import t from 'tap'
import { keyFingerprint } from '../../../src/http/api-keys.js'
import { HOOK_KEY, build, eventually, type BuildOptions, type TestContext } from '../../helper.js'
import { startRedis } from '../../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.close())

const ADMIN_KEY = 'admin-key-9a8b7c6d5e4f3021'

interface RevocationBody {
  id: string
  job_id: string
  outcome: string
  kind: string
  identity_id?: string
  sid?: string
  cause: { kind: string, client_id?: string, jti?: string, key_fingerprint?: string } | null
  requested_at: string
  finished_at: string
  attempts: number
  history: Array<{ at: string, outcome: string }>
}

async function buildAudit (t: TestContext, options: BuildOptions = {}) {
  const relay = await build(t, { redis, ...options, env: { ADMIN_API_KEYS: ADMIN_KEY, ...options.env } })
  return {
    ...relay,
    revocations: (id: string, query = '', key: string | null = ADMIN_KEY) => relay.app.inject({
      method: 'GET',
      url: `/admin/identities/${id}/revocations${query}`,
      headers: key === null ? {} : { authorization: `Bearer ${key}` }
    }),
    /** A signed logout token for the sid, and its jti. */
    async token (sid: string, clientId = 'app-a') {
      const token = await relay.hydra.logoutToken(sid, { clientId })
      return { token, jti: (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }).jti }
    }
  }
}

/** The audit log lines written so far, parsed. */
function auditLines (logs: string[]): Array<Record<string, unknown>> {
  return logs.filter((line) => line.includes('"audit":true')).map((line) => JSON.parse(line) as Record<string, unknown>)
}

t.test('an identity\'s revocations, newest first, whatever asked for them; one audit log line each, without a secret', async (t) => {
  const relay = await buildAudit(t)
  const { identityId, sid } = await relay.login(2)
  const tokens: string[] = []

  // A back-channel logout.
  const first = await relay.token(sid)
  tokens.push(first.token)
  t.equal((await relay.logout(first.token)).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)

  // A logout that arrived before its login: the late login hook revokes.
  const lateSid = randomUUID()
  const late = await relay.token(lateSid)
  tokens.push(late.token)
  t.equal((await relay.logout(late.token)).statusCode, 200)
  t.equal((await relay.hook({ identity_id: identityId, sid: lateSid })).statusCode, 204)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 2)

  // The admin API: every sid at Hydra, then Kratos.
  const everywhere = await relay.app.inject({ method: 'POST', url: `/admin/identities/${identityId}/logout`, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  t.equal(everywhere.statusCode, 202)
  t.ok(await eventually(async () => (await relay.revocations(identityId)).json<{ revocations: unknown[] }>().revocations.length === 5))

  const response = await relay.revocations(identityId.toUpperCase())
  t.equal(response.statusCode, 200)
  t.equal(response.headers['cache-control'], 'no-store')
  const { identity_id: listedId, revocations } = response.json<{ identity_id: string, revocations: RevocationBody[] }>()
  t.equal(listedId, identityId)
  const finished = revocations.map((record) => Date.parse(record.finished_at))
  t.same(finished, [...finished].sort((a, b) => b - a), 'newest first')
  const byCause = Object.fromEntries(revocations.map((record) => [`${record.cause?.kind ?? ''}/${record.kind}${record.sid !== undefined ? `/${record.sid}` : ''}`, record]))
  t.match(byCause[`backchannel-logout/kratos-sessions/${sid}`], { outcome: 'succeeded', identity_id: identityId, cause: { client_id: 'app-a', jti: first.jti }, attempts: 1 })
  t.match(byCause[`late-login-hook/kratos-sessions/${lateSid}`], { outcome: 'succeeded', identity_id: identityId })
  t.match(byCause['admin-api/kratos-sessions'], { outcome: 'succeeded', cause: { key_fingerprint: keyFingerprint(ADMIN_KEY) } })
  t.match(byCause[`admin-api/hydra-login-session/${sid}`], { identity_id: identityId }, 'a Hydra login session is the identity\'s too')
  t.ok(revocations.every((record) => Date.parse(record.requested_at) <= Date.parse(record.finished_at) && record.history.at(-1)?.outcome === 'succeeded'))
  t.equal((await relay.revocations(identityId, '?limit=2')).json<{ revocations: unknown[] }>().revocations.length, 2)
  t.same((await relay.revocations(randomUUID())).json<{ revocations: unknown[] }>().revocations, [], 'another identity: none')

  // Each finished revocation is one info line marked for audit, with the same record.
  const lines = auditLines(relay.logs)
  t.equal(lines.length, 5, 'one per revocation: the logout, the late hook, and the global logout\'s two sids and Kratos step')
  for (const line of lines) {
    t.match(line, { level: 30, audit: true, event: 'revocation', msg: 'revocation finished', service: 'logout-relay' })
  }
  t.ok(lines.some((line) => (line['revocation'] as { cause: { jti?: string } | null }).cause?.jti === first.jti), 'the token is named by its jti')
  const ids = new Set(revocations.map((record) => record.id))
  t.ok(lines.every((line) => ids.has((line['revocation'] as { id: string }).id)), 'each line is a record of the trail, by its id')
  const logged = relay.logs.join('\n')
  for (const secret of [...tokens, ADMIN_KEY, HOOK_KEY]) t.notOk(logged.includes(secret), `no ${secret.slice(0, 10)}… in the logs`)
  for (const token of tokens) t.notOk(logged.includes(token.split('.')[2] ?? ''), 'nor a token\'s signature')
  t.notMatch(logged, /authorization/i)
  t.notMatch(logged, /Bearer /)
})

t.test('bad ids and limits are 400s that name the field; the admin key only; GET only', async (t) => {
  const relay = await buildAudit(t)
  const id = randomUUID()
  for (const [response, field] of [[await relay.revocations('alice'), 'id'], [await relay.revocations(id, '?limit=0'), 'limit'], [await relay.revocations(id, '?limit=1001'), 'limit']] as const) {
    t.equal(response.statusCode, 400)
    t.equal(response.json().field, field)
  }
  t.equal((await relay.revocations(id, '', null)).statusCode, 401)
  t.equal((await relay.revocations(id, '', HOOK_KEY)).statusCode, 401)
  const post = await relay.app.inject({ method: 'POST', url: `/admin/identities/${id}/revocations`, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  t.equal(post.statusCode, 405)
  t.equal(post.headers['allow'], 'GET, HEAD')
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_admin_calls_total\{action="revocations",outcome="invalid"\} 3/)
  t.match(metrics, /logout_relay_admin_calls_total\{action="revocations",outcome="unauthorized"\} 2/)
})

t.test('AUDIT_MAX_ENTRIES bounds the trail: the oldest records go', async (t) => {
  const relay = await buildAudit(t, { env: { AUDIT_MAX_ENTRIES: '2' } })
  const logins = [await relay.login(), await relay.login(), await relay.login()]
  for (const [i, { identityId, sid }] of logins.entries()) {
    t.equal((await relay.logout((await relay.token(sid)).token)).statusCode, 200)
    t.ok(await eventually(() => relay.kratos.activeSessions(identityId) === 0))
    await relay.kratos.waitForCalls('deleteIdentitySessions', i + 1)
    t.ok(await eventually(() => auditLines(relay.logs).length === i + 1), 'recorded')
  }
  const counts = []
  for (const { identityId } of logins) counts.push((await relay.revocations(identityId)).json<{ revocations: unknown[] }>().revocations.length)
  t.same(counts, [0, 1, 1], 'the first identity\'s record went')
  t.equal(auditLines(relay.logs).length, 3, 'the log line of each stays, for a pipeline to keep')
})

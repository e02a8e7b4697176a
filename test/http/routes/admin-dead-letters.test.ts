import { randomUUID } from 'node:crypto'
import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { keyFingerprint } from '../../../src/http/api-keys.js'
import { build, eventually, type BuildOptions, type Harness, type TestContext } from '../../helper.js'
import { spawnRedis, startRedis } from '../../helpers/redis.js'

const redis = await startRedis()
t.teardown(() => redis.close())

const ADMIN_KEY = 'admin-key-0f1e2d3c4b5a6978'
const KRATOS_OPERATION = 'kratos DELETE /admin/identities/{id}/sessions'

interface DeadLetterBody {
  id: string
  kind: string
  identity_id?: string
  sid?: string
  cause: Record<string, unknown> | null
  attempts: number
  last_error: string
  last_failure?: string
  last_status?: number
  created_at: string
  buried_at: string
  expires_at: string
  expires_by: string
}
interface ListBody { dead_letters: DeadLetterBody[], total: number, next_cursor: string | null }

interface DeadLetterHarness extends Harness {
  list: (query?: string, key?: string | null) => Promise<LightMyRequestResponse>
  retry: (id: string, key?: string | null) => Promise<LightMyRequestResponse>
  drop: (id: string, key?: string | null) => Promise<LightMyRequestResponse>
  /** Logs `count` identities in, and out through a token each while Kratos refuses: `count` dead letters. */
  bury: (count: number) => Promise<Array<{ identityId: string, sid: string, jti: string }>>
  metrics: () => Promise<string>
}

async function buildDeadLetters (t: TestContext, options: BuildOptions = {}): Promise<DeadLetterHarness> {
  const relay = await build(t, { redis, ...options, env: { ADMIN_API_KEYS: ADMIN_KEY, REVOCATION_MAX_ATTEMPTS: '2', ...options.env } })
  const authorization = (key: string | null): Record<string, string> => key === null ? {} : { authorization: `Bearer ${key}` }
  const metrics = async (): Promise<string> => (await relay.app.inject('/metrics')).body
  return {
    ...relay,
    metrics,
    list: (query = '', key = ADMIN_KEY) => relay.app.inject({ method: 'GET', url: `/admin/dead-letters${query}`, headers: authorization(key) }),
    retry: (id, key = ADMIN_KEY) => relay.app.inject({ method: 'POST', url: `/admin/dead-letters/${id}/retry`, headers: authorization(key) }),
    drop: (id, key = ADMIN_KEY) => relay.app.inject({ method: 'DELETE', url: `/admin/dead-letters/${id}`, headers: authorization(key) }),
    async bury (count) {
      relay.kratos.fail('deleteIdentitySessions', { status: 503 })
      const buried = []
      for (let i = 0; i < count; i++) {
        const { identityId, sid } = await relay.login()
        const token = await relay.hydra.logoutToken(sid, { clientId: 'app-a' })
        const { jti } = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { jti: string }
        if ((await relay.logout(token)).statusCode !== 200) throw new Error('logout refused')
        buried.push({ identityId, sid, jti })
      }
      if (!await eventually(async () => (await metrics()).includes(`logout_relay_dead_letters ${count}\n`), 10_000)) throw new Error('not buried')
      relay.kratos.heal('deleteIdentitySessions')
      return buried
    }
  }
}

t.test('a dead letter says what it was for, why and when it failed, and when its retention removes it; retried, it succeeds as an operator\'s retry', async (t) => {
  const relay = await buildDeadLetters(t, { env: { DEAD_LETTER_MAX_AGE: '3600' } })
  const [{ identityId, sid, jti }] = await relay.bury(1) as [{ identityId: string, sid: string, jti: string }]

  const listed = await relay.list()
  t.equal(listed.statusCode, 200)
  t.equal(listed.headers['cache-control'], 'no-store')
  const body = listed.json<ListBody>()
  t.equal(body.total, 1)
  t.equal(body.next_cursor, null)
  const [letter] = body.dead_letters
  t.match(letter, {
    kind: 'kratos-sessions',
    identity_id: identityId,
    sid,
    cause: { kind: 'backchannel-logout', client_id: 'app-a', jti },
    attempts: 2,
    last_error: `${KRATOS_OPERATION}: HTTP 503`,
    last_failure: 'transient',
    last_status: 503,
    expires_by: 'age'
  })
  t.ok(Date.parse(letter!.created_at) <= Date.parse(letter!.buried_at), 'created, then buried')
  t.equal(Date.parse(letter!.expires_at) - Date.parse(letter!.buried_at), 3600_000, 'DEAD_LETTER_MAX_AGE after its burial')

  const retried = await relay.retry(letter!.id)
  t.equal(retried.statusCode, 202)
  const fingerprint = keyFingerprint(ADMIN_KEY)
  t.same(retried.json(), {
    id: letter!.id,
    status: 'queued',
    kind: 'kratos-sessions',
    identity_id: identityId,
    sid,
    cause: { kind: 'operator-retry', via: 'admin-api', key_fingerprint: fingerprint, original: { kind: 'backchannel-logout', client_id: 'app-a', jti } }
  })
  t.ok(await eventually(() => relay.kratos.activeSessions(identityId) === 0), 'revoked at last')
  t.equal(relay.kratos.revokedIdentities().filter((id) => id === identityId).length, 3, 'two failed attempts, then the retry')
  t.same((await relay.list()).json<ListBody>(), { dead_letters: [], total: 0, next_cursor: null })

  const revocations = await relay.app.inject({ method: 'GET', url: `/admin/identities/${identityId}/revocations`, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  t.equal(revocations.statusCode, 200)
  const records = revocations.json<{ revocations: Array<{ outcome: string, cause: { kind: string, via?: string }, attempts: number, history: Array<{ outcome: string, status?: number }> }> }>().revocations
  t.same(records.map((record) => [record.outcome, record.cause.kind, record.attempts]), [['succeeded', 'operator-retry', 1], ['dead_lettered', 'backchannel-logout', 2]], 'newest first')
  t.same(records[1]?.history.map((attempt) => [attempt.outcome, attempt.status]), [['failed', 503], ['failed', 503]])

  const metrics = await relay.metrics()
  t.match(metrics, /logout_relay_admin_calls_total\{action="dead_letters",outcome="listed"\} 2/)
  t.match(metrics, /logout_relay_admin_calls_total\{action="retry_dead_letter",outcome="retried"\} 1/)
  t.match(metrics, /logout_relay_operator_retried_revocations_total\{via="admin-api",outcome="succeeded"\} 1/)
  t.ok(relay.logs.some((line) => line.includes('"outcome":"dead_letter_retried"') && line.includes(fingerprint)), 'the request\'s log line names the key by its fingerprint')
  t.notMatch(relay.logs.join('\n'), ADMIN_KEY)
})

t.test('dead letters in pages: a cursor continues where the page ended; the oldest beyond DEAD_LETTER_MAX_COUNT go at the next pass', async (t) => {
  const relay = await buildDeadLetters(t, { env: { REVOCATION_MAX_ATTEMPTS: '1', DEAD_LETTER_MAX_COUNT: '3' } })
  // The retention passed once, at startup: its next pass is a minute away.
  await relay.bury(5)
  const ids: string[] = []
  let cursor: string | null = ''
  const pages: number[] = []
  const expiries: string[] = []
  while (cursor !== null) {
    const response = await relay.list(`?limit=2${cursor === '' ? '' : `&cursor=${encodeURIComponent(cursor)}`}`)
    t.equal(response.statusCode, 200)
    const body = response.json<ListBody>()
    pages.push(body.dead_letters.length)
    ids.push(...body.dead_letters.map((letter) => letter.id))
    expiries.push(...body.dead_letters.map((letter) => letter.expires_by))
    cursor = body.next_cursor
  }
  t.equal(new Set(ids).size, ids.length, 'each dead letter once')
  t.same(pages, [2, 2, 1])
  t.same(expiries, ['count', 'count', 'age', 'age', 'age'], 'the two oldest beyond the count go at the next pass')

  const invalid = [['?limit=0', 'limit'], ['?limit=1001', 'limit'], ['?limit=ten', 'limit'], ['?limit=1&limit=2', 'limit'], ['?cursor=abc', 'cursor'], [`?cursor=1.${'z'.repeat(36)}`, 'cursor']] as const
  for (const [query, field] of invalid) {
    const response = await relay.list(query)
    t.equal(response.statusCode, 400, query)
    t.equal(response.json().field, field, query)
  }
})

t.test('an unknown id is a 404 not_found; a dropped dead letter is gone; retrying and dropping are counted', async (t) => {
  const relay = await buildDeadLetters(t)
  const [{ identityId, sid }] = await relay.bury(1) as [{ identityId: string, sid: string, jti: string }]
  const [letter] = (await relay.list()).json<ListBody>().dead_letters
  for (const response of [await relay.retry(randomUUID()), await relay.drop(randomUUID()), await relay.retry('not-an-id'), await relay.drop('not-an-id')]) {
    t.equal(response.statusCode, 404)
    t.same(response.json(), { error: 'not_found', error_description: 'no dead letter has this id (retried or dropped already, or removed by its retention)' })
  }
  const dropped = await relay.drop(letter!.id)
  t.equal(dropped.statusCode, 204)
  t.equal(dropped.body, '')
  t.equal((await relay.drop(letter!.id)).statusCode, 404, 'twice: gone')
  t.equal((await relay.retry(letter!.id)).statusCode, 404, 'nothing left to retry')
  t.same((await relay.list()).json<ListBody>().total, 0)
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(relay.kratos.activeSessions(identityId), 1, 'dropped: never revoked')
  t.ok(relay.logs.some((line) => line.includes('"outcome":"dead_letter_dropped"') && line.includes(sid)), 'the drop is logged with what went')
  const metrics = await relay.metrics()
  t.match(metrics, /logout_relay_admin_calls_total\{action="drop_dead_letter",outcome="dropped"\} 1/)
  t.match(metrics, /logout_relay_admin_calls_total\{action="drop_dead_letter",outcome="not_found"\} 3/)
  t.match(metrics, /logout_relay_admin_calls_total\{action="retry_dead_letter",outcome="not_found"\} 3/)
})

t.test('the dead-letter routes take the admin keys only, and their own methods', async (t) => {
  const relay = await buildDeadLetters(t)
  const id = randomUUID()
  for (const response of [await relay.list('', null), await relay.retry(id, 'wrong-key-0123456789abcdef'), await relay.drop(id, null)]) {
    t.equal(response.statusCode, 401)
    t.equal(response.headers['www-authenticate'], 'Bearer realm="logout-relay"')
  }
  const methods = [
    ['POST', '/admin/dead-letters', 'GET, HEAD'],
    ['GET', `/admin/dead-letters/${id}/retry`, 'POST'],
    ['GET', `/admin/dead-letters/${id}`, 'DELETE']
  ] as const
  for (const [method, url, allow] of methods) {
    const response = await relay.app.inject({ method, url, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
    t.equal(response.statusCode, 405, `${method} ${url}`)
    t.equal(response.headers['allow'], allow)
  }
  t.match(await relay.metrics(), /logout_relay_admin_calls_total\{action="dead_letters",outcome="unauthorized"\} 1/)
})

t.test('Redis down: every dead-letter and audit route answers 503 with Retry-After', async (t) => {
  const own = await spawnRedis()
  t.teardown(() => own.close())
  const relay = await buildDeadLetters(t, { redis: own, env: { REDIS_COMMAND_TIMEOUT: '300' } })
  await own.stop()
  const id = randomUUID()
  const responses = [
    await relay.list(),
    await relay.retry(id),
    await relay.drop(id),
    await relay.app.inject({ method: 'GET', url: `/admin/identities/${id}/revocations`, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  ]
  for (const response of responses) {
    t.equal(response.statusCode, 503)
    t.equal(response.headers['retry-after'], '5')
    t.equal(response.json().error, 'temporarily_unavailable')
  }
  t.match(await relay.metrics(), /logout_relay_admin_calls_total\{action="revocations",outcome="unavailable"\} 1/)
})

import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createLogger } from '../../src/ops/logger.js'
import { DeadLetterRetention } from '../../src/revocation/retention.js'
import { createMemoryRevocationQueue } from '../../src/store/revocation-queue.js'
import { captureLines, eventually } from '../helper.js'

async function buryOne (queue: ReturnType<typeof createMemoryRevocationQueue>, identityId: string): Promise<void> {
  await queue.enqueue([{ target: { kind: 'kratos-sessions', identityId }, sid: `sid-of-${identityId}` }], 60)
  const [claimed] = await queue.claim(1, 1000)
  await queue.bury(claimed!, { at: Date.now(), kind: 'refused', status: 403, error: 'kratos DELETE /admin/identities/{id}/sessions: HTTP 403' })
}

t.test('removes dead letters past their age and count, and logs each one it removes', async (t) => {
  let now = Date.now()
  const queue = createMemoryRevocationQueue(() => now)
  const identities = [randomUUID(), randomUUID(), randomUUID()]
  for (const identity of identities) {
    await buryOne(queue, identity)
    now += 60_000
  }
  const lines: string[] = []
  const retention = new DeadLetterRetention({ queue, maxAgeMs: 150_000, maxCount: 1, log: createLogger('info', captureLines(lines)), clock: () => now })
  await retention.apply()
  t.same((await queue.deadLetters(10)).map((letter) => letter.target), [{ kind: 'kratos-sessions', identityId: identities[2] }], 'the newest stays')
  await eventually(() => lines.length === 2)
  const logged = lines.map((line) => JSON.parse(line) as { level: number, msg: string, target: { identityId: string }, sid: string, lastError: string })
  t.same(logged.map((line) => line.target.identityId), identities.slice(0, 2), 'one warning per dead letter removed, oldest first')
  t.ok(logged.every((line) => line.level === 40 && /retention/.test(line.msg) && /HTTP 403/.test(line.lastError) && line.sid.startsWith('sid-of-')))
})

t.test('runs every interval once started, and nothing after stop()', async (t) => {
  let now = Date.now()
  const queue = createMemoryRevocationQueue(() => now)
  const retention = new DeadLetterRetention({ queue, maxAgeMs: 1000, maxCount: 100, intervalMs: 20, log: createLogger('silent'), clock: () => now })
  retention.start()
  await buryOne(queue, randomUUID())
  now += 2000
  t.ok(await eventually(async () => (await queue.counts()).dead === 0, 2000), 'removed by a periodic run')
  await retention.stop()
  await buryOne(queue, randomUUID())
  now += 2000
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal((await queue.counts()).dead, 1, 'stopped: nothing more is removed')
})

t.test('a store that fails is logged, not thrown', async (t) => {
  const lines: string[] = []
  const retention = new DeadLetterRetention({
    queue: { trimDeadLetters: async () => { throw new Error('redis down') } },
    maxAgeMs: 1000,
    maxCount: 1,
    log: createLogger('info', captureLines(lines))
  })
  await retention.apply()
  await eventually(() => lines.length === 1)
  t.match(lines[0], /could not apply the dead letters' retention/)
})

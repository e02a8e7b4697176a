import { randomUUID } from 'node:crypto'
import { pino } from 'pino'
import t from 'tap'
import { RevocationFailure } from '../../src/revocation/failure.js'
import { createMemoryRevocationQueue, type RevocationRecord, type RevocationTarget } from '../../src/store/revocation-queue.js'
import { RevocationWorker, backoffDelay, type JobOutcome, type RevocationWorkerOptions } from '../../src/revocation/worker.js'
import { eventually } from '../helper.js'

function setup (t: { teardown: (fn: () => unknown) => void }, execute: RevocationWorkerOptions['execute'], overrides: Partial<RevocationWorkerOptions> = {}) {
  const queue = createMemoryRevocationQueue(overrides.clock)
  const outcomes: JobOutcome[] = []
  const worker = new RevocationWorker({
    queue,
    execute,
    log: pino({ level: 'silent' }),
    maxAttempts: 5,
    maxAgeMs: 60_000,
    concurrency: 4,
    leaseMs: 5000,
    backoffBaseMs: 10,
    backoffMaxMs: 40,
    pollIntervalMs: 20,
    onOutcome: (outcome) => outcomes.push(outcome),
    ...overrides
  })
  worker.start()
  t.teardown(() => worker.stop())
  const enqueue = async (count = 1) => {
    const jobs = Array.from({ length: count }, () => ({ target: { kind: 'kratos-sessions', identityId: randomUUID() } as RevocationTarget }))
    await queue.enqueue(jobs, 60)
    worker.notify()
  }
  return { queue, worker, outcomes, enqueue }
}

t.test('backoff grows exponentially, with jitter, up to the cap', async (t) => {
  t.equal(backoffDelay(1, 1000, 60_000, () => 0), 500)
  t.equal(backoffDelay(1, 1000, 60_000, () => 1), 1000)
  t.equal(backoffDelay(4, 1000, 60_000, () => 1), 8000)
  t.equal(backoffDelay(30, 1000, 60_000, () => 1), 60_000)
  t.equal(backoffDelay(30, 1000, 60_000, () => 0), 30_000)
})

t.test('runs each job once and completes it', async (t) => {
  const seen: string[] = []
  const { queue, outcomes, enqueue } = setup(t, async (target) => { if (target.kind === 'kratos-sessions') seen.push(target.identityId) })
  await enqueue(10)
  t.ok(await eventually(() => outcomes.length === 10))
  t.equal(new Set(seen).size, 10)
  t.same(await queue.counts(), { waiting: 0, active: 0, dead: 0 })
})

t.test('retries transient failures with backoff until they succeed', async (t) => {
  let calls = 0
  const { queue, outcomes, enqueue } = setup(t, async () => {
    if (++calls < 3) throw new RevocationFailure('transient', 'kratos DELETE: HTTP 503', 503)
  })
  await enqueue()
  t.ok(await eventually(() => outcomes.includes('succeeded')))
  t.same(outcomes, ['retried', 'retried', 'succeeded'])
  t.same(await queue.counts(), { waiting: 0, active: 0, dead: 0 })
})

t.test('retries refusals too, and buries a job after its last attempt', async (t) => {
  let calls = 0
  const { queue, outcomes, enqueue } = setup(t, async () => {
    calls++
    throw new RevocationFailure('refused', 'kratos DELETE: HTTP 403', 403)
  }, { maxAttempts: 3 })
  await enqueue()
  t.ok(await eventually(() => outcomes.includes('dead_lettered')))
  t.equal(calls, 3)
  t.same(outcomes, ['retried', 'retried', 'dead_lettered'])
  const [letter] = await queue.deadLetters(1)
  t.equal(letter?.lastError, 'kratos DELETE: HTTP 403')
  t.equal(letter?.attempts, 3)
})

t.test('buries a job older than the maximum age at its next failure', async (t) => {
  let now = Date.now()
  const { outcomes, enqueue } = setup(t, async () => {
    now += 120_000
    throw new RevocationFailure('transient', 'kratos DELETE: ECONNREFUSED')
  }, { clock: () => now, maxAttempts: 100 })
  await enqueue()
  t.ok(await eventually(() => outcomes.includes('dead_lettered')))
  t.same(outcomes, ['dead_lettered'])
})

t.test('a held job waits uncounted, never dead-lettered for it, and runs once its admin URL is right', async (t) => {
  let offset = 0
  let calls = 0
  const attemptsSeen: number[] = []
  const { queue, outcomes, enqueue } = setup(t, async () => {
    calls++
    // Hours pass and attempts would run out: a held job is dead-lettered for neither.
    offset += 3_600_000
    if (calls <= 5) throw new RevocationFailure('held', 'KRATOS_ADMIN_URL is not proven', undefined, { retryInMs: 5 })
    return { status: 204 }
  }, { clock: () => Date.now() + offset, maxAttempts: 2, maxAgeMs: 60_000 })
  const original = queue.claim.bind(queue)
  queue.claim = async (limit, leaseMs) => {
    const claimed = await original(limit, leaseMs)
    attemptsSeen.push(...claimed.map((job) => job.attempts))
    return claimed
  }
  await enqueue()
  t.ok(await eventually(() => outcomes.includes('succeeded'), 5000))
  t.same(outcomes, ['held', 'held', 'held', 'held', 'held', 'succeeded'])
  t.same(attemptsSeen, [1, 1, 1, 1, 1, 1], 'no hold counts as an attempt')
  t.same(await queue.counts(), { waiting: 0, active: 0, dead: 0 })
})

t.test('never runs more jobs at once than its concurrency', async (t) => {
  let running = 0
  let peak = 0
  const { outcomes, enqueue } = setup(t, async () => {
    peak = Math.max(peak, ++running)
    await new Promise((resolve) => setTimeout(resolve, 10))
    running--
  }, { concurrency: 3 })
  await enqueue(20)
  t.ok(await eventually(() => outcomes.length === 20))
  t.equal(peak, 3)
})

t.test('stop() waits for the jobs in flight and leaves the rest queued', async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  let started = 0
  const { queue, worker, outcomes, enqueue } = setup(t, async () => {
    started++
    await gate
  }, { concurrency: 2 })
  await enqueue(5)
  t.ok(await eventually(() => started === 2))
  const stopped = worker.stop()
  let done = false
  stopped.then(() => { done = true }, () => {})
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(done, false, 'still waiting for the two in flight')
  release()
  await stopped
  t.same(outcomes, ['succeeded', 'succeeded'])
  t.same(await queue.counts(), { waiting: 3, active: 0, dead: 0 })
})

t.test('each finished job\'s audit record reaches onRecord: every attempt with its kind and status, then how it ended', async (t) => {
  let calls = 0
  const records: RevocationRecord[] = []
  const { outcomes, enqueue } = setup(t, async () => {
    calls++
    if (calls === 1) throw new RevocationFailure('transient', 'kratos DELETE: HTTP 503', 503)
    if (calls === 2) throw new Error('socket hang up')
    if (calls >= 4) throw new RevocationFailure('refused', 'kratos DELETE: HTTP 403', 403)
  }, { maxAttempts: 2, concurrency: 1, onRecord: (record) => records.push(record) })
  await enqueue()
  t.ok(await eventually(() => outcomes.includes('dead_lettered')))
  await enqueue()
  t.ok(await eventually(() => records.length === 2))
  const [buried, done] = records
  t.equal(buried?.outcome, 'dead_lettered')
  t.same(buried?.history.map((attempt) => attempt.outcome === 'failed' ? [attempt.kind, attempt.status, attempt.error] : [attempt.outcome]),
    [['transient', 503, 'kratos DELETE: HTTP 503'], ['unexpected', undefined, 'unexpected error: socket hang up']])
  t.equal(done?.outcome, 'succeeded')
  t.same(done?.history.map((attempt) => attempt.outcome), ['succeeded'])
})

t.test('a dead letter retried by an operator counts its age from the retry', async (t) => {
  let now = Date.now()
  const queue = createMemoryRevocationQueue(() => now)
  await queue.enqueue([{ target: { kind: 'kratos-sessions', identityId: randomUUID() } }], 60)
  const [claimed] = await queue.claim(1, 1000)
  await queue.bury(claimed!, { at: now, kind: 'transient', error: 'kratos DELETE: ECONNREFUSED' })
  now += 120_000
  await queue.retryDeadLetter(claimed!.job.id, { kind: 'operator-retry', via: 'cli' })
  const { outcomes, worker } = setup(t, async () => { throw new RevocationFailure('transient', 'kratos DELETE: HTTP 503', 503) },
    { queue, clock: () => now, maxAgeMs: 60_000, maxAttempts: 100 })
  worker.notify()
  t.ok(await eventually(() => outcomes.length > 0))
  t.equal(outcomes[0], 'retried', 'created two minutes ago, but retried just now: not too old')
})

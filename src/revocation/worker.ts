import type { Logger } from 'pino'
import type { Clock } from '../clock.js'
import type { AttemptFailure } from '../store/audit-record.js'
import type { ClaimedJob, Job, RevocationQueue, RevocationRecord, RevocationTarget } from '../store/revocation-queue.js'
import { isRevocationFailure } from './failure.js'

/** What a revocation that happened reports: the upstream's status (204, or 404 for nothing left). */
export interface RevocationDone {
  status: number
}

/** `held`: put back uncounted while its admin API is not proven (see `RevocationFailure`). */
export type JobOutcome = 'succeeded' | 'retried' | 'held' | 'dead_lettered'

export interface RevocationWorkerOptions {
  queue: RevocationQueue
  /** Performs one revocation; throws when it did not happen (a `RevocationFailure` says whether retrying can cure it). */
  execute: (target: RevocationTarget) => Promise<RevocationDone | void>
  log: Logger
  /** After this many attempts a job becomes a dead letter. */
  maxAttempts: number
  /** A job older than this becomes a dead letter at its next failure. */
  maxAgeMs: number
  /** Jobs run at once by this process. */
  concurrency: number
  /** How long a claimed job is this worker's; must outlast one attempt with room to spare. */
  leaseMs: number
  backoffBaseMs: number
  backoffMaxMs: number
  /** Longest sleep between looks at the queue (jobs due later, other replicas' jobs). */
  pollIntervalMs?: number
  clock?: Clock
  random?: () => number
  /** Told of each attempt's outcome, with the upstream's status when it answered. */
  onOutcome?: (outcome: JobOutcome, job: Job, status: number | undefined) => void
  /** Each finished job's audit record, once the queue has written it (done, or dead-lettered). */
  onRecord?: (record: RevocationRecord) => void
}

/**
 * Exponential backoff with equal jitter: half the delay is fixed, half random, so that replicas
 * retrying after one outage spread out without ever retrying at once.
 */
export function backoffDelay (attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + random() * ceiling / 2)
}

/**
 * Runs the queue's jobs in this process: claims due jobs in batches up to its concurrency, performs
 * each, and completes, retries (with backoff) or buries it. `notify()` wakes it at once after a local
 * enqueue; otherwise it looks again when the next job is due, at least every poll interval.
 * `stop()` claims nothing more and waits for the jobs in flight to be settled in the queue.
 */
export class RevocationWorker {
  readonly #options: Required<Omit<RevocationWorkerOptions, 'onOutcome' | 'onRecord'>> & Pick<RevocationWorkerOptions, 'onOutcome' | 'onRecord'>
  readonly #inFlight = new Set<Promise<void>>()
  #running = false
  #loop: Promise<void> | undefined
  #notified = false
  #wake: (() => void) | undefined
  #timer: NodeJS.Timeout | undefined
  #storeDown = false
  #completions: { claims: ClaimedJob[], written: Promise<number> } | undefined

  constructor (options: RevocationWorkerOptions) {
    this.#options = { pollIntervalMs: 1000, clock: Date.now, random: Math.random, ...options }
  }

  start (): void {
    if (this.#running) return
    this.#running = true
    this.#loop = this.#run()
  }

  /** Something was enqueued: look now. */
  notify (): void {
    this.#notified = true
    this.#wakeUp()
  }

  get inFlight (): number {
    return this.#inFlight.size
  }

  async stop (): Promise<void> {
    this.#running = false
    this.#wakeUp()
    await this.#loop
    await Promise.all(this.#inFlight)
  }

  async #run (): Promise<void> {
    const { queue, concurrency, leaseMs, log } = this.#options
    while (this.#running) {
      this.#notified = false
      const free = concurrency - this.#inFlight.size
      if (free <= 0) {
        await this.#sleep(this.#options.pollIntervalMs)
        continue
      }
      let claimed: ClaimedJob[]
      try {
        claimed = await queue.claim(free, leaseMs)
        this.#storeDown = false
      } catch (err) {
        if (!this.#storeDown) log.error({ err: { message: (err as Error).message } }, 'revocation queue unreachable; retrying')
        this.#storeDown = true
        await this.#sleep(this.#options.pollIntervalMs)
        continue
      }
      for (const job of claimed) this.#perform(job)
      if (claimed.length === free) {
        // The batch was full: more may be due. Look again as soon as a slot frees.
        await this.#sleep(this.#options.pollIntervalMs)
        continue
      }
      await this.#sleep(await this.#untilNextDue())
    }
  }

  async #untilNextDue (): Promise<number> {
    const { pollIntervalMs, clock } = this.#options
    try {
      const next = await this.#options.queue.nextDueAt()
      return next === null ? pollIntervalMs : Math.max(0, Math.min(pollIntervalMs, next - clock()))
    } catch {
      return pollIntervalMs
    }
  }

  #sleep (ms: number): Promise<void> {
    if (!this.#running || this.#notified) return Promise.resolve()
    return new Promise((resolve) => {
      this.#wake = resolve
      this.#timer = setTimeout(() => this.#wakeUp(), ms)
      this.#timer.unref()
    })
  }

  #wakeUp (): void {
    clearTimeout(this.#timer)
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  #perform (claimed: ClaimedJob): void {
    const task = this.#settle(claimed)
      .catch((err: unknown) => {
        // The outcome could not be written (store down): the lease runs out and the job runs again.
        this.#options.log.error({ job: claimed.job.id, err: { message: (err as Error).message } },
          'could not record the outcome of a revocation; it will run again when its lease ends')
      })
      .finally(() => {
        this.#inFlight.delete(task)
        // Enough slots are free for a batch: look again (sticky, should the loop be busy right now).
        if (this.#inFlight.size <= concurrencyFloor(this.#options.concurrency)) this.notify()
      })
    this.#inFlight.add(task)
  }

  /**
   * Records a job done. The jobs that finish within one turn of the event loop are completed in a
   * single call to the queue: under load, one round trip for many jobs (their audit records included).
   */
  async #complete (claimed: ClaimedJob): Promise<void> {
    if (this.#completions === undefined) {
      const claims: ClaimedJob[] = []
      const written = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        this.#completions = undefined
        const records = await this.#options.queue.completeAll(claims)
        for (const record of records) this.#options.onRecord?.(record)
        return records.length
      })
      this.#completions = { claims, written }
    }
    this.#completions.claims.push(claimed)
    await this.#completions.written
  }

  async #settle (claimed: ClaimedJob): Promise<void> {
    const { job, attempts } = claimed
    const { queue, log, clock } = this.#options
    const fields = { job: job.id, target: job.target, attempts }
    let done: RevocationDone | undefined
    try {
      done = (await this.#options.execute(job.target)) ?? undefined
    } catch (err) {
      const failure = isRevocationFailure(err) ? err : undefined
      if (failure?.kind === 'held') {
        // Not an attempt: the job never went out. It waits, however long, for a proven admin URL.
        await queue.release(claimed, clock() + (failure.retryInMs ?? this.#options.pollIntervalMs))
        log.debug({ ...fields, error: failure.message }, 'revocation held: its admin URL is not proven')
        this.#options.onOutcome?.('held', job, undefined)
        return
      }
      const message = failure?.message ?? `unexpected error: ${(err as Error).message}`
      const attempt: AttemptFailure = {
        at: clock(),
        kind: failure?.kind ?? 'unexpected',
        ...(failure?.status !== undefined ? { status: failure.status } : {}),
        error: message
      }
      // An operator's retry gives a dead letter a new life: its age counts from then.
      const age = clock() - (job.retriedAt ?? job.createdAt)
      if (attempts >= this.#options.maxAttempts || age >= this.#options.maxAgeMs) {
        const record = await queue.bury(claimed, attempt)
        log.error({ ...fields, error: message }, 'revocation failed for good; moved to the dead letters')
        if (record !== null) this.#options.onRecord?.(record)
        this.#options.onOutcome?.('dead_lettered', job, failure?.status)
        return
      }
      const delay = backoffDelay(attempts, this.#options.backoffBaseMs, this.#options.backoffMaxMs, this.#options.random)
      await queue.retry(claimed, clock() + delay, attempt)
      if (failure?.kind === 'transient') {
        log.warn({ ...fields, error: message, retryInMs: delay }, 'revocation failed; will retry')
      } else {
        log.error({ ...fields, error: message, retryInMs: delay }, 'revocation refused (check the admin URL and token); will retry')
      }
      this.#options.onOutcome?.('retried', job, failure?.status)
      return
    }
    await this.#complete(done?.status === undefined ? claimed : { ...claimed, status: done.status })
    log.debug(fields, 'revocation done')
    this.#options.onOutcome?.('succeeded', job, done?.status)
  }
}

/** When in-flight jobs fall to this count, a full worker looks for more work. */
function concurrencyFloor (concurrency: number): number {
  return Math.max(0, Math.floor(concurrency / 2))
}

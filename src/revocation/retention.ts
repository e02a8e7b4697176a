import type { Logger } from 'pino'
import type { Clock } from '../clock.js'
import type { RevocationQueue } from '../store/revocation-queue.js'

export interface DeadLetterRetentionOptions {
  queue: Pick<RevocationQueue, 'trimDeadLetters'>
  /** Dead letters older than this (since they were buried) are removed. */
  maxAgeMs: number
  /** The most dead letters kept; past it the oldest are removed. */
  maxCount: number
  log: Logger
  /** How often the retention is applied (default every minute). */
  intervalMs?: number
  clock?: Clock
}

/** Dead letters removed by one script call at most. */
const TRIM_BATCH = 500

/**
 * Keeps the dead letters within their retention (DEAD_LETTER_MAX_AGE, DEAD_LETTER_MAX_COUNT): every
 * minute it removes the ones too old and the oldest beyond the count, and logs each one it removes
 * (kind, identity, sid, last error — never a secret), so that a log pipeline keeps what Redis lets go.
 * Any replica may run it at once: each dead letter is removed, and logged, once.
 */
export class DeadLetterRetention {
  readonly #options: Required<DeadLetterRetentionOptions>
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined

  constructor (options: DeadLetterRetentionOptions) {
    this.#options = { intervalMs: 60_000, clock: Date.now, ...options }
  }

  start (): void {
    if (this.#timer !== undefined) return
    // apply() logs its failures and never rejects: nothing is left unhandled.
    this.#timer = setInterval(() => { this.apply().catch(() => {}) }, this.#options.intervalMs)
    this.#timer.unref()
    this.apply().catch(() => {})
  }

  /** Applies the retention now; resolves when done (a failure is logged, never thrown). */
  async apply (): Promise<void> {
    this.#running ??= this.#trim().finally(() => { this.#running = undefined })
    await this.#running
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running
  }

  async #trim (): Promise<void> {
    const { queue, maxAgeMs, maxCount, log, clock } = this.#options
    try {
      for (;;) {
        const removed = await queue.trimDeadLetters(clock() - maxAgeMs, maxCount, TRIM_BATCH)
        for (const letter of removed) {
          log.warn({ job: letter.id, target: letter.target, sid: letter.sid, attempts: letter.attempts, lastError: letter.lastError, buriedAt: new Date(letter.buriedAt).toISOString() },
            'dead letter removed by its retention (DEAD_LETTER_MAX_AGE, DEAD_LETTER_MAX_COUNT)')
        }
        if (removed.length < TRIM_BATCH) return
      }
    } catch (err) {
      log.error({ err: { message: (err as Error).message } }, 'could not apply the dead letters\' retention; will try again')
    }
  }
}

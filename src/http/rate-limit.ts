import type { Clock } from '../clock.js'

/**
 * Fixed-window counters in this process's memory: cheap enough for every request, and per replica
 * (N replicas allow N times the limit — a bound on abuse, not an exact quota). The map is swept of
 * finished windows as it grows, and never holds more than `maxKeys` keys: a flood of distinct keys
 * (addresses) empties it rather than exhausting memory.
 */
export class FixedWindowLimiter {
  readonly #windows = new Map<string, { start: number, count: number }>()

  constructor (
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: Clock = Date.now,
    private readonly maxKeys = 100_000
  ) {}

  /** Counts one event for `key`; returns the seconds to wait when this event is over the limit, else 0. */
  hit (key: string): number {
    const now = this.clock()
    let window = this.#windows.get(key)
    if (window === undefined || now - window.start >= this.windowMs) {
      if (window === undefined && this.#windows.size >= this.maxKeys) this.#sweep(now)
      window = { start: now, count: 0 }
      this.#windows.set(key, window)
    }
    window.count++
    return window.count > this.limit ? this.#wait(window, now) : 0
  }

  /** Seconds to wait when `key` is already over the limit, without counting anything; else 0. */
  blocked (key: string): number {
    const now = this.clock()
    const window = this.#windows.get(key)
    if (window === undefined || now - window.start >= this.windowMs || window.count < this.limit) return 0
    return this.#wait(window, now)
  }

  #wait (window: { start: number }, now: number): number {
    return Math.max(1, Math.ceil((window.start + this.windowMs - now) / 1000))
  }

  #sweep (now: number): void {
    for (const [key, window] of this.#windows) {
      if (now - window.start >= this.windowMs) this.#windows.delete(key)
    }
    if (this.#windows.size >= this.maxKeys) this.#windows.clear()
  }
}

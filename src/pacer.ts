import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from './clock.js'

/** Bounds a rate: `acquire()` resolves when the next unit of work may start. */
export interface RateLimiter {
  /** Waits for the next slot; rejects with an `AbortError` when `signal` aborts the wait. */
  acquire: (signal?: AbortSignal) => Promise<void>
}

/**
 * A rate limiter that spaces its slots evenly, `1000 / perSecond` ms apart, and never bursts to catch
 * up after a slow unit: a gentle load on the servers a batch job reads, unlike a fixed window (which
 * lets a whole second's worth go at once). Slots are taken in call order.
 */
export function createPacer (perSecond: number, options: { clock?: Clock, wait?: (ms: number, signal?: AbortSignal) => Promise<void> } = {}): RateLimiter {
  if (!(perSecond > 0)) throw new RangeError('the rate must be above 0')
  const clock = options.clock ?? Date.now
  const wait = options.wait ?? (async (ms, signal) => { await sleep(ms, undefined, signal === undefined ? undefined : { signal }) })
  const interval = 1000 / perSecond
  let next = Number.NEGATIVE_INFINITY
  return {
    async acquire (signal) {
      const now = clock()
      const at = Math.max(now, next)
      next = at + interval
      if (at > now) await wait(at - now, signal)
    }
  }
}

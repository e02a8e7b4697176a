import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible'

/**
 * The relay's rate limits, on rate-limiter-flexible's in-memory limiters: per replica (N replicas
 * allow N times a limit — a bound on abuse, not an exact quota), expiring on their own.
 *
 * Not @fastify/rate-limit: it counts every request before the handler runs, while the failure limit
 * below must count only the attempts whose key was wrong, after the key is checked.
 */

/** Seconds a caller is told to wait (Retry-After): at least 1. */
function secondsOf (res: RateLimiterRes): number {
  return Math.max(1, Math.ceil(res.msBeforeNext / 1000))
}

/** Consumes one point of `key`; the seconds to wait when that was over the limit, else 0. */
async function consume (limiter: RateLimiterMemory, key: string): Promise<number> {
  try {
    await limiter.consume(key)
    return 0
  } catch (res) {
    if (res instanceof RateLimiterRes) return secondsOf(res)
    throw res
  }
}

/** A limit of calls per key (an API key's position) per window. */
export class CallLimit {
  readonly #limiter: RateLimiterMemory

  constructor (points: number, windowSeconds: number) {
    this.#limiter = new RateLimiterMemory({ points, duration: windowSeconds })
  }

  /** Counts one call; the seconds to wait when it is over the limit, else 0. */
  async hit (key: string): Promise<number> {
    return await consume(this.#limiter, key)
  }
}

export interface FailureLimitOptions {
  /** Failed attempts per client address per window. */
  perAddress: number
  /** Failed attempts from all addresses together per window. */
  overall: number
  windowSeconds: number
}

/**
 * Counts failed authentication attempts of one API (the login hook, the admin API): per client
 * address, and over all addresses, so that rotating a forged address escapes nothing. Only failures
 * count — a right key is never refused for someone else's guesses — and past the overall limit no
 * address is remembered any more, so that a flood of addresses cannot grow the memory.
 */
export class FailureLimit {
  readonly #perAddress: RateLimiterMemory
  readonly #overall: RateLimiterMemory

  constructor (options: FailureLimitOptions) {
    this.#perAddress = new RateLimiterMemory({ points: options.perAddress, duration: options.windowSeconds })
    this.#overall = new RateLimiterMemory({ points: options.overall, duration: options.windowSeconds })
  }

  /** Records one failed attempt from `address`; the seconds it must wait when over a limit, else 0. */
  async fail (address: string): Promise<number> {
    const overall = await consume(this.#overall, 'all')
    if (overall > 0) return overall
    return await consume(this.#perAddress, address)
  }
}

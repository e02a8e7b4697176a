import type { Clock } from '../clock.js'

/**
 * A Map whose entries expire, for the in-memory store (one instance, nothing durable). Expired
 * entries are dropped when read, and swept now and then on write so that memory stays bounded. An
 * entry lives `ttlMs` and expires just after, as lru-cache's do: a parity test holds it to lru-cache,
 * which the relay does not use here because it needs a bound it preallocates (about 32 bytes per
 * entry of `max`, before any is written) or a timer per entry, and its eviction would drop a
 * remembered `jti` or sid before its time.
 */
export class ExpiringMap<V> {
  readonly #entries = new Map<string, { value: V, expiresAt: number }>()
  #writesSinceSweep = 0

  constructor (private readonly clock: Clock) {}

  get (key: string): V | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt < this.clock()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.value
  }

  has (key: string): boolean {
    return this.get(key) !== undefined
  }

  set (key: string, value: V, ttlMs: number): void {
    this.#entries.set(key, { value, expiresAt: this.clock() + ttlMs })
    if (++this.#writesSinceSweep >= 1000) this.sweep()
  }

  /** Sets the entry only if no live one exists; true if it was set. */
  setIfAbsent (key: string, value: V, ttlMs: number): boolean {
    if (this.has(key)) return false
    this.set(key, value, ttlMs)
    return true
  }

  delete (key: string): void {
    this.#entries.delete(key)
  }

  sweep (): void {
    this.#writesSinceSweep = 0
    const now = this.clock()
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt < now) this.#entries.delete(key)
    }
  }
}

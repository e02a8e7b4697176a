import fc from 'fast-check'
import { LRUCache } from 'lru-cache'
import t from 'tap'
import { ExpiringMap } from '../../src/store/expiring-map.js'

/**
 * ExpiringMap is held to lru-cache, the maintained library for a map whose entries expire: on any
 * sequence of writes, reads, deletes and passing time, both answer alike (while the cache stays under
 * its bound — the relay keeps its own map because lru-cache needs one: see the README's
 * "Development" page).
 */
type Command =
  | { op: 'set', key: string, value: number, ttl: number }
  | { op: 'setIfAbsent', key: string, value: number, ttl: number }
  | { op: 'get' | 'has' | 'delete', key: string }
  | { op: 'wait', ms: number }
  | { op: 'sweep' }

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e')
const ttl = fc.oneof(fc.integer({ min: 1, max: 2000 }), fc.constant(1000))
const command: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), key, value: fc.integer(), ttl }),
  fc.record({ op: fc.constant('setIfAbsent' as const), key, value: fc.integer(), ttl }),
  fc.record({ op: fc.constantFrom('get' as const, 'has' as const, 'delete' as const), key }),
  fc.record({ op: fc.constant('wait' as const), ms: fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constantFrom(1, 999, 1000, 1001)) }),
  fc.record({ op: fc.constant('sweep' as const) })
)

t.test('ExpiringMap answers as lru-cache does, on every sequence of commands', async (t) => {
  fc.assert(fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
    let now = 1_700_000_000_000
    const clock = (): number => now
    const ours = new ExpiringMap<number>(clock)
    const theirs = new LRUCache<string, number>({ max: 1000, perf: { now: clock }, ttlResolution: 0, allowStale: false, updateAgeOnGet: false, updateAgeOnHas: false })
    for (const [step, c] of commands.entries()) {
      const where = `step ${step}: ${JSON.stringify(c)}`
      switch (c.op) {
        case 'set':
          ours.set(c.key, c.value, c.ttl)
          theirs.set(c.key, c.value, { ttl: c.ttl })
          break
        case 'setIfAbsent': {
          const theirsSet = !theirs.has(c.key)
          if (theirsSet) theirs.set(c.key, c.value, { ttl: c.ttl })
          if (ours.setIfAbsent(c.key, c.value, c.ttl) !== theirsSet) throw new Error(`${where}: setIfAbsent differs`)
          break
        }
        case 'get':
          if (ours.get(c.key) !== theirs.get(c.key)) throw new Error(`${where}: ${String(ours.get(c.key))} vs ${String(theirs.get(c.key))}`)
          break
        case 'has':
          if (ours.has(c.key) !== theirs.has(c.key)) throw new Error(`${where}: has differs`)
          break
        case 'delete':
          ours.delete(c.key)
          theirs.delete(c.key)
          break
        case 'wait':
          now += c.ms
          break
        case 'sweep':
          ours.sweep()
          theirs.purgeStale()
          break
      }
    }
  }), { numRuns: 2000 })
  t.pass('2000 random sequences alike')
})

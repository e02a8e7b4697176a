import { ExpiringMap, type Clock } from './expiring-map.js'
import { defineScripts, redisCall, type Keyspace, type LuaScript, type RedisClient } from './redis.js'

/** A sid the index knows for an identity, and when its mapping expires (ms since the epoch). */
export interface IndexedSid {
  sid: string
  expiresAt: number
}

/**
 * The sid → Kratos identity index that the login hook fills and back-channel logout reads, plus the
 * reverse identity → sids. A logout for a sid the index does not know yet is remembered for a while,
 * so that a login hook arriving late for that sid can revoke at once.
 */
export interface SessionIndex {
  /**
   * The identity of a sid, or null. On a miss with `rememberLogout`, the sid is marked as logged out
   * before it was indexed — in the same atomic step, so that a concurrent `add` cannot slip between.
   */
  resolve: (sid: string, rememberLogout: boolean) => Promise<string | null>
  /** Indexes sid → identity; `loggedOut` says that a logout for this sid came first. Idempotent. */
  add: (sid: string, identityId: string) => Promise<{ loggedOut: boolean }>
  /** Forgets the logged-out mark once the late revocation is queued. */
  forgetLogout: (sid: string) => Promise<void>
  /** The live sids of an identity. */
  sidsOf: (identityId: string) => Promise<IndexedSid[]>
}

export interface SessionIndexOptions {
  sidTtlSeconds: number
  /** How long a logout for an unknown sid is remembered. */
  unresolvedSidTtlSeconds: number
  clock?: Clock
}

const SCRIPTS: LuaScript[] = [
  {
    name: 'relayResolveSid',
    keys: 2,
    // KEYS: sid → identity, the sid's logged-out mark. ARGV: '1' to mark on a miss, mark TTL (s).
    lua: `
local identity = redis.call('GET', KEYS[1])
if identity then return identity end
if ARGV[1] == '1' then redis.call('SET', KEYS[2], '1', 'EX', ARGV[2]) end
return false`
  },
  {
    name: 'relayIndexSid',
    keys: 2,
    // KEYS: sid → identity, the sid's logged-out mark. ARGV: identity, TTL (s).
    // Returns 1 when a logout for the sid was remembered before this login was indexed.
    lua: `
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return redis.call('EXISTS', KEYS[2])`
  },
  {
    name: 'relayAddIdentitySid',
    keys: 1,
    // KEYS: the identity's sids (sorted set scored by expiry, ms). ARGV: sid, expiry, now, TTL (ms).
    // Drops the sids that expired, so that the set stays as small as the identity's live logins.
    lua: `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`
  }
]

export function createRedisSessionIndex (redis: RedisClient, keys: Keyspace, options: SessionIndexOptions): SessionIndex {
  const run = defineScripts(redis, SCRIPTS)
  const clock = options.clock ?? Date.now
  const sidKey = (sid: string): string => keys.key('sid', sid)
  const markKey = (sid: string): string => keys.key('sid', sid, 'logged-out')
  const identityKey = (identityId: string): string => keys.key('identity', identityId, 'sids')
  const sidTtlMs = options.sidTtlSeconds * 1000

  return {
    async resolve (sid, rememberLogout) {
      const identity = await run('relayResolveSid', [sidKey(sid), markKey(sid)],
        [rememberLogout ? '1' : '0', options.unresolvedSidTtlSeconds])
      return typeof identity === 'string' ? identity : null
    },
    async add (sid, identityId) {
      const now = clock()
      // The reverse entry first: should the second write fail, a stray sid in the set is harmless.
      await run('relayAddIdentitySid', [identityKey(identityId)], [sid, now + sidTtlMs, now, sidTtlMs])
      const loggedOut = await run('relayIndexSid', [sidKey(sid), markKey(sid)], [identityId, options.sidTtlSeconds])
      return { loggedOut: loggedOut === 1 }
    },
    async forgetLogout (sid) {
      await redisCall(redis.del(markKey(sid)))
    },
    async sidsOf (identityId) {
      const flat = await redisCall(redis.zrangebyscore(identityKey(identityId), clock(), '+inf', 'WITHSCORES'))
      const sids: IndexedSid[] = []
      for (let i = 0; i + 1 < flat.length; i += 2) sids.push({ sid: flat[i] as string, expiresAt: Number(flat[i + 1]) })
      return sids
    }
  }
}

/** The same index in process memory: one instance, lost on restart. */
export function createMemorySessionIndex (options: SessionIndexOptions): SessionIndex {
  const clock = options.clock ?? Date.now
  const sids = new ExpiringMap<string>(clock)
  const marks = new ExpiringMap<true>(clock)
  const identities = new Map<string, Map<string, number>>()
  const sidTtlMs = options.sidTtlSeconds * 1000

  const liveSids = (identityId: string): Map<string, number> | undefined => {
    const set = identities.get(identityId)
    if (set === undefined) return undefined
    const now = clock()
    for (const [sid, expiresAt] of set) if (expiresAt <= now) set.delete(sid)
    if (set.size === 0) identities.delete(identityId)
    return set.size === 0 ? undefined : set
  }

  return {
    async resolve (sid, rememberLogout) {
      const identity = sids.get(sid)
      if (identity !== undefined) return identity
      if (rememberLogout) marks.set(sid, true, options.unresolvedSidTtlSeconds * 1000)
      return null
    },
    async add (sid, identityId) {
      const set = liveSids(identityId) ?? new Map<string, number>()
      set.set(sid, clock() + sidTtlMs)
      identities.set(identityId, set)
      sids.set(sid, identityId, sidTtlMs)
      return { loggedOut: marks.has(sid) }
    },
    async forgetLogout (sid) {
      marks.delete(sid)
    },
    async sidsOf (identityId) {
      return [...(liveSids(identityId) ?? [])].map(([sid, expiresAt]) => ({ sid, expiresAt }))
    }
  }
}

import { createHash } from 'node:crypto'
import { ExpiringMap, type Clock } from './expiring-map.js'
import { redisCall, type Keyspace, type RedisClient } from './redis.js'

/**
 * Remembers the `jti` of every logout token accepted, per issuer (OIDC BCL §2.6 step 6). A `jti` is
 * consumed only after the logout it carries was recorded durably, so that a token whose first
 * delivery failed is accepted when the issuer resends it.
 */
export interface ReplayGuard {
  /** True when the token was already accepted. */
  seen: (issuer: string, jti: string) => Promise<boolean>
  /** Marks the token accepted for `ttlSeconds`; false when it already was (a concurrent duplicate). */
  consume: (issuer: string, jti: string, ttlSeconds: number) => Promise<boolean>
}

/** A short stable tag of the issuer, so that two issuers' `jti` values never collide. */
function issuerTag (issuer: string): string {
  return createHash('sha256').update(issuer).digest('base64url').slice(0, 12)
}

export function createRedisReplayGuard (redis: RedisClient, keys: Keyspace): ReplayGuard {
  const tags = new Map<string, string>()
  const key = (issuer: string, jti: string): string => {
    let tag = tags.get(issuer)
    if (tag === undefined) tags.set(issuer, tag = issuerTag(issuer))
    return keys.key('jti', jti, tag)
  }
  return {
    async seen (issuer, jti) {
      return await redisCall(redis.exists(key(issuer, jti))) === 1
    },
    async consume (issuer, jti, ttlSeconds) {
      return await redisCall(redis.set(key(issuer, jti), '1', 'EX', ttlSeconds, 'NX')) === 'OK'
    }
  }
}

export function createMemoryReplayGuard (clock: Clock = Date.now): ReplayGuard {
  const consumed = new ExpiringMap<true>(clock)
  return {
    async seen (issuer, jti) {
      return consumed.has(`${issuer}\n${jti}`)
    },
    async consume (issuer, jti, ttlSeconds) {
      return consumed.setIfAbsent(`${issuer}\n${jti}`, true, ttlSeconds * 1000)
    }
  }
}

import type { Logger } from 'pino'
import type { Clock } from '../clock.js'
import type { Config } from '../config.js'
import { createMemoryAuditTrail, createRedisAuditTrail, type AuditTrail } from './audit-trail.js'
import { Keyspace, createRedisClient, waitForRedis } from './redis.js'
import { createMemoryRevocationQueue, createRedisRevocationQueue, type RevocationQueue } from './revocation-queue.js'
import { createMemorySessionIndex, createRedisSessionIndex, type SessionIndex } from './session-index.js'

/** The relay's state: the sid index, the revocation queue and its audit trail, in Redis or (without it) in memory. */
export interface Stores {
  index: SessionIndex
  queue: RevocationQueue
  audit: AuditTrail
  /** Throws when the store cannot be reached. */
  ping: () => Promise<void>
  close: () => Promise<void>
}

export interface StoreOptions {
  redis: Config['redis']
  index: Config['index']
  audit: Config['audit']
  log: Logger
  clock: Clock
  /** How long to wait for Redis before going on without it (the relay then serves 503 until it answers). */
  connectTimeoutMs: number
}

/**
 * Opens the stores the configuration names: Redis (a node or a cluster) when `REDIS_URL` or
 * `REDIS_CLUSTER_NODES` is set, else the in-memory ones (one instance, lost on restart).
 */
export async function openStores (options: StoreOptions): Promise<Stores> {
  const { redis: redisConfig, index, log, clock } = options
  if (redisConfig.url === undefined && redisConfig.clusterNodes.length === 0) {
    const audit = createMemoryAuditTrail(options.audit, clock)
    return {
      index: createMemorySessionIndex({ ...index, clock }),
      queue: createMemoryRevocationQueue(clock, audit),
      audit,
      ping: async () => {},
      close: async () => {}
    }
  }
  const redis = createRedisClient(redisConfig, log.child({ module: 'redis' }))
  if (!await waitForRedis(redis, options.connectTimeoutMs)) {
    log.warn('redis is not reachable yet; serving 503 until it is')
  }
  const keys = new Keyspace(redisConfig.keyPrefix)
  return {
    index: createRedisSessionIndex(redis, keys, { ...index, clock }),
    queue: createRedisRevocationQueue(redis, keys, clock, options.audit),
    audit: createRedisAuditTrail(redis, keys),
    ping: async () => { await redis.ping() },
    close: async () => {
      try {
        await redis.quit()
      } catch {
        redis.disconnect()
      }
    }
  }
}

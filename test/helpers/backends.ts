import { randomUUID } from 'node:crypto'
import { pino } from 'pino'
import { Keyspace, createRedisClient, waitForRedis, type RedisClient } from '../../src/redis.js'
import type { TestContext } from '../helper.js'
import { startRedis } from './redis.js'

/** A store backend for the store suites: a real Redis, or none for the in-memory implementation. */
export interface Backend {
  name: string
  /** Undefined for the in-memory backend. */
  redis: RedisClient | undefined
  /** A fresh keyspace per call, so that tests never see each other's keys. */
  keys: () => Keyspace
}

/**
 * The backends every store suite runs against: a single Redis node and the in-memory store.
 * The Redis client is the app's own, with the app's connection settings.
 */
export async function backends (t: TestContext): Promise<Backend[]> {
  const server = await startRedis()
  const redis = createRedisClient({ url: server.url }, pino({ level: 'silent' }))
  await waitForRedis(redis, 10_000)
  t.teardown(async () => {
    await redis.quit()
    await server.close()
  })
  return [
    { name: 'redis', redis, keys: () => new Keyspace(`${server.prefix}${randomUUID().slice(0, 8)}:`) },
    { name: 'memory', redis: undefined, keys: () => new Keyspace('unused:') }
  ]
}

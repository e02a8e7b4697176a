import { randomUUID } from 'node:crypto'
import { pino } from 'pino'
import { Keyspace, createRedisClient, waitForRedis, type RedisClient } from '../../src/store/redis.js'
import type { TestContext } from '../helper.js'
import { startRedis, startRedisCluster } from './redis.js'

/** A store backend for the store suites: a real Redis, or none for the in-memory implementation. */
export interface Backend {
  name: string
  /** Undefined for the in-memory backend. */
  redis: RedisClient | undefined
  /** A fresh keyspace per call, so that tests never see each other's keys. */
  keys: () => Keyspace
}

/**
 * The backends every store suite runs against: a single Redis node, a Redis Cluster of three masters,
 * and the in-memory store. The Redis clients are the app's own, with the app's connection settings,
 * so every key layout and script is proven cluster-safe by the same tests.
 */
export async function backends (t: TestContext): Promise<Backend[]> {
  const log = pino({ level: 'silent' })
  const [server, cluster] = await Promise.all([startRedis(), startRedisCluster()])
  const single = createRedisClient({ url: server.url }, log)
  const clustered = createRedisClient({ clusterNodes: cluster.nodes }, log)
  await Promise.all([waitForRedis(single, 10_000), waitForRedis(clustered, 10_000)])
  t.teardown(async () => {
    await Promise.all([single.quit(), clustered.quit()])
    await Promise.all([server.close(), cluster.close()])
  })
  const fresh = (prefix: string) => () => new Keyspace(`${prefix}${randomUUID().slice(0, 8)}:`)
  return [
    { name: 'redis', redis: single, keys: fresh(server.prefix) },
    { name: 'cluster', redis: clustered, keys: fresh(cluster.prefix) },
    { name: 'memory', redis: undefined, keys: () => new Keyspace('unused:') }
  ]
}

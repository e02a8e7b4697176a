import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

/** A Redis for one test file. */
export interface TestRedis {
  url: string
  /** A key prefix no other test uses, for a shared REDIS_URL. */
  prefix: string
  /** Releases the server (stops it and removes its data when this helper started it). */
  close: () => Promise<void>
}

/** A `redis-server` this test started, and so may stop, kill and restart. */
export interface OwnedRedis extends TestRedis {
  port: number
  dir: string
  /** Stops the server cleanly (SIGTERM: it writes and fsyncs the AOF when enabled). */
  stop: () => Promise<void>
  /** Kills the server with SIGKILL: what survives is only what was already persisted. */
  kill: () => Promise<void>
  /** Starts the server again on the same port and data directory. */
  restart: () => Promise<void>
}

export interface TestRedisOptions {
  /** Persist with an append-only file, fsynced on every write (as a queue's Redis should be). */
  appendOnly?: boolean
}

/** A free TCP port on 127.0.0.1. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { resolve(typeof address === 'object' && address !== null ? address.port : 0) })
    })
  })
}

async function waitForPing (port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.ping()
      client.disconnect()
      return
    } catch {
      client.disconnect()
      if (Date.now() > deadline) throw new Error(`redis on port ${port} did not start`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
}

/** Spawns `redis-server` on a free port in a temporary directory. */
export async function spawnRedis (options: TestRedisOptions = {}, extraArgs: string[] = []): Promise<OwnedRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'logout-relay-redis-'))
  const port = await freePort()
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', options.appendOnly === true ? 'yes' : 'no', '--appendfsync', 'always',
    '--daemonize', 'no', '--logfile', join(dir, 'redis.log'), ...extraArgs
  ]
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    child = spawn('redis-server', args, { stdio: 'ignore' })
    child.on('error', () => {})
    await waitForPing(port)
  }
  const exited = async (signal: NodeJS.Signals): Promise<void> => {
    const current = child
    child = undefined
    if (current === undefined || current.exitCode !== null) return
    const done = new Promise((resolve) => current.once('exit', resolve))
    current.kill(signal)
    await done
  }
  await start()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    prefix: `test:${randomUUID().slice(0, 8)}:`,
    stop: async () => { await exited('SIGTERM') },
    kill: async () => { await exited('SIGKILL') },
    restart: start,
    close: async () => {
      await exited('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function dockerAnswers (): Promise<boolean> {
  if (process.env['DOCKER_HOST'] === undefined && !existsSync('/var/run/docker.sock')) return false
  try {
    const { getContainerRuntimeClient } = await import('testcontainers')
    await Promise.race([
      getContainerRuntimeClient(),
      new Promise((_resolve, reject) => setTimeout(() => reject(new Error('timeout')), 5000).unref())
    ])
    return true
  } catch {
    return false
  }
}

/**
 * A real Redis for a test file: `REDIS_URL` when set (shared: keys are isolated by `prefix`); else a
 * container when a Docker engine answers; else a `redis-server` spawned on a free port. Fault tests
 * that stop or kill Redis use {@link spawnRedis}.
 */
export async function startRedis (): Promise<TestRedis> {
  const prefix = `test:${randomUUID().slice(0, 8)}:`
  const shared = process.env['REDIS_URL']
  if (shared !== undefined && shared !== '') return { url: shared, prefix, close: async () => {} }
  if (await dockerAnswers()) {
    const { GenericContainer } = await import('testcontainers')
    const container = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start()
    return {
      url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
      prefix,
      close: async () => { await container.stop() }
    }
  }
  return await spawnRedis()
}

/** A Redis Cluster of `redis-server` processes this test started. */
export interface TestCluster {
  /** `host:port` of each master, as REDIS_CLUSTER_NODES takes them. */
  nodes: string[]
  prefix: string
  close: () => Promise<void>
}

/**
 * A real Redis Cluster: `REDIS_CLUSTER_NODES` when set; else `masters` redis-server processes with
 * `cluster-enabled yes` on free ports, joined by `redis-cli --cluster create`, ready when every node
 * reports `cluster_state:ok`.
 */
export async function startRedisCluster (masters = 3): Promise<TestCluster> {
  const prefix = `test:${randomUUID().slice(0, 8)}:`
  const shared = process.env['REDIS_CLUSTER_NODES']
  if (shared !== undefined && shared !== '') return { nodes: shared.split(','), prefix, close: async () => {} }

  const servers: OwnedRedis[] = []
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(await spawnRedis({}, ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000']))
    }
    const nodes = servers.map((server) => `127.0.0.1:${server.port}`)
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'])
    const deadline = Date.now() + 20_000
    for (const server of servers) {
      for (;;) {
        const client = new Redis({ port: server.port, host: '127.0.0.1', maxRetriesPerRequest: 0 })
        client.on('error', () => {})
        const info = await client.cluster('INFO').catch(() => '')
        client.disconnect()
        if (String(info).includes('cluster_state:ok')) break
        if (Date.now() > deadline) throw new Error(`cluster node ${server.port} never became ok`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    return { nodes, prefix, close: async () => { await Promise.all(servers.map(async (server) => await server.close())) } }
  } catch (err) {
    await Promise.all(servers.map(async (server) => await server.close()))
    throw err
  }
}

async function run (command: string, args: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.on('error', reject)
    child.on('exit', (code) => code === 0 ? resolve() : reject(new Error(`${command} exited ${String(code)}:\n${output}`)))
  })
}

import { fork, spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { LoadResult } from './load.js'
import type { PacedResult } from './paced-load.js'

/** What the benchmarks share: processes they start and measure, the issuer, the Kratos double, the load. */

export const root = fileURLToPath(new URL('..', import.meta.url))
export const log = (line: string): void => { process.stderr.write(`bench: ${line}\n`) }
export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

const work = mkdtempSync(join(tmpdir(), 'logout-relay-bench-'))
const children: ChildProcess[] = []

/** Kills whatever is still running and removes the scratch files: call once, at the end. */
export function cleanUp (): void {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  rmSync(work, { recursive: true, force: true })
}

/** Seconds of CPU (user + system) a process has used: fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s. */
export function cpuSeconds (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

export function rssMegabytes (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
}

/** Runs a load job (see load.ts) in a process of its own: the generator never shares the server's core's loop. */
export async function load (job: Record<string, unknown>): Promise<LoadResult> {
  const file = join(work, `load-${randomUUID()}.json`)
  writeFileSync(file, JSON.stringify(job))
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench/load.ts'), file], { stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise((resolve) => child.on('exit', resolve))
  rmSync(file)
  if (code !== 0) throw new Error(`load generator exited ${String(code)}`)
  return JSON.parse(output) as LoadResult
}

/** Runs a time-to-revocation load job (see paced-load.ts) in a process of its own. */
export async function pacedLoad (job: Record<string, unknown>): Promise<PacedResult> {
  const file = join(work, `paced-${randomUUID()}.json`)
  writeFileSync(file, JSON.stringify(job))
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'bench/paced-load.ts'), file], { stdio: ['ignore', 'pipe', 'inherit'] })
  const chunks: Buffer[] = []
  child.stdout?.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  const code = await new Promise((resolve) => child.on('exit', resolve))
  rmSync(file)
  if (code !== 0) throw new Error(`paced load generator exited ${String(code)}`)
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as PacedResult
}

/**
 * A load job that posts form bodies (`logout_token=…`) to a server's back-channel logout route, one
 * per request, in order: `amount` requests (each body once), or for `duration` seconds (cycling).
 */
export function logoutLoad (port: number, bodies: string[], run: { amount: number } | { duration: number }): Record<string, unknown> {
  return {
    url: `http://127.0.0.1:${port}/backchannel-logout`,
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    bodies,
    ...run
  }
}

/** Starts `node <args>` with PORT set, and waits until it answers HTTP there. */
export async function startProcess (args: string[], env: Record<string, string>, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { cwd: root, env: { PATH: process.env['PATH'] ?? '', ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(child)
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`)
      return child
    } catch {
      await sleep(50)
    }
  }
  throw new Error(`${args.join(' ')} did not start`)
}

export async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.on('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

export async function listen (server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  return typeof address === 'object' && address !== null ? address.port : 0
}

export interface Issuer {
  issuer: string
  jwks: { keys: unknown[] }
  privateKey: KeyObject
  kid: string
  close: () => void
}

/** The issuer: an RSA key whose public half is served as the JWKS, as Hydra serves its own. */
export async function startIssuer (): Promise<Issuer> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const kid = 'bench-key'
  const jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] }
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks)))
  const issuer = `http://127.0.0.1:${await listen(server)}/`
  return { issuer, jwks, privateKey, kid, close: () => server.close() }
}

/**
 * Hydra-shaped logout tokens (RS256, typ JWT, no sub, no exp), one per sid, signed on worker threads:
 * signing is not what is measured. Valid for LOGOUT_TOKEN_MAX_AGE (300 s) from now.
 */
export async function signLogoutTokens ({ privateKey, kid, issuer }: Issuer, sids: string[]): Promise<string[]> {
  const iat = Math.floor(Date.now() / 1000)
  const slices = Math.max(1, Math.min(cpus().length, 4))
  const parts = await Promise.all(Array.from({ length: slices }, async (_, i) => await new Promise<string[]>((resolve, reject) => {
    const slice = sids.slice(Math.floor(i * sids.length / slices), Math.floor((i + 1) * sids.length / slices))
    const worker = new Worker(new URL('./sign-worker.mjs', import.meta.url), { workerData: { privateKey, kid, issuer, sids: slice, iat } })
    worker.once('message', resolve)
    worker.once('error', reject)
  })))
  return parts.flat()
}

/** What the Kratos double saw since its last reset: revocations, and when the first and the last came (ms). */
export interface KratosSaw { count: number, first: number, last: number }

export interface KratosDouble {
  port: number
  pid: number
  saw: (message: 'reset' | 'report') => Promise<KratosSaw>
  /** When each identity's revocation arrived since the last call (µs of the shared monotonic clock); then forgotten. */
  arrivals: () => Promise<Record<string, number>>
  /** Waits until `count` revocations arrived since the last reset (at most `timeoutMs`); what it saw. */
  revoked: (count: number, timeoutMs?: number) => Promise<KratosSaw>
  close: () => void
}

/**
 * The Kratos double (kratos-double.mjs), in a process of its own: 204 to every revocation, at once or
 * after `latencyMs`, counting them.
 */
export async function startKratosDouble (options: { latencyMs?: number } = {}): Promise<KratosDouble> {
  const child = fork(join(root, 'bench/kratos-double.mjs'), [], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, KRATOS_LATENCY_MS: String(options.latencyMs ?? 0) }
  })
  children.push(child)
  const port = await new Promise<number>((resolve) => child.once('message', (message) => resolve((message as { port: number }).port)))
  const ask = async <T>(message: string): Promise<T> => await new Promise((resolve) => {
    child.once('message', (answer) => resolve(answer as T))
    child.send(message)
  })
  const saw = async (message: 'reset' | 'report'): Promise<KratosSaw> => await ask<KratosSaw>(message)
  return {
    port,
    pid: child.pid ?? 0,
    saw,
    arrivals: async () => await ask<Record<string, number>>('arrivals'),
    async revoked (count, timeoutMs = 30_000) {
      const since = Date.now()
      let seen = await saw('report')
      while (seen.count < count && Date.now() - since < timeoutMs) {
        await sleep(20)
        seen = await saw('report')
      }
      return seen
    },
    close: () => child.disconnect()
  }
}

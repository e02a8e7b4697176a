import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { root } from './binaries.js'
import { call, type OryAnswer } from './ory.js'
import { ServiceProcess, waitFor } from './process.js'

const READY_TIMEOUT_MS = 30_000

/** One sample of a Prometheus text exposition: name, labels, value. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** Parses the Prometheus text format (the lines the relay's /metrics writes; comments skipped). */
export function parseMetrics (text: string): Sample[] {
  const samples: Sample[] = []
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (match === null) continue
    const labels: Record<string, string> = {}
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1] ?? ''] = (label[2] ?? '').replace(/\\(.)/g, '$1')
    }
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) })
  }
  return samples
}

/** The sum of a metric's samples whose labels include `labels` (0 when there is none). */
export function metricValue (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0)
}

/** A log line of the relay (pino JSON), parsed. */
export type LogLine = Record<string, unknown> & { msg?: string }

/**
 * The relay as a process: `node --import tsx src/server.ts` with the environment given and nothing
 * of the machine's but PATH, the way a container runs it.
 */
export class RelayProcess {
  readonly process: ServiceProcess
  readonly url: string
  readonly env: Record<string, string>

  private constructor (child: ServiceProcess, url: string, env: Record<string, string>) {
    this.process = child
    this.url = url
    this.env = env
  }

  static async start (env: Record<string, string>, logFile: string): Promise<RelayProcess> {
    const host = env['HOST'] ?? '127.0.0.1'
    const port = env['PORT']
    if (port === undefined) throw new Error('the relay needs a PORT')
    const full = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOST: host, ...env }
    const child = new ServiceProcess('logout-relay', process.execPath, ['--import', 'tsx', 'src/server.ts'], { env: full, cwd: root, logFile })
    const relay = new RelayProcess(child, `http://${host}:${port}`, full)
    try {
      await waitFor(async () => (await call(`${relay.url}/health/ready`)).status === 200,
        { timeoutMs: READY_TIMEOUT_MS, what: 'the relay to be ready (/health/ready 200)', processes: [child] })
    } catch (err) {
      await child.stop()
      throw err
    }
    return relay
  }

  async stop (): Promise<void> {
    await this.process.stop()
  }

  /** The relay's log lines that are JSON, parsed. */
  logs (): LogLine[] {
    return this.process.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine]
      } catch {
        return []
      }
    })
  }

  /** The relay's request log lines for a route (`"msg":"request completed"`). */
  requests (url: string): LogLine[] {
    return this.logs().filter((line) => line.msg === 'request completed' && line['url'] === url)
  }

  async metrics (): Promise<Sample[]> {
    const answer = await call(`${this.url}/metrics`, { headers: { accept: 'text/plain' } })
    if (answer.status !== 200) throw new Error(`the relay's /metrics answered ${answer.status}`)
    return parseMetrics(answer.text)
  }

  /** Calls the relay's admin API with a key of ADMIN_API_KEYS. */
  async admin<T = unknown> (method: 'GET' | 'POST', path: string, json?: unknown): Promise<OryAnswer<T>> {
    const key = (this.env['ADMIN_API_KEYS'] ?? '').split(',')[0] ?? ''
    return await call<T>(`${this.url}${path}`, { method, headers: { authorization: `Bearer ${key}` }, ...(json !== undefined ? { json } : {}) })
  }
}

/**
 * Runs `logout-relay doctor` (`node --import tsx src/cli.ts doctor`) with the relay's environment, or
 * that environment changed by `overrides` (undefined removes a variable). Resolves with its exit code
 * and output.
 */
export async function runDoctor (env: Record<string, string>, overrides: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<{ code: number | null, output: string }> {
  const merged: Record<string, string> = { ...env }
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) Reflect.deleteProperty(merged, name)
    else merged[name] = value
  }
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli.ts'), 'doctor'], { cwd: root, env: merged, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString('utf8') })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`doctor did not finish in ${timeoutMs} ms:\n${output}`))
    }, timeoutMs)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from './redis.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

/** The relay as a real process (`src/server.ts` through tsx, or any entry given), for tests that signal it. */
export interface RelayProcess {
  url: string
  child: ChildProcess
  /** Every line written to stdout and stderr. */
  output: string[]
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>
  signal: (signal: NodeJS.Signals) => void
}

export interface StartOptions {
  env: Record<string, string>
  /** The command after `node`; defaults to running the TypeScript entry through tsx. */
  args?: string[]
  cwd?: string
  /** Wait for /health/alive (default true). */
  waitUntilAlive?: boolean
}

export async function startRelayProcess (options: StartOptions): Promise<RelayProcess> {
  const port = options.env['PORT'] ?? String(await freePort())
  const child = spawn(process.execPath, options.args ?? ['--import', 'tsx', 'src/server.ts'], {
    cwd: options.cwd ?? root,
    env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', ...options.env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const output: string[] = []
  const collect = (chunk: Buffer): void => { output.push(...chunk.toString('utf8').split('\n').filter((line) => line !== '')) }
  child.stdout?.on('data', collect)
  child.stderr?.on('data', collect)
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'))
  })
  const relay: RelayProcess = {
    url: `http://127.0.0.1:${port}`,
    child,
    output,
    exited,
    signal: (signal) => { child.kill(signal) }
  }
  if (options.waitUntilAlive !== false) {
    const deadline = Date.now() + 20_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`relay exited early:\n${output.join('\n')}`)
      try {
        if ((await fetch(`${relay.url}/health/alive`)).ok) break
      } catch {}
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`relay did not start:\n${output.join('\n')}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  return relay
}

import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'

/** How many lines of a process's output a failure message quotes, and how much of each (Ory's lines run long). */
const TAIL_LINES = 20
const TAIL_LINE_LENGTH = 400

/**
 * A server or command this suite started, in a process group of its own, so that stopping it stops
 * whatever it spawned too. Its output goes to a log file and is kept in memory for failure messages.
 */
export class ServiceProcess {
  readonly lines: string[] = []
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  readonly #child: ChildProcess
  readonly #log: WriteStream
  #partial = ''
  #stopped = false

  constructor (readonly name: string, command: string, args: string[], options: { env: Record<string, string>, cwd?: string, logFile: string }) {
    this.#log = createWriteStream(options.logFile, { flags: 'a' })
    this.#child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true
    })
    const collect = (chunk: Buffer): void => {
      this.#log.write(chunk)
      const text = this.#partial + chunk.toString('utf8')
      const parts = text.split('\n')
      this.#partial = parts.pop() ?? ''
      this.lines.push(...parts)
    }
    this.#child.stdout?.on('data', collect)
    this.#child.stderr?.on('data', collect)
    this.exited = new Promise((resolve) => {
      this.#child.on('error', (err) => {
        this.lines.push(`${name}: could not start: ${err.message}`)
        resolve({ code: -1, signal: null })
      })
      this.#child.on('exit', (code, signal) => {
        if (this.#partial !== '') this.lines.push(this.#partial)
        this.#partial = ''
        resolve({ code, signal })
      })
    })
  }

  get pid (): number | undefined {
    return this.#child.pid
  }

  get running (): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** Whether it exited other than by {@link stop}: a crash, or a failure to start. */
  get crashed (): boolean {
    return !this.running && !this.#stopped
  }

  /** The last lines of its output, for a failure message. */
  tail (count = TAIL_LINES): string {
    const lines = this.lines.slice(-count).map((line) => line.length > TAIL_LINE_LENGTH ? `${line.slice(0, TAIL_LINE_LENGTH)}…` : line)
    return `--- last ${lines.length} lines of ${this.name} ---\n${lines.join('\n')}\n--- end of ${this.name} ---`
  }

  /**
   * Stops the whole process group: SIGTERM, then SIGKILL after `graceMs`. Resolves once the process
   * exited; a process that already exited is left alone.
   */
  async stop (graceMs = 5000): Promise<void> {
    this.#stopped = true
    if (this.running) {
      this.#signalGroup('SIGTERM')
      const timer = setTimeout(() => this.#signalGroup('SIGKILL'), graceMs)
      await this.exited
      clearTimeout(timer)
    }
    // Anything the process left behind in its group goes too.
    this.#signalGroup('SIGKILL')
    await new Promise<void>((resolve) => this.#log.end(resolve))
  }

  #signalGroup (signal: NodeJS.Signals): void {
    const pid = this.#child.pid
    if (pid === undefined) return
    try {
      process.kill(-pid, signal)
    } catch {}
  }
}

/** Runs a command to its end (a migration); rejects with its output when it fails or outlasts `timeoutMs`. */
export async function runToEnd (name: string, command: string, args: string[], options: { env: Record<string, string>, cwd?: string, logFile: string, timeoutMs: number }): Promise<ServiceProcess> {
  const child = new ServiceProcess(name, command, args, options)
  const timer = setTimeout(() => { child.stop(1000).catch(() => {}) }, options.timeoutMs)
  const { code, signal } = await child.exited
  clearTimeout(timer)
  await child.stop()
  if (code !== 0) {
    const why = signal !== null ? `was stopped after ${options.timeoutMs} ms (${signal})` : `exited ${String(code)}`
    throw new Error(`${name} ${why}\n${child.tail()}`)
  }
  return child
}

export interface WaitOptions {
  timeoutMs: number
  /** What is awaited, for the failure message: "Kratos to list no active session". */
  what: string
  /** Processes whose last log lines the failure message quotes. */
  processes?: Array<ServiceProcess | undefined>
  intervalMs?: number
}

/**
 * Polls `check` until it returns something other than undefined or false, and returns that. After
 * `timeoutMs` it fails with what was awaited, the last value or error seen, and the last lines of the
 * given processes' logs. A process of the list that exited by itself (not stopped by the test) ends
 * the wait at once.
 */
export async function waitFor<T> (check: () => Promise<T | undefined | false> | T | undefined | false, options: WaitOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
      last = value
    } catch (err) {
      last = err
    }
    const dead = options.processes?.find((child) => child?.crashed === true)
    if (dead !== undefined || Date.now() > deadline) {
      const reason = dead !== undefined ? `${dead.name} exited while waiting` : `timed out after ${options.timeoutMs} ms`
      const lastSeen = last instanceof Error ? last.message : JSON.stringify(last)
      const tails = (options.processes ?? []).filter((child) => child !== undefined).map((child) => child.tail())
      throw new Error(`waiting for ${options.what}: ${reason}; last seen: ${lastSeen}\n${tails.join('\n')}`)
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100))
  }
}

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Runs `script` in a process of its own with the service's logger as `log`, and collects its stdout
 * line by line, with the time each chunk arrived.
 */
function logFrom (script: string): { lines: Array<{ line: string, at: number }>, exited: Promise<number | null>, kill: () => void } {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    import { createLogger } from './src/ops/logger.ts'
    const log = createLogger('info')
    ${script}
  `], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: Array<{ line: string, at: number }> = []
  let rest = ''
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n')
    rest = parts.pop() ?? ''
    for (const line of parts) lines.push({ line, at: Date.now() })
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => { setImmediate(() => resolve(code)) }))
  return { lines, exited, kill: () => child.kill('SIGKILL') }
}

t.test('a lone line reaches stdout within a second, though it fills no batch', async (t) => {
  const run = logFrom(`
    log.info({ marker: 'lone', loggedAt: Date.now() }, 'one line')
    setInterval(() => {}, 1000)
  `)
  t.teardown(run.kill)
  const since = Date.now()
  while (!run.lines.some(({ line }) => line.includes('"marker":"lone"')) && Date.now() - since < 5000) {
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const line = run.lines.find(({ line }) => line.includes('"marker":"lone"'))
  t.ok(line, 'the line arrived while the process still runs')
  const loggedAt = line === undefined ? 0 : (JSON.parse(line.line) as { loggedAt: number }).loggedAt
  t.ok(line !== undefined && line.at - loggedAt < 1000, 'within the periodic flush, not at exit')
})

t.test('every line logged before process.exit is written, in order', async (t) => {
  const run = logFrom(`
    for (let i = 0; i < 20000; i++) log.info({ n: i }, 'line')
    process.exit(0)
  `)
  t.equal(await run.exited, 0)
  const numbers = run.lines.map(({ line }) => (JSON.parse(line) as { n: number }).n)
  t.equal(numbers.length, 20000)
  t.ok(numbers.every((n, i) => n === i), 'all of them, in the order they were logged')
})

t.test('a line logged just before an uncaught exception is written', async (t) => {
  const run = logFrom(`
    log.error({ marker: 'last words' }, 'about to fail')
    setImmediate(() => { throw new Error('boom') })
  `)
  t.not(await run.exited, 0)
  t.ok(run.lines.some(({ line }) => line.includes('"marker":"last words"')))
})

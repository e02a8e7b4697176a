#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { formatCheck, runDoctor } from './ops/doctor.js'
import { UsageError, auditCommand, deadLettersCommand, type CommandIo } from './ops/operator-commands.js'

const USAGE = `usage: logout-relay <command>

commands:
  serve                      run the relay (as the container does with node dist/server.js)
  doctor [--relay-url URL]   check the configuration, Redis, the issuer, Kratos and Hydra as the relay
                             sees them, and print the Hydra and Kratos settings to paste;
                             --relay-url: the relay as Hydra and Kratos reach it (default http://logout-relay:PORT)
  index backfill [options]   fill the sid index for logins made before the relay was installed
                             (index backfill --help for its options)
  dead-letters list [--limit N]
                             the revocations given up on, oldest first: what each was for, why and when
                             it failed, and when its retention (DEAD_LETTER_MAX_AGE, _COUNT) removes it
  dead-letters retry <id>|--all
                             send dead letters back to the queue, their attempts afresh, recorded as an
                             operator's retry
  dead-letters drop <id>|--all --yes
                             remove dead letters for good: their revocations never happen
  audit --identity <id> [--since D] [--limit N]
  audit --since D [--limit N]
                             finished revocations from the audit trail, newest first: an identity's, or
                             every one of the last D (30m, 1h, 2d); --limit: at most N (default 100)
  help                       this text

dead-letters and audit read the service's environment (REDIS_URL…), print a table on a terminal and
JSON lines otherwise (--json or --table to choose), and exit 0 when done, 1 when they cannot be
done (an unknown id, Redis unreachable), 64 for a wrong command line, 78 for an invalid configuration.
doctor exits 0 when every check passes, 1 when one fails, 2 when none fails but one warns,
78 when the configuration is invalid.
`

/** EX_USAGE (sysexits.h): the command line is wrong. */
const EX_USAGE = 64

// A reader that stops early (`doctor | head`) is no error: the rest goes unwritten, the exit status stays.
let stdoutClosed = false
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err
  stdoutClosed = true
})

/**
 * `logout-relay <command>`: the service's command line. Reads the environment here, in the one place
 * an entrypoint does; `doctor` itself takes it as an argument.
 */
async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      // The server starts on import and owns the process from then on (signals, exit codes).
      await import('./server.js')
      return -1
    case 'doctor':
      return await doctor(rest)
    case 'index':
      return await index(rest)
    case 'dead-letters':
    case 'audit':
      return await operator(command, rest)
    case 'help': case '--help': case '-h':
      process.stdout.write(USAGE)
      return 0
    default:
      process.stderr.write(command === undefined ? USAGE : `logout-relay: unknown command "${command}"\n\n${USAGE}`)
      return EX_USAGE
  }
}

async function doctor (args: string[]): Promise<number> {
  let relayUrl: string | undefined
  try {
    const { values } = parseArgs({ args, options: { 'relay-url': { type: 'string' } }, strict: true, allowPositionals: false })
    relayUrl = values['relay-url']
    if (relayUrl !== undefined) new URL(relayUrl) // eslint-disable-line no-new
  } catch (err) {
    process.stderr.write(`logout-relay doctor: ${(err as Error).message}\n\n${USAGE}`)
    return EX_USAGE
  }
  const out = (text: string): void => { if (!stdoutClosed) process.stdout.write(`${text}\n`) }
  out('logout-relay doctor\n')
  const report = await runDoctor({
    env: process.env,
    ...(relayUrl !== undefined ? { relayUrl } : {}),
    onResult: (result) => out(formatCheck(result))
  })
  const failed = report.checks.filter((check) => check.status === 'fail').length
  const warned = report.checks.filter((check) => check.status === 'warn').length
  out('')
  out(failed === 0 && warned === 0
    ? 'Every check passed.'
    : `${failed} check${failed === 1 ? '' : 's'} failed, ${warned} warned.`)
  if (report.setup !== undefined) out(`\n${report.setup}`)
  return report.exitCode
}

/** `index backfill`: stops after the identity in progress on the first Ctrl-C or SIGTERM, at once on a second. */
async function index (args: string[]): Promise<number> {
  const { INDEX_USAGE, runIndexCommand } = await import('./ops/index-backfill.js')
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(INDEX_USAGE)
    return 0
  }
  const interrupt = new AbortController()
  const stop = (): void => {
    if (interrupt.signal.aborted) process.exit(130)
    // On a terminal only: elsewhere stderr carries JSON lines.
    if (process.stderr.isTTY) process.stderr.write('\nstopping after the identity in progress (again to stop at once; the cursor keeps the place)\n')
    interrupt.abort()
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  return await runIndexCommand(args, { env: process.env, stdout: process.stdout, stderr: process.stderr, signal: interrupt.signal })
}

/** `dead-letters` and `audit`, with this process's environment and output. */
async function operator (command: 'dead-letters' | 'audit', args: string[]): Promise<number> {
  const io: CommandIo = {
    env: process.env,
    out: (line) => { if (!stdoutClosed) process.stdout.write(`${line}\n`) },
    err: (line) => { process.stderr.write(`logout-relay ${command}: ${line}\n`) },
    isTTY: process.stdout.isTTY === true
  }
  try {
    return await (command === 'audit' ? auditCommand(args, io) : deadLettersCommand(args, io))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`logout-relay ${command}: ${err.message}\n\n${USAGE}`)
    return EX_USAGE
  }
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exitCode = code
}, (err: unknown) => {
  process.stderr.write(`logout-relay: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
})

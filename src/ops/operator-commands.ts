import { parseArgs, type ParseArgsConfig } from 'node:util'
import { pino } from 'pino'
import { ConfigError, loadConfig, redactUrl, type Config } from '../config.js'
import { isRelayError } from '../errors.js'
import { jobIdentity, type Job } from '../store/revocation-queue.js'
import { openStores, type Stores } from '../store/stores.js'
import { DEFAULT_AUDIT_LIMIT, describeCause, parseDuration, recentRevocations, revocationsOf, type RevocationView } from '../usecases/audit.js'
import {
  MAX_DEAD_LETTER_LIMIT, dropAllDeadLetters, dropDeadLetter, listDeadLetters, parseDeadLetterCursor, retryAllDeadLetters, retryDeadLetter,
  type DeadLetterDeps, type DeadLetterView
} from '../usecases/dead-letters.js'
import { isIdentityId } from '../usecases/logout.js'
import { formatTable, shortTime } from './table.js'

/**
 * The operator's commands (`logout-relay dead-letters …`, `logout-relay audit …`): they read the
 * service's configuration from the environment they are given, open the service's own stores, act
 * through the same use cases as the admin API, and close. Output: a table on a terminal, JSON lines
 * otherwise (`--json`, `--table` force either).
 *
 * Exit status: 0 done; 1 it could not be done (an unknown dead letter, Redis unreachable or not
 * configured); 64 a wrong command line; 78 an invalid configuration.
 */
export interface CommandIo {
  env: Record<string, string | undefined>
  /** Writes one line to stdout. */
  out: (line: string) => void
  /** Writes one line to stderr. */
  err: (line: string) => void
  /** Whether stdout is a terminal. */
  isTTY: boolean
}

export const EX_USAGE = 64
export const EX_CONFIG = 78

const OUTPUT_OPTIONS = { json: { type: 'boolean' }, table: { type: 'boolean' }, limit: { type: 'string' } } as const

/** A wrong command line: its message is printed with the usage, and the exit status is 64. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE'
}

/** A command that could not be done: its message is printed, and the exit status is 1. */
class CommandFailed extends Error {
  readonly code = 'ERR_COMMAND_FAILED'
}

/** `dead-letters list [--limit N]`, `dead-letters retry <id>|--all`, `dead-letters drop <id>|--all --yes`. */
export async function deadLettersCommand (args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(args, { ...OUTPUT_OPTIONS, all: { type: 'boolean' }, yes: { type: 'boolean' } })
  const [action, id, ...extra] = positionals
  const table = tableWanted(values, io)
  if (extra.length > 0) throw new UsageError(`unexpected "${extra.join(' ')}"`)
  switch (action) {
    case 'list': {
      if (id !== undefined || values.all === true || values.yes === true) throw new UsageError('list takes no id, --all or --yes')
      const limit = values.limit === undefined ? Number.POSITIVE_INFINITY : wholeNumber('--limit', values.limit, 1, 10_000_000)
      return await withStores(io, async (stores, config) => { list(await allDeadLetters(deadLetterDeps(stores, config), limit), table, io) })
    }
    case 'retry':
    case 'drop': {
      if (values.limit !== undefined) throw new UsageError(`${action} takes no --limit`)
      if ((id === undefined) === (values.all !== true)) throw new UsageError(`${action} takes a dead letter's id, or --all`)
      if (action === 'drop' && values.all === true && values.yes !== true) {
        throw new UsageError('drop --all removes every dead letter for good, and their revocations never happen: add --yes to mean it')
      }
      return await withStores(io, async (stores, config) => {
        const deps = deadLetterDeps(stores, config)
        if (action === 'retry') {
          const cause = { kind: 'operator-retry', via: 'cli' } as const
          const jobs = id === undefined ? await retryAllDeadLetters(deps, cause) : [await retryDeadLetter(deps, id, cause).catch(notFound(id))]
          report(jobs.map((job) => ({ ...jobFields(job), status: 'queued' })), id === undefined ? 'retried' : undefined, table, io)
        } else {
          const letters = id === undefined ? await dropAllDeadLetters(deps) : [await dropDeadLetter(deps, id).catch(notFound(id))]
          report(letters.map((letter) => ({ ...jobFields(letter), status: 'dropped' })), id === undefined ? 'dropped' : undefined, table, io)
        }
      })
    }
    default:
      throw new UsageError(action === undefined ? 'dead-letters needs list, retry or drop' : `unknown dead-letters command "${action}"`)
  }
}

/** `audit --identity <id> [--since D]`, `audit --since D`: finished revocations, newest first. */
export async function auditCommand (args: string[], io: CommandIo): Promise<number> {
  const { values, positionals } = parse(args, { ...OUTPUT_OPTIONS, identity: { type: 'string' }, since: { type: 'string' } })
  const table = tableWanted(values, io)
  if (positionals.length > 0) throw new UsageError(`unexpected "${positionals.join(' ')}"`)
  if (values.identity === undefined && values.since === undefined) throw new UsageError('audit needs --identity, --since, or both')
  if (values.identity !== undefined && !isIdentityId(values.identity)) throw new UsageError('--identity must be a Kratos identity id (a UUID)')
  const since = values.since === undefined ? undefined : parseDuration(values.since)
  if (since === undefined && values.since !== undefined) throw new UsageError(`--since must be a duration such as 30m, 1h or 2d, got "${values.since}"`)
  const limit = values.limit === undefined ? DEFAULT_AUDIT_LIMIT : wholeNumber('--limit', values.limit, 1, 100_000)
  const identityId = values.identity?.toLowerCase()
  return await withStores(io, async (stores) => {
    const from = since === undefined ? undefined : Date.now() - since
    const records = identityId !== undefined
      ? await revocationsOf(stores, identityId, limit, from)
      : await recentRevocations(stores, from ?? 0, limit)
    if (!table) {
      for (const record of records) io.out(JSON.stringify(record))
      return
    }
    if (records.length === 0) {
      io.out('No revocations recorded.')
      return
    }
    io.out(formatTable(['FINISHED', 'OUTCOME', 'KIND', 'IDENTITY', 'SID', 'ATTEMPTS', 'FAILED ATTEMPTS', 'CAUSE'], records.map(revocationRow)))
    io.out(`\n${records.length} revocation${records.length === 1 ? '' : 's'}, newest first`)
  })
}

function parse<T extends NonNullable<ParseArgsConfig['options']>> (args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true })
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err })
  }
}

function tableWanted (values: { json?: unknown, table?: unknown }, io: CommandIo): boolean {
  if (values.json === true && values.table === true) throw new UsageError('give --json or --table, not both')
  return values.table === true || (values.json !== true && io.isTTY)
}

function wholeNumber (name: string, value: string, min: number, max: number): number {
  const number = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN
  if (!(number >= min && number <= max)) throw new UsageError(`${name} must be a whole number from ${min} to ${max}, got "${value}"`)
  return number
}

/**
 * Loads the configuration, opens the service's stores (Redis only: the in-memory ones are the running
 * relay's own), runs `act`, and closes them. Returns the exit status.
 */
async function withStores (io: CommandIo, act: (stores: Stores, config: Config) => Promise<void>): Promise<number> {
  let config: Config
  try {
    config = loadConfig(io.env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    io.err(err.message)
    return EX_CONFIG
  }
  const target = config.redis.url !== undefined ? redactUrl(config.redis.url) : config.redis.clusterNodes.join(',')
  if (target === '') {
    io.err('REDIS_URL (or REDIS_CLUSTER_NODES) is not set: without Redis the queue and its audit trail live in the running relay\'s memory; use its admin API')
    return 1
  }
  const stores = await openStores({
    redis: config.redis,
    index: config.index,
    audit: config.audit,
    log: pino({ level: 'silent' }),
    clock: Date.now,
    connectTimeoutMs: config.redis.commandTimeoutMs
  })
  try {
    try {
      await stores.ping()
    } catch {
      throw new CommandFailed(`cannot reach Redis at ${target}`)
    }
    await act(stores, config)
    return 0
  } catch (err) {
    if (err instanceof CommandFailed) {
      io.err(err.message)
      return 1
    }
    if (isRelayError(err) && err.code === 'ERR_STORE_UNAVAILABLE') {
      io.err(`cannot reach Redis at ${target}`)
      return 1
    }
    throw err
  } finally {
    await stores.close()
  }
}

function deadLetterDeps (stores: Stores, config: Config): DeadLetterDeps {
  return { queue: stores.queue, retention: config.deadLetters, clock: Date.now }
}

/** Every dead letter, up to `limit`, page by page. */
async function allDeadLetters (deps: DeadLetterDeps, limit: number): Promise<{ letters: DeadLetterView[], total: number }> {
  const letters: DeadLetterView[] = []
  let cursor: string | null = null
  let total = 0
  do {
    const after = cursor === null ? undefined : parseDeadLetterCursor(cursor)
    const page = await listDeadLetters(deps, { limit: Math.min(MAX_DEAD_LETTER_LIMIT, limit - letters.length), ...(after !== undefined ? { cursor: after } : {}) })
    letters.push(...page.dead_letters)
    total = page.total
    cursor = page.next_cursor
  } while (cursor !== null && letters.length < limit)
  return { letters, total }
}

function list ({ letters, total }: { letters: DeadLetterView[], total: number }, table: boolean, io: CommandIo): void {
  if (!table) {
    for (const letter of letters) io.out(JSON.stringify(letter))
    return
  }
  if (letters.length === 0) {
    io.out('No dead letters.')
    return
  }
  io.out(formatTable(
    ['ID', 'KIND', 'IDENTITY', 'SID', 'ATTEMPTS', 'STATUS', 'LAST ERROR', 'CREATED', 'BURIED', 'REMOVED BY RETENTION', 'CAUSE'],
    letters.map((letter) => [
      letter.id,
      letter.kind,
      letter.identity_id ?? '-',
      letter.sid ?? '-',
      String(letter.attempts),
      letter.last_status !== undefined ? String(letter.last_status) : letter.last_failure ?? '-',
      letter.last_error,
      shortTime(letter.created_at),
      shortTime(letter.buried_at),
      letter.expires_by === 'count' ? 'at its next pass (beyond DEAD_LETTER_MAX_COUNT)' : shortTime(letter.expires_at),
      describeCause(letter.cause)
    ])
  ))
  io.out(`\n${letters.length === total ? `${total}` : `${letters.length} of ${total}`} dead letter${total === 1 ? '' : 's'}, oldest first`)
}

function revocationRow (record: RevocationView): string[] {
  const failed = record.history.flatMap((attempt) => attempt.outcome === 'failed' ? [attempt.status !== undefined ? String(attempt.status) : attempt.kind] : [])
  return [
    shortTime(record.finished_at),
    record.outcome,
    record.kind,
    record.identity_id ?? '-',
    record.sid ?? '-',
    String(record.attempts),
    failed.length > 0 ? failed.join(' ') : '-',
    describeCause(record.cause)
  ]
}

function jobFields (job: Job): Record<string, unknown> {
  const identityId = jobIdentity(job)
  return { id: job.id, kind: job.target.kind, ...(identityId !== undefined ? { identity_id: identityId } : {}), ...(job.sid !== undefined ? { sid: job.sid } : {}) }
}

/** What a retry or drop did: a sentence per dead letter on a terminal (and a count for --all), JSON lines otherwise. */
function report (done: Array<Record<string, unknown>>, all: 'retried' | 'dropped' | undefined, table: boolean, io: CommandIo): void {
  for (const entry of done) {
    if (!table) {
      io.out(JSON.stringify(entry))
      continue
    }
    const what = [entry['kind'], entry['identity_id'] !== undefined ? `identity ${String(entry['identity_id'])}` : undefined, entry['sid'] !== undefined ? `sid ${String(entry['sid'])}` : undefined]
      .filter((part) => part !== undefined).join(', ')
    io.out(entry['status'] === 'queued'
      ? `retried ${String(entry['id'])} (${what}): queued again, as an operator's retry`
      : `dropped ${String(entry['id'])} (${what}): removed for good, it will not be revoked`)
  }
  if (all !== undefined && table) io.out(`${all} ${done.length} dead letter${done.length === 1 ? '' : 's'}`)
}

function notFound (id: string): (err: unknown) => never {
  return (err) => {
    if (isRelayError(err) && err.code === 'ERR_DEAD_LETTER_NOT_FOUND') {
      throw new CommandFailed(`no dead letter has the id ${id} (retried or dropped already, removed by its retention, or never one)`)
    }
    throw err
  }
}

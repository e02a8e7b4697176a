import { parseArgs } from 'node:util'
import type { Clock } from '../clock.js'
import { ConfigError, loadConfig, redactUrl, type Config } from '../config.js'
import { createHydraAdmin, createKratosAdmin, type AdminClient } from '../ory/admin.js'
import { PROOF_REQUESTS, judgeProofAnswer, type AdminService } from '../ory/admin-proof.js'
import { countIdentities, listConsentSessions, listIdentitiesPage } from '../ory/listings.js'
import { createPacer } from '../pacer.js'
import { CURSOR_TTL_SECONDS, LOCK_TTL_MS, createRedisBackfillCursor } from '../store/backfill-cursor.js'
import { Keyspace, createRedisClient, type RedisClient } from '../store/redis.js'
import { createRedisRevocationQueue } from '../store/revocation-queue.js'
import { createRedisSessionIndex } from '../store/session-index.js'
import { longestReplayWindowSeconds } from '../token/replay-window.js'
import { runBackfill, type BackfillResult } from '../usecases/backfill.js'
import { countsJson, createProgressDisplay, formatCount, formatDuration, type ProgressMode } from './backfill-progress.js'

export const INDEX_USAGE = `usage: logout-relay index backfill [--rate N] [--dry-run] [--restart] [--json] [--progress auto|bar|lines|none]

Fills the sid index for the login sessions that began before the relay was installed: for every
identity Kratos lists, the login sessions of the consent sessions Hydra lists for it. Resumes where
an earlier run stopped (a cursor in Redis, kept ${CURSOR_TTL_SECONDS / 86_400} days).

  --rate N      identities per second at most (default 20)
  --dry-run     read what a run would read (from the cursor, unless --restart), write nothing;
                report what would be indexed
  --restart     begin again instead of resuming
  --json        the summary as JSON on stdout
  --progress    on stderr: a bar on a terminal, JSON lines every 5 s otherwise (auto, the default)

exit status: 0 done; 1 errors (listed; run again to resume); 64 usage; 78 configuration invalid;
130 interrupted (run again to resume).
`

/** The exit statuses of the command (sysexits.h where they apply). */
export const EXIT = { done: 0, errors: 1, usage: 64, config: 78, interrupted: 130 } as const

export const DEFAULT_RATE = 20

/** Where the command writes, and what it reads: given by the entrypoint. */
export interface CommandIo {
  env: Record<string, string | undefined>
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown, isTTY?: boolean | undefined, columns?: number | undefined }
  /** Aborted on Ctrl-C (SIGINT) or SIGTERM: the run stops after the identity in progress. */
  signal?: AbortSignal
  clock?: Clock
}

interface Options {
  rate: number
  dryRun: boolean
  restart: boolean
  json: boolean
  progress: ProgressMode
}

class UsageError extends Error {}

function parseOptions (args: string[], stderrIsTty: boolean): Options {
  const [subcommand, ...rest] = args
  if (subcommand !== 'backfill') throw new UsageError(subcommand === undefined ? 'a subcommand is required' : `unknown subcommand "${subcommand}"`)
  const { values } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: false,
    options: {
      rate: { type: 'string' },
      'dry-run': { type: 'boolean' },
      restart: { type: 'boolean' },
      json: { type: 'boolean' },
      progress: { type: 'string' }
    }
  })
  const rate = values.rate === undefined ? DEFAULT_RATE : Number(values.rate)
  if (!Number.isFinite(rate) || rate <= 0 || rate > 10_000) throw new UsageError(`--rate must be a number of identities per second above 0 (at most 10000), got "${values.rate ?? ''}"`)
  const progress = values.progress ?? 'auto'
  if (!['auto', 'bar', 'lines', 'none'].includes(progress)) throw new UsageError(`--progress must be auto, bar, lines or none, got "${progress}"`)
  return {
    rate,
    dryRun: values['dry-run'] === true,
    restart: values.restart === true,
    json: values.json === true,
    progress: progress === 'auto' ? (stderrIsTty ? 'bar' : 'lines') : progress as ProgressMode
  }
}

/** The Redis connection of a batch job: the service's options, failing fast instead of reconnecting. */
async function connectRedis (config: Config): Promise<RedisClient> {
  const client = createRedisClient(config.redis, undefined, { timeoutMs: config.redis.commandTimeoutMs })
  let cause: Error | undefined
  client.on('error', (err: Error) => { cause = err })
  try {
    await client.connect()
  } catch (err) {
    client.disconnect()
    throw cause ?? err
  }
  return client
}

/** Whether an admin URL answers its admin API, judged as the relay judges it before revoking there. */
async function prove (service: AdminService, adminUrl: string, client: AdminClient): Promise<{ ok: true } | { ok: false, exit: number, message: string }> {
  const { variable, what, path } = PROOF_REQUESTS[service]
  let answer
  try {
    answer = await client.get(path)
  } catch (err) {
    return { ok: false, exit: EXIT.errors, message: `${what} at ${redactUrl(adminUrl).replace(/\/+$/, '')} does not answer (${(err as Error).message}): nothing was read or written` }
  }
  const location = answer.headers['location']
  const proof = judgeProofAnswer(service, adminUrl, {
    status: answer.status, contentType: answer.headers['content-type'], body: answer.body, location: Array.isArray(location) ? location[0] : location
  })
  if (proof.state === 'proven') return { ok: true }
  if (proof.state === 'unreachable') return { ok: false, exit: EXIT.errors, message: `${what} at ${redactUrl(adminUrl).replace(/\/+$/, '')} cannot be used now (${proof.reason}): nothing was read or written` }
  return { ok: false, exit: EXIT.config, message: `${variable} is not ${what}: ${proof.reason} — fix: ${proof.fix}` }
}

/**
 * `logout-relay index backfill`: the wiring of the backfill use case (the service's configuration,
 * its Redis and admin clients), its progress on stderr, and its summary on stdout. Returns the exit
 * status.
 */
export async function runIndexCommand (args: string[], io: CommandIo): Promise<number> {
  const clock = io.clock ?? Date.now
  const fail = (message: string, status: number): number => {
    io.stderr.write(`logout-relay index backfill: ${message}\n`)
    return status
  }
  let options: Options
  try {
    options = parseOptions(args, io.stderr.isTTY === true)
  } catch (err) {
    io.stderr.write(`logout-relay index: ${(err as Error).message}\n\n${INDEX_USAGE}`)
    return EXIT.usage
  }

  let config: Config
  try {
    config = loadConfig(io.env)
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message, EXIT.config)
    throw err
  }
  if (config.redis.url === undefined && config.redis.clusterNodes.length === 0) {
    return fail('REDIS_URL (or REDIS_CLUSTER_NODES) is not set: the index lives in the relay\'s own memory then, which no other process can fill — set it to the relay\'s Redis', EXIT.config)
  }

  const admin = { timeoutMs: config.upstreamTimeoutMs, proxy: config.proxy }
  const kratos = createKratosAdmin({ ...admin, adminUrl: config.kratos.adminUrl, token: config.kratos.adminToken })
  const hydra = createHydraAdmin({ ...admin, adminUrl: config.hydra.adminUrl, token: config.hydra.adminToken })
  let redis: RedisClient | undefined
  let renewal: NodeJS.Timeout | undefined
  try {
    const target = config.redis.url !== undefined ? redactUrl(config.redis.url) : `cluster ${config.redis.clusterNodes.join(',')}`
    try {
      redis = await connectRedis(config)
    } catch (err) {
      return fail(`Redis (${target}) does not answer (${(err as Error).message}): nothing was read or written`, EXIT.errors)
    }
    for (const [service, url, client] of [['kratos', config.kratos.adminUrl, kratos], ['hydra', config.hydra.adminUrl, hydra]] as const) {
      const proof = await prove(service, url, client)
      if (!proof.ok) return fail(proof.message, proof.exit)
    }

    const keys = new Keyspace(config.redis.keyPrefix)
    const cursor = createRedisBackfillCursor(redis, keys)
    if (!options.dryRun) {
      let locked: boolean
      try {
        locked = await cursor.lock.acquire()
      } catch (err) {
        return fail(`Redis (${target}) does not answer (${(err as Error).message})`, EXIT.errors)
      }
      if (!locked) {
        return fail(`another backfill is running (it holds ${cursor.key}:lock, which expires ${LOCK_TTL_MS / 1000} s after that run stops): wait for it, or run again once it has ended`, EXIT.errors)
      }
      // The lock outlives a run only briefly: renewed while this one runs, released at its end.
      renewal = setInterval(() => { cursor.lock.renew().catch(() => {}) }, LOCK_TTL_MS / 3)
      renewal.unref()
    }

    const total = await countIdentities(kratos)
    const display = createProgressDisplay({ mode: options.progress, output: io.stderr, clock, dryRun: options.dryRun, total })
    let result: BackfillResult
    try {
      result = await runBackfill({
        identities: async (token) => await listIdentitiesPage(kratos, token),
        consents: async (subject) => await listConsentSessions(hydra, subject),
        index: createRedisSessionIndex(redis, keys, { ...config.index, clock }),
        queue: createRedisRevocationQueue(redis, keys, clock),
        rememberSeconds: longestReplayWindowSeconds(config.oidc),
        cursor: cursor.store,
        clock,
        limiter: createPacer(options.rate, { clock }),
        onProgress: (event) => display.event(event)
      }, { dryRun: options.dryRun, restart: options.restart, ...(io.signal !== undefined ? { signal: io.signal } : {}) })
    } finally {
      display.stop()
    }
    const status = result.outcome === 'interrupted' ? EXIT.interrupted : result.outcome === 'stopped' || result.failures.length > 0 ? EXIT.errors : EXIT.done
    io.stdout.write(options.json
      ? `${JSON.stringify(summaryJson(result, options, status, cursor.key, total), null, 2)}\n`
      : summaryText(result, options, cursor.key))
    if (!options.dryRun) await cursor.lock.release().catch(() => {})
    return status
  } finally {
    clearInterval(renewal)
    redis?.disconnect()
    await Promise.all([kratos.close(), hydra.close()])
  }
}

/** The summary as JSON (`--json`): the counts of this run and since the backfill began, what failed, the cursor. */
function summaryJson (result: BackfillResult, options: Options, status: number, cursorKey: string, total: number | undefined): Record<string, unknown> {
  return {
    outcome: result.outcome,
    exit_status: status,
    dry_run: options.dryRun,
    elapsed_seconds: Math.round(result.elapsedMs / 100) / 10,
    rate_limit_per_second: options.rate,
    identities_total: total ?? null,
    this_run: countsJson(result.counts),
    since_start: countsJson(result.totals),
    resumed_from: result.resumed === undefined ? null : { started_at: new Date(result.resumed.startedAt).toISOString(), identities: result.resumed.totals.identities, failed: result.resumed.failed.length },
    stop: result.stop ?? null,
    failures: result.failures.map((failure) => ({ identity_id: failure.identityId, error: failure.error })),
    conflicts: result.conflicts.map((conflict) => ({ sid: conflict.sid, identity_id: conflict.identityId, indexed_for: conflict.indexedFor ?? null })),
    cursor: { state: result.cursor, key: cursorKey, expires_in_seconds: result.cursor === 'kept' ? CURSOR_TTL_SECONDS : null, failed_identities: result.pendingFailures }
  }
}

/** Failures and conflicts the text summary lists at most (`--json` lists them all). */
const LISTED = 20

/** The summary as text: a table of the counts, what failed, and what to do next. */
export function summaryText (result: BackfillResult, options: Options, cursorKey: string): string {
  const lines: string[] = []
  const failed = result.failures.length === 0 ? '' : `; ${formatCount(result.failures.length)} identit${result.failures.length === 1 ? 'y' : 'ies'} could not be read`
  lines.push(`logout-relay index backfill${options.dryRun ? ' (dry run: nothing written)' : ''}: ${result.outcome} after ${formatDuration(result.elapsedMs / 1000)}${failed}`)
  if (result.resumed !== undefined) lines.push(`resumed the backfill begun ${new Date(result.resumed.startedAt).toISOString()}`)
  lines.push('')
  const resumed = result.resumed !== undefined
  const rows: Array<[string, keyof BackfillResult['counts']]> = [
    ['identities read', 'identities'],
    ['consent sessions read', 'consentSessions'],
    [options.dryRun ? 'sids to index' : 'sids indexed', 'sidsIndexed'],
    ['already known', 'alreadyKnown'],
    ['conflicts', 'conflicts'],
    ['revocations queued', 'lateLogouts'],
    ['errors', 'errors']
  ]
  if (result.totals.consentSessionsUnread > 0) rows.splice(2, 0, ['consent sessions not reached', 'consentSessionsUnread'])
  lines.push(`  ${''.padEnd(30)}${'this run'.padStart(10)}${resumed ? 'since it began'.padStart(16) : ''}`)
  for (const [label, name] of rows) {
    lines.push(`  ${label.padEnd(30)}${formatCount(result.counts[name]).padStart(10)}${resumed ? formatCount(result.totals[name]).padStart(16) : ''}`)
  }
  if (result.counts.lateLogouts > 0) lines.push('  (revocations queued: the logout of those sids came before they were indexed; the relay\'s workers run them)')

  if (result.stop !== undefined) lines.push('', `stopped by ${result.stop.source}: ${result.stop.message}`)
  if (result.failures.length > 0) {
    lines.push('', 'identities whose consent sessions could not be read:')
    for (const failure of result.failures.slice(0, LISTED)) lines.push(`  ${failure.identityId}: ${failure.error}`)
    if (result.failures.length > LISTED) lines.push(`  … and ${formatCount(result.failures.length - LISTED)} more (--json lists them all)`)
  }
  if (result.conflicts.length > 0) {
    lines.push('', 'sids indexed for another identity than Hydra names (left as they are: a sid is never remapped):')
    for (const conflict of result.conflicts.slice(0, LISTED)) lines.push(`  ${conflict.sid}: Hydra says ${conflict.identityId}, the index ${conflict.indexedFor ?? 'another identity'}`)
    if (result.counts.conflicts > LISTED) lines.push(`  … and ${formatCount(result.counts.conflicts - LISTED)} more (--json lists ${result.conflicts.length})`)
  }
  if (result.counts.consentSessionsUnread > 0) {
    lines.push('', `${formatCount(result.counts.consentSessionsUnread)} consent sessions were not reached: Hydra lists a subject's newest 500 on one page and links no usable next one; the ones past it are the oldest`)
  }

  lines.push('')
  switch (result.cursor) {
    case 'cleared':
      lines.push('Every identity is done; the cursor is deleted, and a next run begins again.')
      break
    case 'kept':
      lines.push(`The cursor is kept (${cursorKey}, for ${CURSOR_TTL_SECONDS / 86_400} days): run the command again to continue where this run stopped${result.pendingFailures > 0 ? `, trying the ${formatCount(result.pendingFailures)} that failed first` : ''}; --restart to begin again.`)
      break
    case 'untouched':
      lines.push('Nothing was written. Run it without --dry-run to index.')
      break
  }
  return `${lines.join('\n')}\n`
}

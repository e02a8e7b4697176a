import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from '../clock.js'
import { isRelayError } from '../errors.js'
import { UpstreamError, type OryService } from '../ory/admin-http.js'
import type { ConsentListing, IdentityPage } from '../ory/listings.js'
import type { RateLimiter } from '../pacer.js'
import {
  BackfillLockLost, MAX_FAILED_IN_CURSOR, emptyCounts,
  type BackfillCounts, type BackfillCursor, type BackfillCursorStore
} from '../store/backfill-cursor.js'
import type { RevocationQueue } from '../store/revocation-queue.js'
import type { SessionIndex } from '../store/session-index.js'
import { MAX_SID_LENGTH, indexSid } from './login-hook.js'

/**
 * What the backfill reads and writes, each as an argument: Kratos' identities page by page, Hydra's
 * consent sessions of a subject, the index (written through the login hook's own code), the cursor,
 * and the pace.
 */
export interface BackfillDeps {
  /** One page of Kratos' identities, in a stable order; without a token, the first. */
  identities: (pageToken: string | undefined) => Promise<IdentityPage>
  /** Every consent session Hydra lists for a subject. */
  consents: (subject: string) => Promise<ConsentListing>
  index: Pick<SessionIndex, 'resolve' | 'add' | 'forgetLogout'>
  /** Where the revocation goes for a sid whose logout came before it was indexed, as the login hook queues it. */
  queue: Pick<RevocationQueue, 'enqueue'>
  /** How long that revocation dedupes with the logout tokens of the same sid (the login hook's). */
  rememberSeconds: number
  cursor: BackfillCursorStore
  clock: Clock
  /** Consulted once per identity, before its consent sessions are read. */
  limiter: RateLimiter
  /** Told of each step, for a progress display. */
  onProgress: (event: BackfillEvent) => void
  /** Waits between the attempts of a call; rejects with an `AbortError` when the signal aborts. */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>
}

export interface BackfillOptions {
  /** Read everything and write nothing: neither the index, nor the queue, nor the cursor. */
  dryRun?: boolean
  /** Begin again: the cursor of an unfinished backfill is ignored (and, unless a dry run, deleted). */
  restart?: boolean
  /** Stops the run between two identities (Ctrl-C); the cursor then points after the last one done. */
  signal?: AbortSignal
  /** Attempts of a call that fails transiently (no answer, 5xx, 429, 408), and the backoff between them. */
  retry?: { attempts: number, baseMs: number, maxMs: number }
  /** Identities in a row whose consent sessions cannot be read before the run stops (Hydra is down). */
  maxConsecutiveFailures?: number
}

/** A step of the run, for the progress display. */
export type BackfillEvent =
  /** The run begins, after an earlier run's cursor when `resumed`. */
  | { kind: 'start', resumed: BackfillCursor | undefined, dryRun: boolean }
  /** An identity is done (or failed): where the run stands. */
  | { kind: 'progress', counts: BackfillCounts, totals: BackfillCounts }
  /** A call failed transiently and is made again after `delayMs`. */
  | { kind: 'retry', service: OryService, attempt: number, delayMs: number, error: string }
  /** The consent sessions of an identity could not be read: the next run tries it again. */
  | { kind: 'failure', identityId: string, error: string }
  /** A sid is indexed for another identity than the one Hydra's consent names: never remapped. */
  | { kind: 'conflict', sid: string, identityId: string, indexedFor: string | undefined }

export interface BackfillFailure {
  identityId: string
  error: string
}

export interface BackfillConflict {
  sid: string
  /** The identity whose consent session names the sid. */
  identityId: string
  /** The identity the index holds the sid for (unknown when the hook indexed it in the same instant). */
  indexedFor: string | undefined
}

/** Why a run stopped before the end. */
export interface BackfillStop {
  /** What failed: an admin API, the store, or the cursor's lock. */
  source: OryService | 'redis' | 'lock'
  message: string
}

export interface BackfillResult {
  /**
   * `done`: every identity was read (`failures` may still list some, which a next run retries);
   * `stopped`: an error ended the run (see `stop`); `interrupted`: the signal did.
   */
  outcome: 'done' | 'stopped' | 'interrupted'
  stop?: BackfillStop
  /** This run's counts. */
  counts: BackfillCounts
  /** Since the backfill began, earlier runs of the cursor included. */
  totals: BackfillCounts
  /** The identities this run could not read. */
  failures: BackfillFailure[]
  /** The conflicts this run found (at most {@link MAX_LISTED_CONFLICTS}). */
  conflicts: BackfillConflict[]
  /** The cursor this run continued from. */
  resumed: BackfillCursor | undefined
  /**
   * `kept`: an unfinished backfill's cursor is in the store, and the next run continues from it;
   * `cleared`: the backfill is done; `untouched`: a dry run.
   */
  cursor: 'kept' | 'cleared' | 'untouched'
  /** Identities the cursor lists as failed: a next run tries them first. */
  pendingFailures: number
  elapsedMs: number
}

/** Conflicts a result lists at most (all are counted). */
export const MAX_LISTED_CONFLICTS = 100

const DEFAULT_RETRY = { attempts: 4, baseMs: 500, maxMs: 8000 }

/** The run must end: the reason, as the result says it. */
class Stop extends Error {
  constructor (readonly stop: BackfillStop) {
    super(stop.message)
  }
}

function isAbort (err: unknown): boolean {
  return (err as { name?: unknown } | undefined)?.name === 'AbortError'
}

/** An upstream error that says the URL or the token is wrong: no identity will fare better. */
function isMisconfiguration (err: unknown): boolean {
  return err instanceof UpstreamError && !err.transient && (err.misrouted || err.status === 401 || err.status === 403)
}

/** A store failure or a lost lock as the reason to stop; anything else is left as it is. */
function storeStop (err: unknown): unknown {
  if (err instanceof BackfillLockLost) return new Stop({ source: 'lock', message: `${err.message}: this run stops` })
  if (isRelayError(err) && err.code === 'ERR_STORE_UNAVAILABLE') {
    const cause = (err.cause as Error | undefined)?.message
    return new Stop({ source: 'redis', message: `Redis does not answer${cause !== undefined ? ` (${cause})` : ''}` })
  }
  return err
}

/**
 * Fills the sid index for the login sessions that began before the relay's login hook was installed:
 * for every identity Kratos lists, the login sessions (`sid`s) of the consent sessions Hydra lists for
 * it, each written as the login hook writes it ({@link indexSid}: a sid of another identity is never
 * remapped but counted as a conflict; a sid whose logout came first has its revocation queued).
 * Idempotent with the hook and with itself.
 *
 * One identity at a time, at the limiter's pace. After each, the cursor is saved: a later run — after
 * an interruption, a crash, or an error that stopped this one — continues after the last identity
 * done, first retrying those whose consent sessions could not be read. Transient failures are tried
 * again with exponential backoff; an answer that says the URL or token is wrong, Kratos failing,
 * Redis failing, or too many identities failing in a row stops the run.
 */
export async function runBackfill (deps: BackfillDeps, options: BackfillOptions = {}): Promise<BackfillResult> {
  const { clock, cursor: cursors } = deps
  const dryRun = options.dryRun === true
  const signal = options.signal
  const retry = options.retry ?? DEFAULT_RETRY
  const maxConsecutive = options.maxConsecutiveFailures ?? 5
  const wait = deps.wait ?? (async (ms: number, abort?: AbortSignal) => { await sleep(ms, undefined, abort === undefined ? undefined : { signal: abort }) })
  const began = clock()
  const aborted = (): boolean => signal?.aborted === true

  const counts = emptyCounts()
  const failures: BackfillFailure[] = []
  const conflicts: BackfillConflict[] = []
  let resumed: BackfillCursor | undefined
  let totals = emptyCounts()
  let startedAt = began
  let page: string | undefined
  let after: string | undefined
  let listed = false
  // Failed by an earlier run, not yet tried again; failed in this run.
  let pending: string[] = []
  const failedNow: string[] = []
  let cursorState: BackfillResult['cursor'] = dryRun ? 'untouched' : 'kept'

  const result = (outcome: BackfillResult['outcome'], stop?: BackfillStop): BackfillResult => ({
    outcome,
    ...(stop !== undefined ? { stop } : {}),
    counts,
    totals,
    failures,
    conflicts,
    resumed,
    cursor: cursorState,
    pendingFailures: pending.length + failedNow.length,
    elapsedMs: clock() - began
  })

  const save = async (): Promise<void> => {
    totals.errors = pending.length + failedNow.length
    if (dryRun) return
    await cursors.save({
      startedAt,
      updatedAt: clock(),
      ...(page !== undefined ? { page } : {}),
      ...(after !== undefined ? { after } : {}),
      ...(listed ? { listed: true } : {}),
      failed: [...pending, ...failedNow],
      totals
    })
  }

  /** Calls `call`, again after a backoff while it fails transiently. */
  const attempt = async <T>(service: OryService, call: () => Promise<T>): Promise<T> => {
    for (let n = 1; ; n++) {
      try {
        return await call()
      } catch (err) {
        if (!(err instanceof UpstreamError) || !err.transient || n >= retry.attempts) throw err
        const delayMs = Math.min(retry.maxMs, retry.baseMs * 2 ** (n - 1))
        deps.onProgress({ kind: 'retry', service, attempt: n, delayMs, error: err.message })
        await wait(delayMs, signal)
      }
    }
  }

  let consecutive = 0
  /** Reads one identity's consent sessions and indexes their sids; false when they could not be read. */
  const backfillIdentity = async (identityId: string): Promise<boolean> => {
    await deps.limiter.acquire(signal)
    let listing: ConsentListing
    try {
      listing = await attempt('hydra', async () => await deps.consents(identityId))
    } catch (err) {
      if (isAbort(err)) throw err
      if (!(err instanceof UpstreamError)) throw err
      if (isMisconfiguration(err)) throw new Stop({ source: 'hydra', message: err.message })
      failures.push({ identityId, error: err.message })
      failedNow.push(identityId)
      counts.errors++
      consecutive++
      deps.onProgress({ kind: 'failure', identityId, error: err.message })
      return false
    }
    consecutive = 0
    const { sessions, unread } = listing
    counts.consentSessions += sessions.length
    totals.consentSessions += sessions.length
    counts.consentSessionsUnread += unread
    totals.consentSessionsUnread += unread
    // Several consents of one login session (one per client) name the same sid.
    const sids = new Set(sessions.flatMap((session) => session.sid !== undefined && session.sid.length <= MAX_SID_LENGTH ? [session.sid] : []))
    for (const sid of sids) {
      const known = await deps.index.resolve(sid, false)
      let outcome: 'indexed' | 'known' | 'conflict' | 'late'
      let indexedFor = known ?? undefined
      if (known === identityId) {
        outcome = 'known'
      } else if (known !== null) {
        outcome = 'conflict'
      } else if (dryRun) {
        outcome = 'indexed'
      } else {
        const indexed = await indexSid({ ...deps, onEnqueued: () => {} }, identityId, sid, { kind: 'backfill' })
        if (indexed.outcome === 'conflict') indexedFor = await deps.index.resolve(sid, false) ?? undefined
        outcome = indexed.outcome === 'conflict' ? 'conflict' : indexed.lateLogout ? 'late' : 'indexed'
      }
      switch (outcome) {
        case 'known':
          counts.alreadyKnown++
          totals.alreadyKnown++
          break
        case 'conflict':
          counts.conflicts++
          totals.conflicts++
          if (conflicts.length < MAX_LISTED_CONFLICTS) conflicts.push({ sid, identityId, indexedFor })
          deps.onProgress({ kind: 'conflict', sid, identityId, indexedFor })
          break
        case 'late':
        case 'indexed':
          counts.sidsIndexed++
          totals.sidsIndexed++
          if (outcome === 'late') {
            counts.lateLogouts++
            totals.lateLogouts++
          }
          break
      }
    }
    counts.identities++
    totals.identities++
    return true
  }

  /** After an identity is done or failed: the cursor saved, the progress told, and a stop when too many fail. */
  const settle = async (): Promise<void> => {
    await save()
    deps.onProgress({ kind: 'progress', counts, totals })
    const last = failures.at(-1)?.error ?? ''
    if (consecutive >= maxConsecutive) {
      throw new Stop({ source: 'hydra', message: `the consent sessions of ${consecutive} identities in a row could not be read; the last: ${last}` })
    }
    if (pending.length + failedNow.length > MAX_FAILED_IN_CURSOR) {
      throw new Stop({ source: 'hydra', message: `more than ${MAX_FAILED_IN_CURSOR} identities could not be read; the last: ${last}` })
    }
  }

  try {
    if (options.restart === true) {
      if (!dryRun) await cursors.clear()
    } else {
      resumed = await cursors.load()
    }
    if (resumed !== undefined) {
      startedAt = resumed.startedAt
      totals = { ...resumed.totals }
      page = resumed.page
      after = resumed.after
      listed = resumed.listed === true
      pending = [...resumed.failed]
    }
    deps.onProgress({ kind: 'start', resumed, dryRun })

    // Those an earlier run could not read come first: they need no listing.
    while (pending.length > 0) {
      if (aborted()) return result('interrupted')
      const identityId = pending[0] as string
      await backfillIdentity(identityId)
      pending = pending.slice(1)
      await settle()
    }

    const tokens = new Set<string>()
    while (!listed) {
      if (aborted()) return result('interrupted')
      let current: IdentityPage
      try {
        current = await attempt('kratos', async () => await deps.identities(page))
      } catch (err) {
        if (err instanceof UpstreamError) throw new Stop({ source: 'kratos', message: err.message })
        throw err
      }
      let ids = current.ids
      if (after !== undefined) {
        // Kratos pages in id order, so the page holds the cursor's identity; should it be gone
        // (deleted since), the whole page is read again, which indexing the same sids again allows.
        const at = ids.indexOf(after)
        if (at !== -1) ids = ids.slice(at + 1)
      }
      for (const identityId of ids) {
        if (aborted()) return result('interrupted')
        await backfillIdentity(identityId)
        after = identityId
        await settle()
      }
      const next = current.next
      if (next === undefined) {
        listed = true
      } else {
        if (tokens.has(next) || next === page) throw new Stop({ source: 'kratos', message: `kratos GET /admin/identities: the page token ${next} came back a second time` })
        tokens.add(next)
        page = next
        after = undefined
        await save()
      }
    }

    if (failedNow.length === 0) {
      if (!dryRun) {
        await cursors.clear()
        cursorState = 'cleared'
      }
    } else {
      await save()
    }
    return result('done')
  } catch (err) {
    if (isAbort(err)) return result('interrupted')
    const stopped = storeStop(err)
    if (stopped instanceof Stop) {
      // The cursor stays where the last save put it; a failure of this save changes nothing there.
      if (stopped.stop.source !== 'redis' && stopped.stop.source !== 'lock') await save().catch(() => {})
      return result('stopped', stopped.stop)
    }
    throw err
  }
}

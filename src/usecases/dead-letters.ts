import type { Clock } from '../clock.js'
import { RelayError } from '../errors.js'
import { jobIdentity, type DeadJob, type DeadLetterCursor, type Job, type OperatorRetryCause, type RevocationQueue } from '../store/revocation-queue.js'
import { isUuid } from '../uuid.js'
import { causeView, type CauseView } from './audit.js'

/**
 * Dead letters an operator can act on: list them (with when their retention removes them), send them
 * back to the queue, or drop them. The admin API and `logout-relay dead-letters` both call these.
 */
export interface DeadLetterDeps {
  queue: Pick<RevocationQueue, 'deadLetterPage' | 'retryDeadLetter' | 'retryDeadLetters' | 'dropDeadLetter' | 'trimDeadLetters'>
  /** DEAD_LETTER_MAX_AGE and DEAD_LETTER_MAX_COUNT, as the retention applies them. */
  retention: { maxAgeMs: number, maxCount: number }
  clock: Clock
  /** Wakes the local worker after a retry. */
  onEnqueued?: () => void
}

/** A dead letter for people: what it was for, why and when it failed, and when its retention removes it. */
export interface DeadLetterView {
  id: string
  kind: Job['target']['kind']
  identity_id?: string
  sid?: string
  cause: CauseView | null
  attempts: number
  last_error: string
  /** How the last attempt failed (transient, refused, held, unexpected), and the upstream's status if it answered. */
  last_failure?: string
  last_status?: number
  created_at: string
  retried_at?: string
  buried_at: string
  /**
   * When the retention removes it: `age`, DEAD_LETTER_MAX_AGE after it was buried; `count`, at its next
   * pass (every minute), as one of the oldest beyond DEAD_LETTER_MAX_COUNT.
   */
  expires_at: string
  expires_by: 'age' | 'count'
}

export interface DeadLetterList {
  dead_letters: DeadLetterView[]
  /** Dead letters in all. */
  total: number
  /** Pass as `cursor` for the next page; null on the last. */
  next_cursor: string | null
}

export const DEFAULT_DEAD_LETTER_LIMIT = 100
export const MAX_DEAD_LETTER_LIMIT = 1000
/** Dead letters sent back or dropped by one script call, for `--all`. */
const BATCH = 100

function notFound (): RelayError {
  return new RelayError('ERR_DEAD_LETTER_NOT_FOUND', 'no dead letter has this id (retried or dropped already, or removed by its retention)')
}

/** A page of dead letters, oldest buried first (the first to go by age), from `cursor` when given. */
export async function listDeadLetters (deps: DeadLetterDeps, input: { limit: number, cursor?: DeadLetterCursor }): Promise<DeadLetterList> {
  const page = await deps.queue.deadLetterPage(input.limit, input.cursor)
  const now = deps.clock()
  const beyondCount = page.total - deps.retention.maxCount
  const last = page.letters.at(-1)
  return {
    dead_letters: page.letters.map((letter, i) => deadLetterView(letter, page.offset + i < beyondCount
      ? { at: Math.min(now, letter.buriedAt + deps.retention.maxAgeMs), by: 'count' }
      : { at: letter.buriedAt + deps.retention.maxAgeMs, by: 'age' })),
    total: page.total,
    next_cursor: last !== undefined && page.offset + page.letters.length < page.total ? formatCursor(last) : null
  }
}

/** Sends a dead letter back to the queue (see {@link RevocationQueue.retryDeadLetter}); `ERR_DEAD_LETTER_NOT_FOUND` when there is none. */
export async function retryDeadLetter (deps: DeadLetterDeps, id: string, cause: OperatorRetryCause): Promise<Job> {
  const job = isUuid(id) ? await deps.queue.retryDeadLetter(id.toLowerCase(), cause) : null
  if (job === null) throw notFound()
  deps.onEnqueued?.()
  return job
}

/** Removes a dead letter for good; `ERR_DEAD_LETTER_NOT_FOUND` when there is none. */
export async function dropDeadLetter (deps: DeadLetterDeps, id: string): Promise<DeadJob> {
  const letter = isUuid(id) ? await deps.queue.dropDeadLetter(id.toLowerCase()) : null
  if (letter === null) throw notFound()
  return letter
}

/**
 * Sends back every dead letter there is now, a batch per script call; those buried while it runs (a
 * retried job failing again, say) stay, so it always ends.
 */
export async function retryAllDeadLetters (deps: DeadLetterDeps, cause: OperatorRetryCause): Promise<Job[]> {
  const now = deps.clock()
  const retried: Job[] = []
  for (;;) {
    const batch = await deps.queue.retryDeadLetters(now, cause, BATCH)
    retried.push(...batch)
    if (batch.length > 0) deps.onEnqueued?.()
    if (batch.length < BATCH) return retried
  }
}

/** Drops every dead letter there is now, a batch per script call. */
export async function dropAllDeadLetters (deps: DeadLetterDeps): Promise<DeadJob[]> {
  const now = deps.clock()
  const dropped: DeadJob[] = []
  for (;;) {
    const batch = await deps.queue.trimDeadLetters(now + 1, Number.MAX_SAFE_INTEGER, BATCH)
    dropped.push(...batch)
    if (batch.length < BATCH) return dropped
  }
}

export function deadLetterView (letter: DeadJob, expiry: { at: number, by: 'age' | 'count' }): DeadLetterView {
  const identityId = jobIdentity(letter)
  return {
    id: letter.id,
    kind: letter.target.kind,
    ...(identityId !== undefined ? { identity_id: identityId } : {}),
    ...(letter.sid !== undefined ? { sid: letter.sid } : {}),
    cause: causeView(letter.cause),
    attempts: letter.attempts,
    last_error: letter.lastError,
    ...(letter.lastKind !== undefined ? { last_failure: letter.lastKind } : {}),
    ...(letter.lastStatus !== undefined ? { last_status: letter.lastStatus } : {}),
    created_at: new Date(letter.createdAt).toISOString(),
    ...(letter.retriedAt !== undefined ? { retried_at: new Date(letter.retriedAt).toISOString() } : {}),
    buried_at: new Date(letter.buriedAt).toISOString(),
    expires_at: new Date(expiry.at).toISOString(),
    expires_by: expiry.by
  }
}

/** A page's cursor, opaque to clients: the last letter's burial time and id. */
function formatCursor (letter: DeadJob): string {
  return `${letter.buriedAt}.${letter.id}`
}

/** Reads `cursor`; a value that is none is a 400 naming the field. */
export function parseDeadLetterCursor (value: unknown): DeadLetterCursor | undefined {
  if (value === undefined || value === '') return undefined
  const match = typeof value === 'string' ? /^(\d{1,15})\.([0-9a-f-]{36})$/.exec(value) : null
  if (match === null || !isUuid(match[2])) throw new RelayError('ERR_ADMIN_REQUEST_INVALID', 'cursor must be a next_cursor of a previous page', { field: 'cursor' })
  return { buriedAt: Number(match[1]), id: match[2] }
}

/** Reads a `limit` (a whole number from 1 to `max`); a value that is none is a 400 naming the field. */
export function parseLimit (value: unknown, fallback: number, max: number): number {
  if (value === undefined || value === '') return fallback
  const limit = typeof value === 'string' && /^\d{1,7}$/.test(value) ? Number(value) : Number.NaN
  if (!(limit >= 1 && limit <= max)) throw new RelayError('ERR_ADMIN_REQUEST_INVALID', `limit must be a whole number from 1 to ${max}`, { field: 'limit' })
  return limit
}

import type { Keyspace } from './redis.js'

/**
 * How a finished revocation is recorded in Redis: the keys, the bounds, and the Lua that the revocation
 * queue's own scripts run when a job completes or is buried, so that the outcome and its audit record
 * are one atomic step and cost no round trip of their own. `audit-trail.ts` reads what this writes.
 *
 * Layout, all under the queue's hash tag (one slot of a Redis Cluster, the queue's):
 *
 * - `<prefix>audit:{revocations}:log` — a stream, one entry per finished job (field `r`: the record's
 *   JSON), capped at `maxEntries` and at `maxAgeMs` by its entry ids (exact trimming, at each write);
 * - `<prefix>audit:{revocations}:identity:<id>` — a list of the stream ids of one identity's records,
 *   newest first, at most {@link AUDIT_PER_IDENTITY}, expiring `maxAgeMs` after its last record. Ids
 *   whose entry the stream has trimmed are skipped when read.
 */

/** How long, and how many, audit records are kept (AUDIT_MAX_AGE, AUDIT_MAX_ENTRIES). */
export interface AuditBounds {
  maxAgeMs: number
  maxEntries: number
}

export const DEFAULT_AUDIT_BOUNDS: AuditBounds = { maxAgeMs: 30 * 86_400_000, maxEntries: 100_000 }

/** The most records listed for one identity, and so the most stream ids its index keeps. */
export const AUDIT_PER_IDENTITY = 1000

/** Why an attempt failed, as the worker judged it (`unexpected`: an error no client classified). */
export type AttemptFailureKind = 'transient' | 'refused' | 'held' | 'unexpected'

/** One failed attempt at a revocation, as the worker reports it to the queue. */
export interface AttemptFailure {
  /** ms since the epoch. */
  at: number
  kind: AttemptFailureKind
  /** The upstream's HTTP status, when it answered. */
  status?: number
  /** The relay's own words for the failure (never an upstream's body, never a credential). */
  error: string
}

/** One attempt in a record's history. */
export type AttemptRecord =
  /** `status`: the upstream's (204, or 404 for nothing left to revoke), where the job knows it. */
  | { at: number, outcome: 'succeeded', status?: number }
  | ({ outcome: 'failed' } & AttemptFailure)

export function auditKeys (keys: Keyspace) {
  return {
    log: keys.key('audit', 'revocations', 'log'),
    identity: ((family) => (identityId: string) => family(`identity:${identityId}`))(keys.family('audit', 'revocations'))
  }
}

/** The JSON of a failed attempt, as the scripts append it to a job's history. */
export function failureJson (failure: AttemptFailure): string {
  return JSON.stringify({ at: failure.at, outcome: 'failed', kind: failure.kind, ...(failure.status !== undefined ? { status: failure.status } : {}), error: failure.error })
}

/** The script arguments of the bounds: the stream's cap, the age limit (ms), the index's cap. */
export function auditArgs (bounds: AuditBounds): [number, number, number] {
  return [bounds.maxEntries, bounds.maxAgeMs, AUDIT_PER_IDENTITY]
}

/**
 * Lua shared by the queue's scripts (prepended to their text). `history_add` appends one attempt's
 * JSON to a job's history (a JSON array kept in a hash while the job lives); `audit_add` appends a
 * record to the stream and its id to the identity's index (`index` may be nil); `audit_trim` applies
 * the bounds once per script, the age by Redis' own clock, which is the clock of the stream's ids.
 * `b` holds the three values of {@link auditArgs}.
 */
export const AUDIT_LUA = `
local function history_add (history, attempt)
  if history then return string.sub(history, 1, -2) .. ',' .. attempt .. ']' end
  return '[' .. attempt .. ']'
end
local function audit_add (stream, index, record, b)
  local id = redis.call('XADD', stream, '*', 'r', record)
  if index then
    if redis.call('LPUSH', index, id) > tonumber(b[3]) then redis.call('LTRIM', index, 0, b[3] - 1) end
    redis.call('PEXPIRE', index, b[2])
  end
  return id
end
local function audit_trim (stream, b)
  redis.call('XTRIM', stream, 'MAXLEN', '=', b[1])
  local now = redis.call('TIME')
  local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(b[2])
  redis.call('XTRIM', stream, 'MINID', '=', string.format('%.0f', oldest))
end
local function record_json (job, outcome, now, attempts, history)
  return '{"job":' .. job .. ',"outcome":"' .. outcome .. '","at":' .. now .. ',"attempts":' .. attempts .. ',"history":' .. history .. '}'
end
`

import { randomUUID } from 'node:crypto'
import { defineScripts, redisCall, type Keyspace, type LuaScript, type RedisClient } from './redis.js'

/** What a backfill did, counted. */
export interface BackfillCounts {
  /** Identities whose consent sessions were read to the end. */
  identities: number
  consentSessions: number
  /** Consent sessions Hydra counts but its pages did not reach (see `listConsentSessions`). */
  consentSessionsUnread: number
  /** Sids written to the index (in a dry run: that would be). */
  sidsIndexed: number
  /** Sids the index already held for the same identity: nothing written. */
  alreadyKnown: number
  /** Sids the index holds for another identity: never remapped, nothing written. */
  conflicts: number
  /** Sids whose logout came before they were indexed: their identity's revocation was queued, as the login hook does. */
  lateLogouts: number
  /** Identities whose consent sessions could not be read. */
  errors: number
}

export function emptyCounts (): BackfillCounts {
  return { identities: 0, consentSessions: 0, consentSessionsUnread: 0, sidsIndexed: 0, alreadyKnown: 0, conflicts: 0, lateLogouts: 0, errors: 0 }
}

/** Where an unfinished backfill stands: enough for the next run to continue there. */
export interface BackfillCursor {
  /** When the backfill began (ms since the epoch), its first run. */
  startedAt: number
  updatedAt: number
  /** The `page_token` of Kratos' page in progress; absent: the first page. */
  page?: string
  /** The last identity of that page that is done: the next run goes on after it. */
  after?: string
  /** Kratos' listing was read to its end: only the `failed` identities are left. */
  listed?: boolean
  /** Identities whose consent sessions could not be read: the next run tries them first. */
  failed: string[]
  /** What every run since `startedAt` did. */
  totals: BackfillCounts
}

/** The cursor, kept in the store. */
export interface BackfillCursorStore {
  /** The cursor of an unfinished backfill, or undefined. */
  load: () => Promise<BackfillCursor | undefined>
  /** Writes the cursor, its expiry renewed; throws {@link BackfillLockLost} when this run no longer holds the lock. */
  save: (cursor: BackfillCursor) => Promise<void>
  /** Deletes the cursor: the backfill is done, or begins again. */
  clear: () => Promise<void>
}

/** A run's hold on the cursor, so that two runs never move one cursor. */
export interface BackfillLock {
  /** Takes the lock; false when another run holds it. */
  acquire: () => Promise<boolean>
  /** Extends the hold; false when it was lost (it expired). */
  renew: () => Promise<boolean>
  release: () => Promise<void>
}

/** The run no longer holds the cursor's lock (it expired while the run was stalled): it must stop. */
export class BackfillLockLost extends Error {
  readonly code = 'ERR_BACKFILL_LOCK_LOST'
  constructor () {
    super('another run of the backfill took over the cursor')
    this.name = 'BackfillLockLost'
  }
}

/** How long a cursor is kept after its last write: long enough to resume after a weekend. */
export const CURSOR_TTL_SECONDS = 7 * 86_400

/** How long a lock outlives its last renewal: a run that crashed holds it this long. */
export const LOCK_TTL_MS = 30_000

/** Identities a cursor lists as failed at most; a run past that stops (see the use case). */
export const MAX_FAILED_IN_CURSOR = 1000

const SCRIPTS: LuaScript[] = [
  {
    name: 'relayBackfillSave',
    keys: 2,
    // KEYS: the cursor, its lock. ARGV: the run's lock token, the cursor (JSON), its TTL (s), the
    // lock's TTL (ms). Writes only while the run holds the lock; returns 1, or 0 when it does not.
    lua: `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return 1`
  },
  {
    name: 'relayBackfillClear',
    keys: 2,
    // KEYS: the cursor, its lock. ARGV: the run's lock token. Deletes the cursor while the run holds the lock.
    lua: `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`
  },
  {
    name: 'relayBackfillRenew',
    keys: 1,
    // KEYS: the lock. ARGV: the run's lock token, the lock's TTL (ms). Returns 1 while the run holds it.
    lua: `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1`
  },
  {
    name: 'relayBackfillRelease',
    keys: 1,
    // KEYS: the lock. ARGV: the run's lock token. Deletes the lock if the run holds it.
    lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`
  }
]

export interface RedisBackfillCursor {
  store: BackfillCursorStore
  lock: BackfillLock
  /** The cursor's key, for messages. */
  key: string
}

/**
 * The cursor in Redis: one JSON string at `<prefix>backfill:{cursor}` that expires
 * {@link CURSOR_TTL_SECONDS} after its last write, and the lock of the run that moves it beside it
 * (`…:lock`, the same hash tag, so that a script holds both on a Redis Cluster). Every write checks
 * the lock in the same script: a run that lost it cannot move the cursor under another.
 */
export function createRedisBackfillCursor (redis: RedisClient, keys: Keyspace, options: { ttlSeconds?: number, lockTtlMs?: number } = {}): RedisBackfillCursor {
  const run = defineScripts(redis, SCRIPTS)
  const key = keys.key('backfill', 'cursor')
  const lockKey = keys.key('backfill', 'cursor', 'lock')
  const ttlSeconds = options.ttlSeconds ?? CURSOR_TTL_SECONDS
  const lockTtlMs = options.lockTtlMs ?? LOCK_TTL_MS
  const token = randomUUID()
  return {
    key,
    store: {
      async load () {
        const text = await redisCall(redis.get(key))
        return text === null ? undefined : parseCursor(text)
      },
      async save (cursor) {
        if (await run('relayBackfillSave', [key, lockKey], [token, JSON.stringify(cursor), ttlSeconds, lockTtlMs]) !== 1) throw new BackfillLockLost()
      },
      async clear () {
        if (await run('relayBackfillClear', [key, lockKey], [token]) !== 1) throw new BackfillLockLost()
      }
    },
    lock: {
      acquire: async () => await redisCall(redis.set(lockKey, token, 'PX', lockTtlMs, 'NX')) === 'OK',
      renew: async () => await run('relayBackfillRenew', [lockKey], [token, lockTtlMs]) === 1,
      release: async () => { await run('relayBackfillRelease', [lockKey], [token]) }
    }
  }
}

/** A cursor as written by {@link createRedisBackfillCursor}, or undefined for anything else. */
export function parseCursor (text: string): BackfillCursor | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const cursor = value as Partial<Record<keyof BackfillCursor, unknown>>
  const totals = cursor.totals as Record<string, unknown> | undefined
  const counts = emptyCounts()
  if (typeof cursor.startedAt !== 'number' || typeof cursor.updatedAt !== 'number' || !Array.isArray(cursor.failed) ||
    typeof totals !== 'object' || totals === null) return undefined
  for (const name of Object.keys(counts) as Array<keyof BackfillCounts>) {
    const count = totals[name]
    if (typeof count !== 'number') return undefined
    counts[name] = count
  }
  return {
    startedAt: cursor.startedAt,
    updatedAt: cursor.updatedAt,
    ...(typeof cursor.page === 'string' ? { page: cursor.page } : {}),
    ...(typeof cursor.after === 'string' ? { after: cursor.after } : {}),
    ...(cursor.listed === true ? { listed: true } : {}),
    failed: cursor.failed.filter((id): id is string => typeof id === 'string'),
    totals: counts
  }
}

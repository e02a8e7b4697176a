import { hash, randomUUID } from 'node:crypto'
import type { Clock } from '../clock.js'
import { AUDIT_LUA, DEFAULT_AUDIT_BOUNDS, auditArgs, auditKeys, failureJson, type AttemptFailure, type AttemptFailureKind, type AttemptRecord, type AuditBounds } from './audit-record.js'
import { ExpiringMap } from './expiring-map.js'
import { storeUnavailable } from '../errors.js'
import { defineScripts, redisCall, type Keyspace, type LuaScript, type RedisClient } from './redis.js'

/** What a job revokes. */
export type RevocationTarget =
  /** Every Kratos session of an identity: `DELETE /admin/identities/{id}/sessions`. */
  | { kind: 'kratos-sessions', identityId: string }
  /** One Hydra login session, which makes Hydra send back-channel logout: `DELETE /admin/oauth2/auth/sessions/login?sid=`. */
  | { kind: 'hydra-login-session', sid: string }
  /** Every consent session (and its tokens) of a subject: `DELETE /admin/oauth2/auth/sessions/consent?subject=&all=true`. */
  | { kind: 'hydra-consent-sessions', subject: string }

/**
 * What asked for a revocation, for its audit record and logs: never a token or a key, only what
 * names the request (a client id and `jti`, an admin key's fingerprint).
 */
export type JobCause =
  /** A back-channel logout token from the issuer (OIDC BCL), for one of its clients. */
  | { kind: 'backchannel-logout', clientId: string, jti: string }
  /** A login hook that arrived after the logout of its sid. */
  | { kind: 'late-login-hook' }
  /** `logout-relay index backfill` indexed a sid whose logout had come before. */
  | { kind: 'backfill' }
  /** The admin API, by the key whose fingerprint this is. */
  | { kind: 'admin-api', keyFingerprint: string }
  /**
   * Kratos' credentials hook: a credential of the identity changed in a settings flow (`method`: the
   * settings method, when Kratos tells it), or the account was recovered (`method`: code or link).
   */
  | { kind: 'credentials-changed', flow: 'settings' | 'recovery', method?: string }
  | OperatorRetryCause

/**
 * An operator sent a dead letter back to the queue: from the command line, or through the admin API
 * with the key whose fingerprint this is. `original` is what asked for the job in the first place.
 */
export type OperatorRetryCause =
  | { kind: 'operator-retry', via: 'cli', original?: OriginalCause }
  | { kind: 'operator-retry', via: 'admin-api', keyFingerprint: string, original?: OriginalCause }

/** What first asked for a job: any cause but an operator's retry. */
export type OriginalCause = Exclude<JobCause, { kind: 'operator-retry' }>

export interface Job {
  id: string
  target: RevocationTarget
  /** ms since the epoch. */
  createdAt: number
  /** The sid whose logout caused the job, for logs. */
  sid?: string
  /** Absent on jobs queued before causes were recorded. */
  cause?: JobCause
  /** The identity the job acts for, where its target does not name it (a Hydra login session's). */
  identityId?: string
  /** When an operator last sent it back from the dead letters (ms since the epoch); its age counts from then. */
  retriedAt?: number
}

export interface NewJob {
  target: RevocationTarget
  sid?: string
  cause?: JobCause
  /**
   * The dedupe keys of jobs this one must wait for: it is not claimed while any of them waits or runs
   * (done or dead-lettered, it goes ahead). They are resolved when this job is recorded: jobs recorded
   * earlier in the same enqueue, or still remembered by their key.
   */
  after?: string[]
  identityId?: string
  /** Jobs with the same key within `dedupeTtlSeconds` are one job: the first wins. */
  dedupeKey?: string
  /**
   * For a `hydra-login-session` job: for this many seconds, a back-channel logout for its sid is the
   * relay's own doing, answered as already handled (see {@link RevocationQueue.acceptLogout}). The mark
   * is written in the same atomic step as the job, so no worker can run the job before it exists.
   */
  handledLogoutSeconds?: number
}

export interface ClaimedJob {
  job: Job
  /** Including this one. */
  attempts: number
  /** Proves this worker still holds the job: complete/retry/bury with a stale lease do nothing. */
  lease: string
  /** Set by the worker once the attempt succeeded: the upstream's status, for the audit record. */
  status?: number
}

export interface DeadJob extends Job {
  attempts: number
  lastError: string
  /** How the last attempt failed, and the upstream's status if it answered; absent on older dead letters. */
  lastKind?: AttemptFailureKind
  lastStatus?: number
  buriedAt: number
}

/** A page of dead letters, oldest buried first (see {@link RevocationQueue.deadLetterPage}). */
export interface DeadLetterPage {
  letters: DeadJob[]
  /** Dead letters in all. */
  total: number
  /** The position of the first letter of the page among all, oldest first (0-based). */
  offset: number
}

/** Where a page of dead letters continues: after this letter. */
export interface DeadLetterCursor {
  buriedAt: number
  id: string
}

/**
 * A finished revocation, as the audit trail keeps it: the job as it was queued, every attempt that
 * reported its outcome (an attempt whose worker died leaves none, but is counted in `attempts`), and
 * how and when it ended.
 */
export interface RevocationRecord {
  /** Its id in the audit trail (the stream entry's, `<ms>-<n>`). */
  id: string
  job: Job
  outcome: 'succeeded' | 'dead_lettered'
  /** When it completed or was dead-lettered (ms since the epoch). */
  at: number
  /** Attempts made (claims), this one included. */
  attempts: number
  history: AttemptRecord[]
}

/** Where the in-memory queue records what finishes (see `createMemoryAuditTrail`); returns the record's id. */
export interface AuditSink {
  append: (record: Omit<RevocationRecord, 'id'>) => string
}

/** What accepting one logout token did (see {@link RevocationQueue.acceptLogout}). */
export type LogoutRecord =
  /** The token's jti was accepted before: nothing was done. */
  | 'replay'
  /** The revocation job is queued, and the jti consumed. */
  | 'queued'
  /** Another token of the same logout (same dedupe key) queued it already; the jti is consumed. */
  | 'duplicate'
  /** Nothing to queue; the jti is consumed. */
  | 'accepted'
  /** The relay revoked this sid at Hydra itself (a marked sid): the jti is consumed, nothing queued. */
  | 'handled'

export interface LogoutTokenRecord {
  issuer: string
  jti: string
  /** How long the jti (and the job's dedupe key) are remembered. */
  rememberSeconds: number
  /** The token's sid, checked for the relay's own mark ({@link NewJob.handledLogoutSeconds}). */
  sid?: string
  /** The revocation this logout causes, if any. */
  job?: NewJob
}

export interface QueueCounts {
  waiting: number
  active: number
  dead: number
}

/**
 * The durable queue of revocations. A job is claimed with a lease; a worker that dies holding it loses
 * it to any other worker once the lease runs out, so a job runs at least once and, while leases are
 * honoured, by one worker at a time. Jobs leave the queue only when done or buried as dead letters.
 */
export interface RevocationQueue {
  /**
   * Accepts one logout token in a single atomic step: refuses a `jti` already accepted (per issuer,
   * OIDC BCL §2.6 step 6), queues the token's revocation (unless its dedupe key is taken), and
   * consumes the `jti`. All or nothing: a failure leaves the token acceptable when the issuer resends
   * it, and an accepted token always has its revocation recorded.
   *
   * A token whose sid the relay marked when it queued that sid's Hydra revocation
   * ({@link NewJob.handledLogoutSeconds}) is Hydra's echo of the relay's own request: its `jti` is
   * consumed and nothing is queued (`handled`) — unless the marking job was given up (a dead letter),
   * since then Hydra never revoked the sid for the relay and the logout is someone else's.
   */
  acceptLogout: (record: LogoutTokenRecord) => Promise<LogoutRecord>
  /**
   * Records jobs, atomically in chunks of {@link ENQUEUE_CHUNK} (a failure leaves the chunks before it
   * recorded; their dedupe keys make a retried call queue only the rest); `enqueued[i]` is false where
   * a dedupe key was taken. A job's sid mark ({@link NewJob.handledLogoutSeconds}) is written with it,
   * also when its dedupe key was taken, then naming the job queued under that key.
   */
  enqueue: (jobs: readonly NewJob[], dedupeTtlSeconds: number) => Promise<Array<{ id: string, enqueued: boolean }>>
  /** Claims up to `limit` due jobs, first taking back jobs whose lease ran out. */
  claim: (limit: number, leaseMs: number) => Promise<ClaimedJob[]>
  complete: (claimed: ClaimedJob) => Promise<boolean>
  /**
   * Completes several jobs in one step, and records each in the audit trail in the same step; returns
   * the records of those that were still held under their lease.
   */
  completeAll: (claims: readonly ClaimedJob[]) => Promise<RevocationRecord[]>
  /** Puts the job back, due at `dueAt` (ms since the epoch), with the failed attempt in its history. */
  retry: (claimed: ClaimedJob, dueAt: number, failure?: AttemptFailure) => Promise<boolean>
  /**
   * Gives the job up: it moves to the dead letters with its last failure, and its record goes to the
   * audit trail in the same step. Null when the lease was no longer held.
   */
  bury: (claimed: ClaimedJob, failure: AttemptFailure) => Promise<RevocationRecord | null>
  /**
   * Hands a job back, its attempt not counted: at once (an unstarted job at shutdown), or due at
   * `dueAt` (a job held while its admin API is not proven).
   */
  release: (claimed: ClaimedJob, dueAt?: number) => Promise<boolean>
  counts: () => Promise<QueueCounts>
  /** When the next waiting job is due, or null when none waits. */
  nextDueAt: () => Promise<number | null>
  deadLetters: (limit: number) => Promise<DeadJob[]>
  /** Up to `limit` dead letters, oldest buried first, after `after` when given; one atomic read. */
  deadLetterPage: (limit: number, after?: DeadLetterCursor) => Promise<DeadLetterPage>
  /**
   * Sends a dead letter back to the queue, due now, atomically: its attempts start again from zero,
   * its age from now, and its cause becomes `cause`, keeping the first cause as `original`. Returns
   * the job as queued again, or null when no dead letter has this id.
   */
  retryDeadLetter: (id: string, cause: OperatorRetryCause) => Promise<Job | null>
  /** The same for up to `limit` of the dead letters buried at or before `buriedBefore`, oldest first. */
  retryDeadLetters: (buriedBefore: number, cause: OperatorRetryCause, limit: number) => Promise<Job[]>
  /** Removes a dead letter for good; returns it, or null when no dead letter has this id. */
  dropDeadLetter: (id: string) => Promise<DeadJob | null>
  /**
   * Removes the dead letters buried before `buriedBefore` (ms since the epoch), and the oldest beyond
   * `maxCount`; at most `limit` in one call. Returns what it removed.
   */
  trimDeadLetters: (buriedBefore: number, maxCount: number, limit: number) => Promise<DeadJob[]>
}

/**
 * Jobs recorded by one script call at most: a larger enqueue (an identity's every sid) is recorded in
 * chunks of this many, so that no script holds Redis for long (about 3 ms for 100 jobs). Within a chunk
 * it is all or nothing.
 */
export const ENQUEUE_CHUNK = 100

/** How soon a job that still waits for others is looked at again. */
const WAITING_RECHECK_MS = 250

/**
 * Lua: sends one dead letter back to the queue (KEYS as in relayRetryDead). The job's JSON keeps
 * everything but the dead letter's fields; its cause becomes the operator's, with the first cause kept
 * as `original` (a retry of a retry keeps the first). Returns the new JSON, or nil when `id` is no
 * dead letter. cjson prints numbers with 14 significant digits: every number in a job is a ms
 * timestamp (13 digits until the year 2286).
 */
const REVIVE_LUA = `
local function revive (id, now, cause)
  if not redis.call('ZSCORE', KEYS[1], id) then return nil end
  redis.call('ZREM', KEYS[1], id)
  local json = redis.call('HGET', KEYS[3], id)
  if not json then return nil end
  local job = cjson.decode(json)
  local operator = cjson.decode(cause)
  local original = job.cause
  if type(original) == 'table' and original.kind == 'operator-retry' then original = original.original end
  operator.original = original
  job.cause = operator
  job.attempts = nil
  job.lastError = nil
  job.lastKind = nil
  job.lastStatus = nil
  job.buriedAt = nil
  job.retriedAt = tonumber(now)
  json = cjson.encode(job)
  redis.call('HSET', KEYS[3], id, json)
  redis.call('HDEL', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
  redis.call('ZADD', KEYS[2], now, id)
  return json
end
`

const SCRIPTS: LuaScript[] = [
  {
    name: 'relayEnqueue',
    keys: 'variable',
    // KEYS: waiting (zset id → due ms), jobs (hash id → JSON), waits-for (hash id → ids it waits for),
    // then each job's dedupe key, then the dedupe keys each job waits for, in job order, then the sid
    // mark of each job that has one, in job order (all carry the queue's hash tag, so they live in this
    // slot too). ARGV: now, dedupe TTL (s), job count, then per job: id, JSON, how many keys it waits
    // for, mark TTL (s; 0 for none). All or nothing; returns one 1/0 per job (0: its dedupe key was
    // taken). A job waits for the ids its keys name: recorded earlier in this call, or before. A mark
    // names the job that holds the dedupe key: this one, or the one queued under it moments ago.
    lua: `
local count = tonumber(ARGV[3])
local out = {}
local after = 4 + count
local marks = after
for i = 1, count do marks = marks + tonumber(ARGV[4 * i + 2]) end
for i = 1, count do
  local dedupe = KEYS[3 + i]
  local id, json, waits, ttl = ARGV[4 * i], ARGV[4 * i + 1], tonumber(ARGV[4 * i + 2]), tonumber(ARGV[4 * i + 3])
  if redis.call('SET', dedupe, id, 'NX', 'EX', ARGV[2]) then
    redis.call('HSET', KEYS[2], id, json)
    redis.call('ZADD', KEYS[1], ARGV[1], id)
    local ids = {}
    for j = after, after + waits - 1 do
      local other = redis.call('GET', KEYS[j])
      if other then ids[#ids + 1] = other end
    end
    if #ids > 0 then redis.call('HSET', KEYS[3], id, table.concat(ids, ',')) end
    out[i] = 1
  else
    out[i] = 0
  end
  if ttl > 0 then
    redis.call('SET', KEYS[marks], redis.call('GET', dedupe), 'EX', ttl)
    marks = marks + 1
  end
  after = after + waits
end
return out`
  },
  {
    name: 'relayAcceptLogout',
    keys: 'variable',
    // KEYS: the token's jti record, waiting, jobs, dead, then the sid's mark when the token has a sid,
    // then the job's dedupe key when there is a job (all under the queue's hash tag). ARGV: remember
    // (s), now, '1' when a mark key is given, then job id and JSON when there is a job.
    // Returns -1 for a replay; 2 when the sid is marked by a job that is no dead letter (the relay's
    // own revocation: nothing queued); else 1 when the job was queued, 0 when a duplicate or none.
    lua: `
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local dedupe = 5
if ARGV[3] == '1' then
  dedupe = 6
  local marker = redis.call('GET', KEYS[5])
  if marker and not redis.call('ZSCORE', KEYS[4], marker) then
    redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
    return 2
  end
end
local queued = 0
if KEYS[dedupe] and redis.call('SET', KEYS[dedupe], ARGV[4], 'NX', 'EX', ARGV[1]) then
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
  queued = 1
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return queued`
  },
  {
    name: 'relayClaim',
    keys: 6,
    // KEYS: waiting, active (zset id → lease end ms), jobs, leases (hash id → lease), attempts (hash),
    // waits-for (hash id → ids). ARGV: now, lease end, limit, lease, ms before a job that still waits
    // is looked at again. Jobs whose lease ran out (their worker died) are due again first. A job is
    // claimed only once none of the jobs it waits for waits or runs. Returns id, JSON, attempts for
    // each job claimed.
    lua: `
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local blocked = false
  local waits = redis.call('HGET', KEYS[6], id)
  if waits then
    for other in string.gmatch(waits, '[^,]+') do
      if redis.call('ZSCORE', KEYS[1], other) or redis.call('ZSCORE', KEYS[2], other) then blocked = true break end
    end
    if not blocked then redis.call('HDEL', KEYS[6], id) end
  end
  if blocked then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[5]), id)
  else
    redis.call('ZREM', KEYS[1], id)
    local json = redis.call('HGET', KEYS[3], id)
    if json then
      redis.call('ZADD', KEYS[2], ARGV[2], id)
      redis.call('HSET', KEYS[4], id, ARGV[4])
      out[#out + 1] = id
      out[#out + 1] = json
      out[#out + 1] = redis.call('HINCRBY', KEYS[5], id, 1)
    end
  end
end
return out`
  },
  {
    name: 'relayComplete',
    keys: 'variable',
    // KEYS: active, jobs, leases, attempts, history (hash id → JSON array of failed attempts), the audit
    // log, then the audit index of each job that names an identity. ARGV: now, the three audit bounds,
    // then per job: id, lease, attempts, the position in KEYS of its audit index ('0': none), the
    // upstream's status ('' unknown). Each job still held under its lease is done: every trace of it
    // goes, and its record joins the audit trail. Returns, per job done: its id, its record's id, its
    // history before this attempt ('' when none).
    lua: AUDIT_LUA + `
local b = { ARGV[2], ARGV[3], ARGV[4] }
local out = {}
for i = 5, #ARGV, 5 do
  local id = ARGV[i]
  if redis.call('HGET', KEYS[3], id) == ARGV[i + 1] then
    local job = redis.call('HGET', KEYS[2], id)
    -- A failed attempt is always followed by another claim: a first attempt has no history.
    local history = ARGV[i + 2] ~= '1' and redis.call('HGET', KEYS[5], id)
    local record = ''
    if job then
      local index = tonumber(ARGV[i + 3])
      local status = ARGV[i + 4] ~= '' and (',"status":' .. tonumber(ARGV[i + 4])) or ''
      local done = history_add(history, '{"at":' .. ARGV[1] .. ',"outcome":"succeeded"' .. status .. '}')
      record = audit_add(KEYS[6], index > 0 and KEYS[index] or nil, record_json(job, 'succeeded', ARGV[1], ARGV[i + 2], done), b)
    end
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    if history then redis.call('HDEL', KEYS[5], id) end
    out[#out + 1] = id
    out[#out + 1] = record
    out[#out + 1] = history or ''
  end
end
if #out > 0 then audit_trim(KEYS[6], b) end
return out`
  },
  {
    name: 'relayRetry',
    keys: 5,
    // KEYS: active, waiting, leases, attempts, history. ARGV: id, lease, due ms, '1' to count the
    // attempt, the failed attempt's JSON for the job's history ('' for none).
    lua: AUDIT_LUA + `
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if ARGV[4] == '0' then redis.call('HINCRBY', KEYS[4], ARGV[1], -1) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[5], ARGV[1], history_add(redis.call('HGET', KEYS[5], ARGV[1]), ARGV[5])) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1`
  },
  {
    name: 'relayTrimDead',
    keys: 2,
    // KEYS: dead (zset id → buried ms), jobs. ARGV: buried before (ms), most to keep, most to remove
    // in this call. Removes the dead letters buried before the age limit, then the oldest beyond the
    // count. Returns the JSON of each removed.
    lua: `
local limit = tonumber(ARGV[3])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, limit)
local over = redis.call('ZCARD', KEYS[1]) - #ids - tonumber(ARGV[2])
if over > 0 and #ids < limit then
  local oldest = redis.call('ZRANGE', KEYS[1], #ids, #ids + math.min(over, limit - #ids) - 1)
  for _, id in ipairs(oldest) do ids[#ids + 1] = id end
end
local out = {}
for _, id in ipairs(ids) do
  local json = redis.call('HGET', KEYS[2], id)
  if json then out[#out + 1] = json end
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return out`
  },
  {
    name: 'relayBury',
    keys: 'variable',
    // KEYS: active, dead (zset id → buried ms), jobs, leases, attempts, history, the audit log, and the
    // job's audit index when it names an identity. ARGV: id, lease, now, JSON of the dead letter (the
    // job with its attempts and last failure), JSON of the failed attempt, attempts, the three audit
    // bounds. Returns nil when the lease is not held, else the record's id and the history before.
    lua: AUDIT_LUA + `
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return false end
local history = redis.call('HGET', KEYS[6], ARGV[1])
local job = redis.call('HGET', KEYS[3], ARGV[1])
local record = ''
if job then
  local b = { ARGV[7], ARGV[8], ARGV[9] }
  record = audit_add(KEYS[7], KEYS[8], record_json(job, 'dead_lettered', ARGV[3], ARGV[6], history_add(history, ARGV[5])), b)
  audit_trim(KEYS[7], b)
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('HDEL', KEYS[6], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return { record, history or '' }`
  },
  {
    name: 'relayDeadPage',
    keys: 2,
    // KEYS: dead, jobs. ARGV: limit, then optionally the cursor: the buried ms and id of the last
    // letter seen. Returns the number of dead letters, the position of the first one returned, then
    // the JSON of each, oldest buried first. One read: a page never shows a letter half moved.
    lua: `
local start = 0
if ARGV[2] then
  local rank = redis.call('ZRANK', KEYS[1], ARGV[3])
  if rank and redis.call('ZSCORE', KEYS[1], ARGV[3]) == ARGV[2] then
    start = rank + 1
  else
    -- The cursor's letter is gone: count those before where it was (same ms: by id, as the set orders them).
    start = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[2])
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[2])) do
      if id < ARGV[3] then start = start + 1 end
    end
  end
end
local out = { redis.call('ZCARD', KEYS[1]), start }
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[1]) - 1)) do
  local json = redis.call('HGET', KEYS[2], id)
  if json then out[#out + 1] = json end
end
return out`
  },
  {
    name: 'relayRetryDead',
    keys: 5,
    // KEYS: dead, waiting, jobs, attempts, history. ARGV: now, the operator's cause (JSON), then either
    // 'ids' and the ids, or 'before', the buried ms (inclusive) and a limit. Returns the JSON of each
    // job sent back.
    lua: REVIVE_LUA + `
local ids = {}
if ARGV[3] == 'before' then
  ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[5]))
else
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local out = {}
for _, id in ipairs(ids) do
  local json = revive(id, ARGV[1], ARGV[2])
  if json then out[#out + 1] = json end
end
return out`
  },
  {
    name: 'relayDropDead',
    keys: 2,
    // KEYS: dead, jobs. ARGV: id. Removes the dead letter; returns its JSON, or nil when there is none
    // (a live job's JSON, in the same hash, is never touched).
    lua: `
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return false end
local json = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return json`
  }
]

/**
 * The queue in Redis (a node or a cluster). Its scripts also write the audit trail (`audit-record.ts`),
 * within `audit`'s bounds: a job's outcome and its record are one atomic step.
 */
export function createRedisRevocationQueue (redis: RedisClient, keys: Keyspace, clock: Clock = Date.now, audit: AuditBounds = DEFAULT_AUDIT_BOUNDS): RevocationQueue {
  const run = defineScripts(redis, SCRIPTS)
  const issuerTag = issuerTagger()
  const trail = auditKeys(keys)
  const queueKey = keys.family('queue', 'revocations')
  // One hash tag for the whole queue: every script touches several of these keys at once.
  const k = {
    waiting: keys.key('queue', 'revocations', 'waiting'),
    active: keys.key('queue', 'revocations', 'active'),
    jobs: keys.key('queue', 'revocations', 'jobs'),
    leases: keys.key('queue', 'revocations', 'leases'),
    attempts: keys.key('queue', 'revocations', 'attempts'),
    waitsFor: keys.key('queue', 'revocations', 'waits-for'),
    dead: keys.key('queue', 'revocations', 'dead'),
    history: keys.key('queue', 'revocations', 'history'),
    dedupe: (key: string) => queueKey(`dedupe:${key}`),
    // A sid whose Hydra revocation the relay queued itself: in the queue's slot, so that the mark is
    // written with its job and read with the token's jti, each in one script.
    handled: (sid: string) => queueKey(`handled:${sid}`),
    jti: (issuer: string, jti: string) => queueKey(`jti:${issuerTag(issuer)}:${jti}`)
  }

  return {
    async acceptLogout ({ issuer, jti, rememberSeconds, sid, job }) {
      const now = clock()
      const scriptKeys = [k.jti(issuer, jti), k.waiting, k.jobs, k.dead]
      const args: Array<string | number> = [rememberSeconds, now, sid !== undefined ? '1' : '0']
      if (sid !== undefined) scriptKeys.push(k.handled(sid))
      if (job !== undefined) {
        const created = toJob(job, now)
        scriptKeys.push(k.dedupe(job.dedupeKey ?? created.id))
        args.push(created.id, JSON.stringify(created))
      }
      const result = await run('relayAcceptLogout', scriptKeys, args)
      if (result === -1) return 'replay'
      if (result === 2) return 'handled'
      return job === undefined ? 'accepted' : result === 1 ? 'queued' : 'duplicate'
    },
    async enqueue (jobs, dedupeTtlSeconds) {
      const now = clock()
      const created = jobs.map((job) => ({ job: toJob(job, now), dedupeKey: job.dedupeKey, after: job.after ?? [], mark: markOf(job) }))
      const results: Array<{ id: string, enqueued: boolean }> = []
      for (let start = 0; start < created.length; start += ENQUEUE_CHUNK) {
        const chunk = created.slice(start, start + ENQUEUE_CHUNK)
        const scriptKeys = [k.waiting, k.jobs, k.waitsFor]
        const afterKeys: string[] = []
        const markKeys: string[] = []
        const args: Array<string | number> = [now, dedupeTtlSeconds, chunk.length]
        for (const { job, dedupeKey, after, mark } of chunk) {
          scriptKeys.push(k.dedupe(dedupeKey ?? job.id))
          afterKeys.push(...after.map(k.dedupe))
          if (mark !== undefined) markKeys.push(k.handled(mark.sid))
          args.push(job.id, JSON.stringify(job), after.length, mark?.seconds ?? 0)
        }
        const result = await run('relayEnqueue', [...scriptKeys, ...afterKeys, ...markKeys], args) as number[]
        chunk.forEach(({ job }, i) => results.push({ id: job.id, enqueued: result[i] === 1 }))
      }
      return results
    },
    async claim (limit, leaseMs) {
      const now = clock()
      const lease = randomUUID()
      const flat = await run('relayClaim', [k.waiting, k.active, k.jobs, k.leases, k.attempts, k.waitsFor],
        [now, now + leaseMs, limit, lease, WAITING_RECHECK_MS]) as Array<string | number>
      const claimed: ClaimedJob[] = []
      for (let i = 0; i + 2 < flat.length; i += 3) {
        claimed.push({ job: JSON.parse(String(flat[i + 1])) as Job, attempts: Number(flat[i + 2]), lease })
      }
      return claimed
    },
    async complete (claimed) {
      return (await this.completeAll([claimed])).length === 1
    },
    async completeAll (claims) {
      if (claims.length === 0) return []
      const now = clock()
      const scriptKeys = [k.active, k.jobs, k.leases, k.attempts, k.history, trail.log]
      const args: Array<string | number> = [now, ...auditArgs(audit)]
      for (const { job, lease, attempts, status } of claims) {
        const identityId = jobIdentity(job)
        if (identityId !== undefined) scriptKeys.push(trail.identity(identityId))
        args.push(job.id, lease, attempts, identityId !== undefined ? scriptKeys.length : 0, status ?? '')
      }
      const done = await run('relayComplete', scriptKeys, args) as string[]
      // The script answers in the order of the claims, for those it completed.
      const records: RevocationRecord[] = []
      let i = 0
      for (const claimed of claims) {
        if (done[i] !== claimed.job.id) continue
        records.push(succeeded(claimed, String(done[i + 1]), now, String(done[i + 2])))
        i += 3
      }
      return records
    },
    async retry ({ job, lease }, dueAt, failure) {
      return await run('relayRetry', [k.active, k.waiting, k.leases, k.attempts, k.history],
        [job.id, lease, dueAt, '1', failure === undefined ? '' : failureJson(failure)]) === 1
    },
    async release ({ job, lease }, dueAt) {
      return await run('relayRetry', [k.active, k.waiting, k.leases, k.attempts, k.history], [job.id, lease, dueAt ?? clock(), '0', '']) === 1
    },
    async bury (claimed, failure) {
      const { job, lease, attempts } = claimed
      const now = clock()
      const identityId = jobIdentity(job)
      const scriptKeys = [k.active, k.dead, k.jobs, k.leases, k.attempts, k.history, trail.log]
      if (identityId !== undefined) scriptKeys.push(trail.identity(identityId))
      const reply = await run('relayBury', scriptKeys,
        [job.id, lease, now, JSON.stringify(deadLetter(claimed, failure, now)), failureJson(failure), attempts, ...auditArgs(audit)]) as [string, string] | null
      return reply === null ? null : deadLettered(claimed, String(reply[0]), now, String(reply[1]), failure)
    },
    async counts () {
      // One MULTI (the keys share a slot): a job moving between sets is counted exactly once.
      const replies = await redisCall(redis.multi().zcard(k.waiting).zcard(k.active).zcard(k.dead).exec())
      const [waiting = 0, active = 0, dead = 0] = (replies ?? []).map(([err, count]) => {
        if (err !== null) throw storeUnavailable(err)
        return Number(count)
      })
      return { waiting, active, dead }
    },
    async nextDueAt () {
      const first = await redisCall(redis.zrange(k.waiting, '0', '0', 'WITHSCORES'))
      return first.length === 2 ? Number(first[1]) : null
    },
    async deadLetters (limit) {
      const ids = await redisCall(redis.zrange(k.dead, '0', String(limit - 1)))
      if (ids.length === 0) return []
      const values = await redisCall(redis.hmget(k.jobs, ...ids))
      return values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as DeadJob)
    },
    async trimDeadLetters (buriedBefore, maxCount, limit) {
      const removed = await run('relayTrimDead', [k.dead, k.jobs], [buriedBefore, maxCount, limit]) as string[]
      return removed.map((value) => JSON.parse(value) as DeadJob)
    },
    async deadLetterPage (limit, after) {
      const reply = await run('relayDeadPage', [k.dead, k.jobs], after === undefined ? [limit] : [limit, after.buriedAt, after.id]) as Array<string | number>
      const [total, offset, ...letters] = reply
      return { total: Number(total), offset: Number(offset), letters: letters.map((value) => JSON.parse(String(value)) as DeadJob) }
    },
    async retryDeadLetter (id, cause) {
      const [json] = await run('relayRetryDead', [k.dead, k.waiting, k.jobs, k.attempts, k.history], [clock(), JSON.stringify(cause), 'ids', id]) as string[]
      return json === undefined ? null : JSON.parse(json) as Job
    },
    async retryDeadLetters (buriedBefore, cause, limit) {
      const jobs = await run('relayRetryDead', [k.dead, k.waiting, k.jobs, k.attempts, k.history],
        [clock(), JSON.stringify(cause), 'before', buriedBefore, limit]) as string[]
      return jobs.map((json) => JSON.parse(json) as Job)
    },
    async dropDeadLetter (id) {
      const json = await run('relayDropDead', [k.dead, k.jobs], [id]) as string | null
      return json === null ? null : JSON.parse(json) as DeadJob
    }
  }
}

/** The same queue in process memory: one instance, lost on restart. What finishes goes to `audit`. */
export function createMemoryRevocationQueue (clock: Clock = Date.now, audit?: AuditSink): RevocationQueue {
  const jobs = new Map<string, Job>()
  const waiting = new Map<string, number>()
  const active = new Map<string, { until: number, lease: string }>()
  const attempts = new Map<string, number>()
  const histories = new Map<string, string>()
  const dead = new Map<string, DeadJob>()
  const dedupe = new ExpiringMap<string>(clock)
  const consumed = new ExpiringMap<true>(clock)
  const waitsFor = new Map<string, string[]>()
  const handled = new ExpiringMap<string>(clock)

  const holds = (id: string, lease: string): boolean => active.get(id)?.lease === lease

  return {
    async acceptLogout ({ issuer, jti, rememberSeconds, sid, job }) {
      const key = `${issuer}\n${jti}`
      if (consumed.has(key)) return 'replay'
      const marker = sid === undefined ? undefined : handled.get(sid)
      if (marker !== undefined && !dead.has(marker)) {
        consumed.set(key, true, rememberSeconds * 1000)
        return 'handled'
      }
      let record: LogoutRecord = 'accepted'
      if (job !== undefined) {
        const created = toJob(job, clock())
        record = dedupe.setIfAbsent(job.dedupeKey ?? created.id, created.id, rememberSeconds * 1000) ? 'queued' : 'duplicate'
        if (record === 'queued') {
          jobs.set(created.id, created)
          waiting.set(created.id, clock())
        }
      }
      consumed.set(key, true, rememberSeconds * 1000)
      return record
    },
    async enqueue (newJobs, dedupeTtlSeconds) {
      const now = clock()
      return newJobs.map((newJob) => {
        const job = toJob(newJob, now)
        const dedupeKey = newJob.dedupeKey ?? job.id
        const enqueued = dedupe.setIfAbsent(dedupeKey, job.id, dedupeTtlSeconds * 1000)
        if (enqueued) {
          jobs.set(job.id, job)
          waiting.set(job.id, now)
          const others = (newJob.after ?? []).flatMap((key) => dedupe.get(key) ?? [])
          if (others.length > 0) waitsFor.set(job.id, others)
        }
        const mark = markOf(newJob)
        if (mark !== undefined) handled.set(mark.sid, dedupe.get(dedupeKey) ?? job.id, mark.seconds * 1000)
        return { id: job.id, enqueued }
      })
    },
    async claim (limit, leaseMs) {
      const now = clock()
      for (const [id, { until }] of active) {
        if (until <= now) {
          active.delete(id)
          waiting.set(id, now)
        }
      }
      const lease = randomUUID()
      const due = [...waiting].filter(([, dueAt]) => dueAt <= now).sort((a, b) => a[1] - b[1]).slice(0, limit).filter(([id]) => {
        // A job that waits for others waits while any of them waits or runs.
        if (waitsFor.get(id)?.some((other) => waiting.has(other) || active.has(other)) === true) {
          waiting.set(id, now + WAITING_RECHECK_MS)
          return false
        }
        waitsFor.delete(id)
        return true
      })
      return due.map(([id]) => {
        waiting.delete(id)
        active.set(id, { until: now + leaseMs, lease })
        const count = (attempts.get(id) ?? 0) + 1
        attempts.set(id, count)
        return { job: jobs.get(id) as Job, attempts: count, lease }
      })
    },
    async complete (claimed) {
      return (await this.completeAll([claimed])).length === 1
    },
    async completeAll (claims) {
      const now = clock()
      const records: RevocationRecord[] = []
      for (const claimed of claims) {
        const { job, lease } = claimed
        if (!holds(job.id, lease)) continue
        active.delete(job.id)
        jobs.delete(job.id)
        attempts.delete(job.id)
        const history = histories.get(job.id) ?? ''
        histories.delete(job.id)
        const record = succeeded(claimed, '', now, history)
        records.push({ ...record, id: audit?.append(withoutId(record)) ?? '' })
      }
      return records
    },
    async retry ({ job, lease }, dueAt, failure) {
      if (!holds(job.id, lease)) return false
      active.delete(job.id)
      if (failure !== undefined) histories.set(job.id, historyAdd(histories.get(job.id), failureJson(failure)))
      waiting.set(job.id, dueAt)
      return true
    },
    async release ({ job, lease, attempts: count }, dueAt) {
      if (!holds(job.id, lease)) return false
      active.delete(job.id)
      attempts.set(job.id, count - 1)
      waiting.set(job.id, dueAt ?? clock())
      return true
    },
    async bury (claimed, failure) {
      const { job, lease } = claimed
      if (!holds(job.id, lease)) return null
      const now = clock()
      active.delete(job.id)
      jobs.delete(job.id)
      attempts.delete(job.id)
      const history = histories.get(job.id) ?? ''
      histories.delete(job.id)
      dead.set(job.id, deadLetter(claimed, failure, now))
      const record = deadLettered(claimed, '', now, history, failure)
      return { ...record, id: audit?.append(withoutId(record)) ?? '' }
    },
    async counts () {
      return { waiting: waiting.size, active: active.size, dead: dead.size }
    },
    async nextDueAt () {
      let next: number | null = null
      for (const dueAt of waiting.values()) if (next === null || dueAt < next) next = dueAt
      return next
    },
    async deadLetters (limit) {
      return [...dead.values()].slice(0, limit)
    },
    async trimDeadLetters (buriedBefore, maxCount, limit) {
      // A Map keeps insertion order: the oldest dead letters come first.
      const removed: DeadJob[] = []
      for (const [id, letter] of dead) {
        if (removed.length >= limit || (letter.buriedAt >= buriedBefore && dead.size <= maxCount)) break
        dead.delete(id)
        removed.push(letter)
      }
      return removed
    },
    async deadLetterPage (limit, after) {
      const sorted = [...dead.values()].sort(byBurial)
      const offset = after === undefined ? 0 : sorted.filter((letter) => byBurial(letter, after) <= 0).length
      return { total: sorted.length, offset, letters: sorted.slice(offset, offset + limit) }
    },
    async retryDeadLetter (id, cause) {
      const letter = dead.get(id)
      return letter === undefined ? null : revive(letter, cause)
    },
    async retryDeadLetters (buriedBefore, cause, limit) {
      return [...dead.values()].sort(byBurial).filter((letter) => letter.buriedAt <= buriedBefore).slice(0, limit)
        .map((letter) => revive(letter, cause))
    },
    async dropDeadLetter (id) {
      const letter = dead.get(id)
      dead.delete(id)
      return letter ?? null
    }
  }

  /** As relayRetryDead does it: the dead letter back in the queue, due now, counted afresh. */
  function revive (letter: DeadJob, cause: OperatorRetryCause): Job {
    const now = clock()
    const job: Job = {
      id: letter.id,
      target: letter.target,
      createdAt: letter.createdAt,
      ...(letter.sid !== undefined ? { sid: letter.sid } : {}),
      cause: { ...cause, ...withOriginal(letter.cause) },
      ...(letter.identityId !== undefined ? { identityId: letter.identityId } : {}),
      retriedAt: now
    }
    dead.delete(letter.id)
    jobs.set(job.id, job)
    attempts.delete(job.id)
    histories.delete(job.id)
    waiting.set(job.id, now)
    return job
  }
}

/** The identity a job acts for, when it names one: the key of its audit index. */
export function jobIdentity (job: Job): string | undefined {
  switch (job.target.kind) {
    case 'kratos-sessions':
      return job.target.identityId
    case 'hydra-consent-sessions':
      return job.target.subject
    case 'hydra-login-session':
      return job.identityId
  }
}

/** `{ original }` of a retried job's cause: the first cause, however often the job was retried. */
function withOriginal (cause: JobCause | undefined): { original?: OriginalCause } {
  const original = cause?.kind === 'operator-retry' ? cause.original : cause
  return original === undefined ? {} : { original }
}

/** Oldest buried first; the same ms by id, as a Redis sorted set orders them. */
function byBurial (a: { buriedAt: number, id: string }, b: { buriedAt: number, id: string }): number {
  return a.buriedAt - b.buriedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

function deadLetter ({ job, attempts }: ClaimedJob, failure: AttemptFailure, now: number): DeadJob {
  return {
    ...job,
    attempts,
    lastError: failure.error,
    lastKind: failure.kind,
    ...(failure.status !== undefined ? { lastStatus: failure.status } : {}),
    buriedAt: now
  }
}

/** As the scripts' history_add: one attempt's JSON appended to a JSON array. */
function historyAdd (history: string | undefined, attempt: string): string {
  return history === undefined || history === '' ? `[${attempt}]` : `${history.slice(0, -1)},${attempt}]`
}

function parseHistory (history: string): AttemptRecord[] {
  return history === '' ? [] : JSON.parse(history) as AttemptRecord[]
}

/** The record of a job done; `before` is its history before this attempt (JSON, '' for none). */
function succeeded ({ job, attempts, status }: ClaimedJob, id: string, now: number, before: string): RevocationRecord {
  return { id, job, outcome: 'succeeded', at: now, attempts, history: [...parseHistory(before), { at: now, outcome: 'succeeded', ...(status !== undefined ? { status } : {}) }] }
}

function deadLettered ({ job, attempts }: ClaimedJob, id: string, now: number, before: string, failure: AttemptFailure): RevocationRecord {
  return { id, job, outcome: 'dead_lettered', at: now, attempts, history: [...parseHistory(before), { outcome: 'failed', ...failure }] }
}

function withoutId ({ id: _id, ...record }: RevocationRecord): Omit<RevocationRecord, 'id'> {
  return record
}

/**
 * A short stable tag of the issuer, so that two issuers' `jti` values never collide. Remembers the
 * last issuer's: a relay serves one issuer, so it is hashed once, not for every token.
 */
function issuerTagger (): (issuer: string) => string {
  let last = { issuer: '', tag: '' }
  return (issuer) => {
    if (issuer !== last.issuer) last = { issuer, tag: hash('sha256', issuer, 'base64url').slice(0, 12) }
    return last.tag
  }
}

/** The sid mark a job asks for: a Hydra login session revocation with a positive mark TTL. */
function markOf (job: NewJob): { sid: string, seconds: number } | undefined {
  if (job.target.kind !== 'hydra-login-session' || job.handledLogoutSeconds === undefined || job.handledLogoutSeconds <= 0) return undefined
  return { sid: job.target.sid, seconds: Math.ceil(job.handledLogoutSeconds) }
}

function toJob (newJob: NewJob, now: number): Job {
  return {
    id: randomUUID(),
    target: newJob.target,
    createdAt: now,
    ...(newJob.sid !== undefined ? { sid: newJob.sid } : {}),
    ...(newJob.cause !== undefined ? { cause: newJob.cause } : {}),
    ...(newJob.identityId !== undefined ? { identityId: newJob.identityId } : {})
  }
}

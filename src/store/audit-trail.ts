import type { Clock } from '../clock.js'
import { AUDIT_PER_IDENTITY, DEFAULT_AUDIT_BOUNDS, auditKeys, type AuditBounds } from './audit-record.js'
import { defineScripts, redisCall, type Keyspace, type LuaScript, type RedisClient } from './redis.js'
import { jobIdentity, type AuditSink, type RevocationRecord } from './revocation-queue.js'

/**
 * The audit trail of revocations, read side: every job the queue finished (done or dead-lettered),
 * with what asked for it and each attempt, as the queue's scripts wrote it (see `audit-record.ts`).
 * Kept within AUDIT_MAX_AGE and AUDIT_MAX_ENTRIES; a log pipeline keeps the audit log lines longer.
 */
export interface AuditTrail {
  /**
   * An identity's records, newest first: at most `limit` (and {@link AUDIT_PER_IDENTITY}), only those
   * finished at or after `since` (ms since the epoch) when given.
   */
  ofIdentity: (identityId: string, limit: number, since?: number) => Promise<RevocationRecord[]>
  /** Every identity's records finished at or after `since` (ms since the epoch), newest first, at most `limit`. */
  since: (since: number, limit: number) => Promise<RevocationRecord[]>
}

const SCRIPTS: LuaScript[] = [
  {
    name: 'relayAuditOf',
    keys: 2,
    // KEYS: the identity's audit index (stream ids, newest first), the audit log. ARGV: limit, since
    // (ms). Returns id, record JSON, … of the newest records still in the log; ids the log has trimmed
    // are skipped.
    lua: `
local out = {}
local limit = tonumber(ARGV[1])
local since = tonumber(ARGV[2])
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if #out >= 2 * limit or tonumber(string.match(id, '^%d+')) < since then break end
  local entry = redis.call('XRANGE', KEYS[2], id, id)[1]
  if entry then
    out[#out + 1] = id
    out[#out + 1] = entry[2][2]
  end
end
return out`
  }
]

/** The trail in Redis: the stream and indexes that the revocation queue's scripts write. */
export function createRedisAuditTrail (redis: RedisClient, keys: Keyspace): AuditTrail {
  const run = defineScripts(redis, SCRIPTS)
  const trail = auditKeys(keys)
  return {
    async ofIdentity (identityId, limit, since = 0) {
      const flat = await run('relayAuditOf', [trail.identity(identityId), trail.log], [Math.min(limit, AUDIT_PER_IDENTITY), since]) as string[]
      const records: RevocationRecord[] = []
      for (let i = 0; i + 1 < flat.length; i += 2) records.push(parseRecord(String(flat[i]), String(flat[i + 1])))
      return records
    },
    async since (since, limit) {
      const entries = await redisCall(redis.xrevrange(trail.log, '+', String(since), 'COUNT', limit))
      return entries.map(([id, fields]) => parseRecord(id, fields[1] ?? '{}'))
    }
  }
}

/** A stream entry's record: `{"job", "outcome", "at", "attempts", "history"}` and the entry's id. */
function parseRecord (id: string, json: string): RevocationRecord {
  return { id, ...JSON.parse(json) as Omit<RevocationRecord, 'id'> }
}

/**
 * The trail in process memory, for the in-memory queue (pass it as the queue's `audit`): the same
 * bounds, applied at each record.
 */
export function createMemoryAuditTrail (bounds: AuditBounds = DEFAULT_AUDIT_BOUNDS, clock: Clock = Date.now): AuditTrail & AuditSink {
  // Oldest first; the kept ones from `first` on (the array is compacted once half of it is gone).
  let records: RevocationRecord[] = []
  let first = 0
  let last = { ms: 0, seq: 0 }
  const kept = (): RevocationRecord[] => records.slice(first)
  const newest = (list: RevocationRecord[], since: number, limit: number): RevocationRecord[] => {
    const from = Math.max(since, clock() - bounds.maxAgeMs)
    return list.filter((record) => record.at >= from).reverse().slice(0, limit)
  }
  return {
    append (record) {
      const now = clock()
      last = now === last.ms ? { ms: now, seq: last.seq + 1 } : { ms: now, seq: 0 }
      const id = `${last.ms}-${last.seq}`
      records.push({ id, ...record })
      while (first < records.length && (records.length - first > bounds.maxEntries || (records[first]?.at ?? now) < now - bounds.maxAgeMs)) first++
      if (first > 1024 && first > records.length / 2) {
        records = kept()
        first = 0
      }
      return id
    },
    async ofIdentity (identityId, limit, since = 0) {
      return newest(kept().filter((record) => jobIdentity(record.job) === identityId), since, Math.min(limit, AUDIT_PER_IDENTITY))
    },
    async since (since, limit) {
      return newest(kept(), since, limit)
    }
  }
}

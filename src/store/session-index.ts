import type { Clock } from '../clock.js'
import { ExpiringMap } from './expiring-map.js'
import { defineScripts, redisCall, type Keyspace, type LuaScript, type RedisClient } from './redis.js'

/** A sid the index knows for an identity, and when its mapping expires (ms since the epoch). */
export interface IndexedSid {
  sid: string
  expiresAt: number
}

/**
 * The sid → Kratos identity index that the login hook fills and back-channel logout reads, plus the
 * reverse identity → sids. A logout for a sid the index does not know yet is remembered for a while,
 * so that a login hook arriving late for that sid can revoke at once.
 */
export interface SessionIndex {
  /**
   * The identity of a sid, or null. On a miss with `rememberLogout`, the sid is marked as logged out
   * before it was indexed — in the same atomic step, so that a concurrent `add` cannot slip between.
   */
  resolve: (sid: string, rememberLogout: boolean) => Promise<string | null>
  /**
   * Indexes sid → identity; `loggedOut` says that a logout for this sid came first. Idempotent for
   * the same identity (its expiry is renewed). A live sid of another identity is never remapped:
   * `conflict`, and nothing is written.
   */
  add: (sid: string, identityId: string) => Promise<IndexResult>
  /** Forgets the logged-out mark once the late revocation is queued. */
  forgetLogout: (sid: string) => Promise<void>
  /** The live sids of an identity. */
  sidsOf: (identityId: string) => Promise<IndexedSid[]>
}

/** What indexing a login did. */
export type IndexResult =
  | { outcome: 'indexed', loggedOut: boolean }
  /** The sid is mapped to another identity, which it stays mapped to. */
  | { outcome: 'conflict' }

export interface SessionIndexOptions {
  sidTtlSeconds: number
  /** The most sids one identity keeps; past it, the one that expires first leaves its list (default 1000). */
  maxSidsPerIdentity?: number
  /** How long a logout for an unknown sid is remembered. */
  unresolvedSidTtlSeconds: number
  clock?: Clock
  /** Redis: writers prune expired entries of their bucket about once in this many writes (default 32). */
  pruneOneIn?: number
}

/**
 * The Redis layout is built for memory: ~120 bytes per indexed sid instead of ~460 for a key per sid
 * and a sorted set per identity. Entries live in 16384 hash buckets per direction, small enough for
 * Redis' compact listpack encoding up to millions of live sids (hash-max-listpack-entries, 512 by
 * default):
 *
 * - forward, bucketed by sid: field `sid` → value `identity (16 bytes) ‖ expiry (uint32 seconds)`, and
 *   field `0x03 ‖ sid` → `expiry` for a logout that came before the login was indexed;
 * - reverse, bucketed by identity: field `identity ‖ sid` → `expiry`.
 *
 * UUIDs (Hydra's sids, Kratos' identity ids) are stored as their 16 bytes; other sids as text (up to
 * ~45 bytes they stay compact; a longer one works, but turns its buckets into Redis' larger hash
 * encoding). Redis cannot expire a
 * hash field before 7.4, so every value carries its expiry: readers ignore expired entries, writers
 * now and then prune them, and each bucket key expires with its longest-lived entry.
 */
export const INDEX_BUCKETS = 16_384

/** The most sids one identity keeps in its list unless configured otherwise (MAX_SIDS_PER_IDENTITY). */
export const DEFAULT_MAX_SIDS_PER_IDENTITY = 1000

const SID_UUID = 0x01
const SID_RAW = 0x02
const LOGGED_OUT = 0x03
const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** A sid as a field: its 16 bytes when it is a lower-case UUID (so that it round-trips), else its text. */
function encodeSid (sid: string): Buffer {
  return UUID_SHAPE.test(sid)
    ? Buffer.concat([Buffer.of(SID_UUID), Buffer.from(sid.replace(/-/g, ''), 'hex')])
    : Buffer.concat([Buffer.of(SID_RAW), Buffer.from(sid, 'utf8')])
}

function decodeSid (field: Buffer): string {
  return field[0] === SID_UUID ? uuidText(field.subarray(1, 17)) : field.subarray(1).toString('utf8')
}

function uuidBytes (uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex')
}

function uuidText (bytes: Buffer): string {
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

function seconds (value: number): Buffer {
  const buffer = Buffer.alloc(4)
  buffer.writeUInt32BE(value)
  return buffer
}

/** FNV-1a: a stable, cheap spread of any bytes over the buckets. */
function bucketOf (bytes: Buffer): number {
  let hash = 0x811c9dc5
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193)
  return (hash >>> 0) % INDEX_BUCKETS
}

// Shared Lua: the expiry of a value is its last 4 bytes (uint32, big-endian, seconds).
const LUA_HELPERS = `
local function expiry (value) return struct.unpack('>I4', value, #value - 3) end
local function keep (key, until_, now)
  local ttl = redis.call('TTL', key)
  if ttl < 0 or ttl < until_ - now then redis.call('EXPIRE', key, until_ - now) end
end
local function prune (key, now)
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if expiry(all[i + 1]) <= now then redis.call('HDEL', key, all[i]) end
  end
end`

const SCRIPTS: LuaScript[] = [
  {
    name: 'relayResolveSid',
    keys: 1,
    // KEYS: the sid's forward bucket. ARGV: sid field, logged-out field, mark expiry (4 bytes), mark
    // expiry (s), now (s). Returns the identity's 16 bytes; on a miss, marks the sid as logged out
    // before it was indexed and returns nil.
    lua: `${LUA_HELPERS}
local now = tonumber(ARGV[5])
local value = redis.call('HGET', KEYS[1], ARGV[1])
if value and expiry(value) > now then return string.sub(value, 1, 16) end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
keep(KEYS[1], tonumber(ARGV[4]), now)
return false`
  },
  {
    name: 'relayIndexSid',
    keys: 1,
    // KEYS: the sid's forward bucket. ARGV: sid field, identity ‖ expiry, logged-out field, expiry (s),
    // now (s), '1' to prune. Returns 1 when a logout for the sid was remembered before this login,
    // -1 (and writes nothing) when the sid is live and mapped to another identity: never remapped.
    lua: `${LUA_HELPERS}
local now = tonumber(ARGV[5])
if ARGV[6] == '1' then prune(KEYS[1], now) end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and expiry(current) > now and string.sub(current, 1, 16) ~= string.sub(ARGV[2], 1, 16) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
keep(KEYS[1], tonumber(ARGV[4]), now)
local mark = redis.call('HGET', KEYS[1], ARGV[3])
if mark and expiry(mark) > now then return 1 end
return 0`
  },
  {
    name: 'relayAddIdentitySid',
    keys: 1,
    // KEYS: the identity's reverse bucket. ARGV: identity ‖ sid field, expiry (4 bytes), expiry (s),
    // now (s), '1' to prune, the most sids an identity keeps. Past that, the identity's entry that
    // expires first leaves the bucket (its sid still resolves until it expires). Returns how many left.
    lua: `${LUA_HELPERS}
local now = tonumber(ARGV[4])
local most = tonumber(ARGV[6])
if ARGV[5] == '1' then prune(KEYS[1], now) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
keep(KEYS[1], tonumber(ARGV[3]), now)
-- A bucket no larger than the cap cannot hold more of one identity's sids: the common case ends here.
if redis.call('HLEN', KEYS[1]) <= most then return 0 end
local identity = string.sub(ARGV[1], 1, 16)
local mine = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 16) == identity then mine[#mine + 1] = { all[i], expiry(all[i + 1]) } end
end
if #mine <= most then return 0 end
table.sort(mine, function (a, b) return a[2] < b[2] end)
for i = 1, #mine - most do redis.call('HDEL', KEYS[1], mine[i][1]) end
return #mine - most`
  },
  {
    name: 'relaySidsOf',
    keys: 1,
    // KEYS: the identity's reverse bucket. ARGV: the identity's 16 bytes, now (s).
    // Returns sid field, expiry (s) for each live sid of the identity.
    lua: `${LUA_HELPERS}
local now = tonumber(ARGV[2])
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local field = all[i]
  if string.sub(field, 1, 16) == ARGV[1] then
    local until_ = expiry(all[i + 1])
    if until_ > now then
      out[#out + 1] = string.sub(field, 17)
      out[#out + 1] = until_
    end
  end
end
return out`
  }
]

export function createRedisSessionIndex (redis: RedisClient, keys: Keyspace, options: SessionIndexOptions): SessionIndex {
  const run = defineScripts(redis, SCRIPTS)
  // Every script here has one key, and replies that hold raw bytes.
  const call = async (name: string, key: string, ...args: Array<string | number | Buffer>): Promise<unknown> =>
    await run(name, [key], args, { buffers: true })
  const clock = options.clock ?? Date.now
  const nowSeconds = (): number => Math.floor(clock() / 1000)
  // A bucket's key is made once, then remembered: at most INDEX_BUCKETS strings per direction.
  const bucketKeys = (name: string): (bytes: Buffer) => string => {
    const made: string[] = []
    return (bytes) => {
      const bucket = bucketOf(bytes)
      made[bucket] ??= keys.key(name, String(bucket))
      return made[bucket]
    }
  }
  const forward = bucketKeys('sids')
  const reverse = bucketKeys('identities')
  const pruneOneIn = options.pruneOneIn ?? 32
  const maxSids = options.maxSidsPerIdentity ?? DEFAULT_MAX_SIDS_PER_IDENTITY
  const prune = (): string => Math.random() * pruneOneIn < 1 ? '1' : '0'

  return {
    async resolve (sid, rememberLogout) {
      const field = encodeSid(sid)
      const key = forward(field)
      const now = nowSeconds()
      // A sid the index knows, the common case, takes one plain read. A miss that must be remembered
      // goes through the script, which reads again and marks in one atomic step: a login indexed in
      // between is found there, not missed.
      const value = await redisCall(redis.hgetBuffer(key, field))
      if (value !== null && value.length === 20 && value.readUInt32BE(16) > now) return uuidText(value.subarray(0, 16))
      if (!rememberLogout) return null
      const until = now + options.unresolvedSidTtlSeconds
      const identity = await call('relayResolveSid', key, field, Buffer.concat([Buffer.of(LOGGED_OUT), field]),
        seconds(until), until, now)
      return Buffer.isBuffer(identity) ? uuidText(identity) : null
    },
    async add (sid, identityId) {
      const field = encodeSid(sid)
      const identity = uuidBytes(identityId)
      const now = nowSeconds()
      const until = now + options.sidTtlSeconds
      // The sid first, so that a sid of another identity is refused before anything is written; then
      // the identity's list (another Cluster slot). Should the second write fail, the hook answers 503
      // and Kratos retries it; until then the sid resolves but is missing from its identity's list.
      const indexed = await call('relayIndexSid', forward(field), field, Buffer.concat([identity, seconds(until)]),
        Buffer.concat([Buffer.of(LOGGED_OUT), field]), until, now, prune())
      if (indexed === -1) return { outcome: 'conflict' }
      await call('relayAddIdentitySid', reverse(identity), Buffer.concat([identity, field]), seconds(until), until, now, prune(), maxSids)
      return { outcome: 'indexed', loggedOut: indexed === 1 }
    },
    async forgetLogout (sid) {
      const field = encodeSid(sid)
      await redisCall(redis.hdel(forward(field), Buffer.concat([Buffer.of(LOGGED_OUT), field])))
    },
    async sidsOf (identityId) {
      const identity = uuidBytes(identityId)
      const flat = await call('relaySidsOf', reverse(identity), identity, nowSeconds()) as Array<Buffer | number>
      const sids: IndexedSid[] = []
      for (let i = 0; i + 1 < flat.length; i += 2) {
        sids.push({ sid: decodeSid(flat[i] as Buffer), expiresAt: Number(flat[i + 1]) * 1000 })
      }
      return sids
    }
  }
}

/** The same index in process memory: one instance, lost on restart. */
export function createMemorySessionIndex (options: SessionIndexOptions): SessionIndex {
  const clock = options.clock ?? Date.now
  const sids = new ExpiringMap<string>(clock)
  const marks = new ExpiringMap<true>(clock)
  const identities = new Map<string, Map<string, number>>()
  const sidTtlMs = options.sidTtlSeconds * 1000
  const maxSids = options.maxSidsPerIdentity ?? DEFAULT_MAX_SIDS_PER_IDENTITY

  const liveSids = (identityId: string): Map<string, number> | undefined => {
    const set = identities.get(identityId)
    if (set === undefined) return undefined
    const now = clock()
    for (const [sid, expiresAt] of set) if (expiresAt <= now) set.delete(sid)
    if (set.size === 0) identities.delete(identityId)
    return set.size === 0 ? undefined : set
  }

  return {
    async resolve (sid, rememberLogout) {
      const identity = sids.get(sid)
      if (identity !== undefined) return identity
      if (rememberLogout) marks.set(sid, true, options.unresolvedSidTtlSeconds * 1000)
      return null
    },
    async add (sid, identityId) {
      const current = sids.get(sid)
      if (current !== undefined && current !== identityId) return { outcome: 'conflict' }
      const set = liveSids(identityId) ?? new Map<string, number>()
      set.set(sid, clock() + sidTtlMs)
      // Past the cap, the sid that expires first leaves the identity's list.
      while (set.size > maxSids) {
        let first: [string, number] | undefined
        for (const entry of set) if (first === undefined || entry[1] < first[1]) first = entry
        if (first !== undefined) set.delete(first[0])
      }
      identities.set(identityId, set)
      sids.set(sid, identityId, sidTtlMs)
      return { outcome: 'indexed', loggedOut: marks.has(sid) }
    },
    async forgetLogout (sid) {
      marks.delete(sid)
    },
    async sidsOf (identityId) {
      return [...(liveSids(identityId) ?? [])].map(([sid, expiresAt]) => ({ sid, expiresAt }))
    }
  }
}

import type { AttemptRecord } from '../store/audit-record.js'
import type { AuditTrail } from '../store/audit-trail.js'
import { jobIdentity, type Job, type JobCause, type RevocationRecord } from '../store/revocation-queue.js'

/** What asked for a revocation, as the admin API, the command line and the audit log line show it. */
export type CauseView =
  | { kind: 'backchannel-logout', client_id: string, jti: string }
  | { kind: 'late-login-hook' }
  | { kind: 'admin-api', key_fingerprint: string }
  | { kind: 'credentials-changed', flow: 'settings' | 'recovery', method?: string }
  | { kind: 'backfill' }
  | { kind: 'operator-retry', via: 'cli' | 'admin-api', key_fingerprint?: string, original?: CauseView }

/** One attempt of a revocation, for people: its time in ISO 8601. */
export type AttemptView =
  | { at: string, outcome: 'succeeded', status?: number }
  | { at: string, outcome: 'failed', kind: string, status?: number, error: string }

/**
 * A finished revocation as the admin API, `logout-relay audit` and the audit log line show it: what it
 * revoked, for whom, what asked for it, each attempt, and how and when it ended. No token, no key:
 * a key is named by its fingerprint, a token by its `jti`.
 */
export interface RevocationView {
  /** The record's id in the audit trail. */
  id: string
  job_id: string
  outcome: RevocationRecord['outcome']
  kind: Job['target']['kind']
  identity_id?: string
  sid?: string
  cause: CauseView | null
  requested_at: string
  /** When an operator last sent the job back from the dead letters. */
  retried_at?: string
  /** When it completed, or was dead-lettered. */
  finished_at: string
  attempts: number
  history: AttemptView[]
}

export interface AuditDeps {
  audit: AuditTrail
}

/** The most records one call lists, and the default. */
export const MAX_AUDIT_LIMIT = 1000
export const DEFAULT_AUDIT_LIMIT = 100

/** An identity's revocations, newest first (`since`: only those finished since, ms since the epoch). */
export async function revocationsOf (deps: AuditDeps, identityId: string, limit: number, since?: number): Promise<RevocationView[]> {
  return (await deps.audit.ofIdentity(identityId, limit, since)).map(revocationView)
}

/** Every identity's revocations finished since `since` (ms since the epoch), newest first. */
export async function recentRevocations (deps: AuditDeps, since: number, limit: number): Promise<RevocationView[]> {
  return (await deps.audit.since(since, limit)).map(revocationView)
}

export function revocationView (record: RevocationRecord): RevocationView {
  const { job } = record
  const identityId = jobIdentity(job)
  return {
    id: record.id,
    job_id: job.id,
    outcome: record.outcome,
    kind: job.target.kind,
    ...(identityId !== undefined ? { identity_id: identityId } : {}),
    ...(job.sid !== undefined ? { sid: job.sid } : {}),
    cause: causeView(job.cause),
    requested_at: iso(job.createdAt),
    ...(job.retriedAt !== undefined ? { retried_at: iso(job.retriedAt) } : {}),
    finished_at: iso(record.at),
    attempts: record.attempts,
    history: record.history.map(attemptView)
  }
}

export function causeView (cause: JobCause | undefined): CauseView | null {
  switch (cause?.kind) {
    case undefined:
      return null
    case 'backchannel-logout':
      return { kind: cause.kind, client_id: cause.clientId, jti: cause.jti }
    case 'late-login-hook':
    case 'backfill':
      return { kind: cause.kind }
    case 'admin-api':
      return { kind: cause.kind, key_fingerprint: cause.keyFingerprint }
    case 'credentials-changed':
      return { kind: cause.kind, flow: cause.flow, ...(cause.method !== undefined ? { method: cause.method } : {}) }
    case 'operator-retry': {
      const original = causeView(cause.original)
      return {
        kind: cause.kind,
        via: cause.via,
        ...(cause.via === 'admin-api' ? { key_fingerprint: cause.keyFingerprint } : {}),
        ...(original !== null ? { original } : {})
      }
    }
  }
}

/** A cause in a few words, for a table: `back-channel logout (client app-a)`, `operator retry (cli) of …`. */
export function describeCause (cause: CauseView | null): string {
  switch (cause?.kind) {
    case undefined:
      return '-'
    case 'backchannel-logout':
      return `back-channel logout (client ${cause.client_id})`
    case 'late-login-hook':
      return 'late login hook'
    case 'admin-api':
      return `admin API (key ${cause.key_fingerprint})`
    case 'credentials-changed':
      return `credentials changed (${cause.flow}${cause.method !== undefined ? `, ${cause.method}` : ''})`
    case 'backfill':
      return 'index backfill'
    case 'operator-retry': {
      const by = cause.via === 'cli' ? 'cli' : `key ${cause.key_fingerprint ?? '?'}`
      return `operator retry (${by})${cause.original !== undefined ? ` of ${describeCause(cause.original)}` : ''}`
    }
  }
}

function attemptView (attempt: AttemptRecord): AttemptView {
  if (attempt.outcome === 'succeeded') return { at: iso(attempt.at), outcome: 'succeeded', ...(attempt.status !== undefined ? { status: attempt.status } : {}) }
  return { at: iso(attempt.at), outcome: 'failed', kind: attempt.kind, ...(attempt.status !== undefined ? { status: attempt.status } : {}), error: attempt.error }
}

function iso (ms: number): string {
  return new Date(ms).toISOString()
}

/**
 * A duration as the command line takes it: a whole number and a unit, `s`, `m`, `h` or `d`
 * (`30m`, `1h`, `2d`); in ms, or undefined when it is none.
 */
export function parseDuration (value: string): number | undefined {
  const match = /^(\d{1,9})([smhd])$/.exec(value.trim())
  if (match === null) return undefined
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd']
  return Number(match[1]) * unit
}

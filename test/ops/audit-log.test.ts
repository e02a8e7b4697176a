import t from 'tap'
import { createAuditLog } from '../../src/ops/audit-log.js'
import { createLogger } from '../../src/ops/logger.js'
import type { RevocationRecord } from '../../src/store/revocation-queue.js'
import { captureLines } from '../helper.js'

const identityId = '0c6f1b0e-3f5a-4d3b-9d38-6f1f1bde2a41'
const record: RevocationRecord = {
  id: '1764670000000-0',
  job: {
    id: '9d0c1f6e-9e7a-4a57-8f7e-0f6a3e1d2c4b',
    target: { kind: 'kratos-sessions', identityId },
    createdAt: 1764669000000,
    sid: 'sid-1',
    cause: { kind: 'operator-retry', via: 'admin-api', keyFingerprint: '3f9a0c1d2e4b5a69', original: { kind: 'backchannel-logout', clientId: 'app-a', jti: 'jti-1' } },
    retriedAt: 1764669900000
  },
  outcome: 'succeeded',
  at: 1764670000000,
  attempts: 2,
  history: [
    { at: 1764669950000, outcome: 'failed', kind: 'transient', status: 503, error: 'kratos DELETE /admin/identities/{id}/sessions: HTTP 503' },
    { at: 1764670000000, outcome: 'succeeded' }
  ]
}

function logAt (level: string): Array<Record<string, unknown>> {
  const lines: string[] = []
  createAuditLog(createLogger(level, captureLines(lines)))(record)
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>)
}

t.test('one info line per finished revocation, marked for audit, with the record: its cause, identity, sid, times and failed attempts', async (t) => {
  const [line, ...more] = logAt('info')
  t.same(more, [])
  t.same(line, {
    level: 30,
    time: line?.['time'],
    service: 'logout-relay',
    audit: true,
    event: 'revocation',
    revocation: {
      id: '1764670000000-0',
      job_id: record.job.id,
      outcome: 'succeeded',
      kind: 'kratos-sessions',
      identity_id: identityId,
      sid: 'sid-1',
      cause: { kind: 'operator-retry', via: 'admin-api', key_fingerprint: '3f9a0c1d2e4b5a69', original: { kind: 'backchannel-logout', client_id: 'app-a', jti: 'jti-1' } },
      requested_at: 1764669000000,
      retried_at: 1764669900000,
      finished_at: 1764670000000,
      attempts: 2,
      failures: [{ at: 1764669950000, kind: 'transient', status: 503, error: 'kratos DELETE /admin/identities/{id}/sessions: HTTP 503' }]
    },
    msg: 'revocation finished'
  })
})

t.test('a revocation done at its first attempt has no failures to list', async (t) => {
  const lines: string[] = []
  const first: RevocationRecord = { ...record, job: { ...record.job, cause: { kind: 'late-login-hook' } }, attempts: 1, history: [{ at: record.at, outcome: 'succeeded' }] }
  createAuditLog(createLogger('info', captureLines(lines)))(first)
  const { revocation } = JSON.parse(lines[0] ?? '{}') as { revocation: Record<string, unknown> }
  t.equal(revocation['failures'], undefined)
  t.same(revocation['cause'], { kind: 'late-login-hook' })
  t.equal(revocation['attempts'], 1)
})

t.test('written at info whatever LOG_LEVEL says, except silent', async (t) => {
  for (const level of ['error', 'warn', 'info', 'debug', 'trace']) t.equal(logAt(level).length, 1, level)
  t.same(logAt('silent'), [])
})

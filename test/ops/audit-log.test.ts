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

t.test('one info line per finished revocation, marked for audit, with the record as the admin API shows it', async (t) => {
  const [line, ...more] = logAt('info')
  t.same(more, [])
  t.match(line, {
    level: 30,
    service: 'logout-relay',
    audit: true,
    event: 'revocation',
    msg: 'revocation finished',
    id: '1764670000000-0',
    job_id: record.job.id,
    outcome: 'succeeded',
    kind: 'kratos-sessions',
    identity_id: identityId,
    sid: 'sid-1',
    cause: { kind: 'operator-retry', via: 'admin-api', key_fingerprint: '3f9a0c1d2e4b5a69', original: { kind: 'backchannel-logout', client_id: 'app-a', jti: 'jti-1' } },
    requested_at: '2025-12-02T09:50:00.000Z',
    retried_at: '2025-12-02T10:05:00.000Z',
    finished_at: '2025-12-02T10:06:40.000Z',
    attempts: 2,
    history: [
      { at: '2025-12-02T10:05:50.000Z', outcome: 'failed', kind: 'transient', status: 503, error: 'kratos DELETE /admin/identities/{id}/sessions: HTTP 503' },
      { at: '2025-12-02T10:06:40.000Z', outcome: 'succeeded' }
    ]
  })
})

t.test('written at info whatever LOG_LEVEL says, except silent', async (t) => {
  for (const level of ['error', 'warn', 'info', 'debug', 'trace']) t.equal(logAt(level).length, 1, level)
  t.same(logAt('silent'), [])
})

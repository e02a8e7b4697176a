import { randomUUID } from 'node:crypto'
import { OryDouble, type OryDoubleOptions } from './ory-double.js'

/**
 * Kratos' admin API as its OpenAPI document describes it, with sessions per identity:
 * `DELETE /admin/identities/{id}/sessions` answers 204 and revokes them, or 404 when there are none.
 */
export class KratosDouble extends OryDouble {
  readonly sessions = new Map<string, string[]>()

  constructor (options: OryDoubleOptions = {}) {
    const sessions = new Map<string, string[]>()
    super('kratos/api.json', {
      deleteIdentitySessions: ({ params }) => {
        const active = sessions.get(params['id'] ?? '') ?? []
        if (active.length === 0) return { status: 404, body: { error: { code: 404, status: 'Not Found', message: 'Unable to locate the resource' } } }
        sessions.set(params['id'] ?? '', [])
        return { status: 204 }
      },
      listIdentitySessions: ({ params }) => ({
        status: 200,
        body: (sessions.get(params['id'] ?? '') ?? []).map((id) => ({ id, active: true, identity: { id: params['id'] } }))
      }),
      listIdentities: () => ({
        status: 200,
        body: [...sessions.keys()].slice(0, 1).map((id) => ({ id, schema_id: 'default', schema_url: '', state: 'active', traits: {} }))
      }),
      isAlive: () => ({ status: 200, body: { status: 'ok' } }),
      isReady: () => ({ status: 200, body: { status: 'ok' } })
    }, options)
    this.sessions = sessions
  }

  /** Logs the identity in on `count` more devices. */
  addSessions (identityId: string, count = 1): void {
    const active = this.sessions.get(identityId) ?? []
    for (let i = 0; i < count; i++) active.push(randomUUID())
    this.sessions.set(identityId, active)
  }

  activeSessions (identityId: string): number {
    return this.sessions.get(identityId)?.length ?? 0
  }

  /** The identities whose sessions were revoked, in call order (404s included). */
  revokedIdentities (): string[] {
    return this.callsOf('deleteIdentitySessions').map((call) => call.params['id'] ?? '')
  }
}

import { randomUUID } from 'node:crypto'
import { isUuid } from '../../src/uuid.js'
import { OryDouble, type Answer, type DoubleOptions } from './ory-double.js'
import { FIRST_IDENTITY_TOKEN, keysetHeaders, pagePaginationHeaders, parsePagePagination } from './pagination.js'

/** A time as Kratos writes it (RFC 3339 with nanoseconds). */
function timestamp (offsetMs = 0): string {
  return new Date(Date.now() + offsetMs).toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z')
}

/** An identity as Kratos' admin API shows it in a listing (`metadata_admin` too) or inside a session (without). */
function identityObject (id: string, options: { withAdminMetadata: boolean }): Record<string, unknown> {
  return {
    id,
    schema_id: 'default',
    schema_url: '',
    state: 'active',
    state_changed_at: timestamp(),
    traits: { email: `${id.slice(0, 8)}@example.com` },
    metadata_public: null,
    ...(options.withAdminMetadata ? { metadata_admin: null } : {}),
    created_at: timestamp(),
    updated_at: timestamp(),
    organization_id: null
  }
}

/** A session as `GET /admin/identities/{id}/sessions` lists it (every member Kratos v1.3.1 sends). */
function sessionObject (id: string, identityId: string): Record<string, unknown> {
  return {
    id,
    active: true,
    expires_at: timestamp(86_400_000),
    authenticated_at: timestamp(),
    authenticator_assurance_level: 'aal1',
    authentication_methods: [{ method: 'password', aal: 'aal1', completed_at: timestamp() }],
    issued_at: timestamp(),
    identity: identityObject(identityId, { withAdminMetadata: false }),
    devices: [{ id: randomUUID(), ip_address: '127.0.0.1:40000', user_agent: 'node', location: '' }]
  }
}

/**
 * Kratos' admin API as its OpenAPI document describes it, with sessions per identity:
 * `DELETE /admin/identities/{id}/sessions` answers 204 and revokes them, or 404 when there are none.
 * Like Kratos' admin port it redirects every path outside /admin there (307) and serves the health
 * checks under /admin/health/.
 */
export class KratosDouble extends OryDouble {
  readonly sessions = new Map<string, string[]>()
  /** Every identity Kratos has (those with sessions among them), as `listIdentities` pages them: in id order. */
  readonly identities = new Set<string>()

  constructor (options: Pick<DoubleOptions, 'token' | 'publicPort'> = {}) {
    const sessions = new Map<string, string[]>()
    const identities = new Set<string>()
    super('kratos/api.json', {
      deleteIdentitySessions: ({ params }) => {
        const active = sessions.get(params['id'] ?? '') ?? []
        if (active.length === 0) return { status: 404, body: { error: { code: 404, status: 'Not Found', message: 'Unable to locate the resource' } } }
        sessions.set(params['id'] ?? '', [])
        return { status: 204 }
      },
      listIdentitySessions: ({ params }) => {
        const identityId = params['id'] ?? ''
        const listed = (sessions.get(identityId) ?? []).map((id) => sessionObject(id, identityId))
        return {
          status: 200,
          headers: {
            link: `</admin/identities/${identityId}/sessions?page=0&page_size=250&page_token=eyJvZmZzZXQiOiIwIiwidiI6Mn0&per_page=250>; rel="first"`,
            'x-total-count': String(listed.length)
          },
          body: listed
        }
      },
      listIdentities: ({ path, query }) => {
        const ids = [...identities].sort()
        const badRequest = (reason: string): Answer => ({
          status: 400,
          body: { error: { code: 400, status: 'Bad Request', reason, message: 'The request was malformed or contained invalid parameters' } }
        })
        const listed = (page: string[]): unknown[] => page.map((id) => identityObject(id, { withAdminMetadata: true }))
        // x.ParseKeysetOrPagePagination: page_token or page_size mean keyset pagination; else page means
        // the older page pagination (with a count); else keyset, per_page standing for page_size.
        if (!query.has('page_token') && !query.has('page_size') && query.has('page')) {
          const { page, perPage } = parsePagePagination(query)
          if (page * perPage > 1000) return badRequest('Legacy pagination is not supported for enumerating over 1000 items. Please switch to using page_token and page_size.')
          return { status: 200, headers: pagePaginationHeaders(path, query, ids.length, page, perPage), body: listed(ids.slice(page * perPage, (page + 1) * perPage)) }
        }
        const sizeParam = query.get('page_size') ?? (query.has('page_token') ? null : query.get('per_page'))
        if (sizeParam !== null && !/^[+-]?\d+$/.test(sizeParam)) return badRequest(`strconv.Atoi: parsing "${sizeParam}": invalid syntax`)
        const size = sizeParam === null || Number(sizeParam) === 0 ? 250 : Number(sizeParam)
        const token = query.get('page_token') || FIRST_IDENTITY_TOKEN
        if (!isUuid(token)) return badRequest('The page token is invalid, do not craft your own page tokens')
        // Kratos asks for one item more than the page: with it, there is a next page, whose token is
        // the last identity of this one.
        const after = ids.filter((id) => id > token.toLowerCase()).slice(0, size + 1)
        const page = after.slice(0, size)
        const next = after.length > size ? page.at(-1) : undefined
        const keysetQuery = new URLSearchParams(query)
        if (!query.has('page_size') && query.has('per_page')) keysetQuery.delete('per_page')
        return { status: 200, headers: keysetHeaders(path, keysetQuery, size, next), body: listed(page) }
      },
      isAlive: () => ({ status: 200, body: { status: 'ok' } }),
      isReady: () => ({ status: 200, body: { status: 'ok' } })
    }, { ...options, adminPrefix: options.publicPort === undefined })
    this.sessions = sessions
    this.identities = identities
  }

  /** Adds identities without sessions (random ids unless given); returns their ids. */
  addIdentities (count: number, ids: string[] = []): string[] {
    const added = [...ids]
    while (added.length < count) added.push(randomUUID())
    for (const id of added) this.identities.add(id)
    return added
  }

  /** Logs the identity in on `count` more devices. */
  addSessions (identityId: string, count = 1): void {
    this.identities.add(identityId)
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

/**
 * The request Kratos' `web_hook` sends for config/kratos/login-hook.jsonnet, header fields as
 * Kratos v1.3.1 sends them (test/fixtures/ory-recorded/kratos.json, web_hook): for tests that call the
 * login hook over HTTP the way Kratos does.
 */
export function kratosWebHookRequest (body: { identity_id: string, login_challenge?: string, sid?: string }, apiKey: string): { method: 'POST', headers: Record<string, string>, body: string } {
  return {
    method: 'POST',
    headers: {
      'user-agent': 'Go-http-client/1.1',
      authorization: `Bearer ${apiKey}`,
      'content-type': 'application/json',
      'ory-webhook-request-id': randomUUID(),
      'accept-encoding': 'gzip'
    },
    body: JSON.stringify(body)
  }
}

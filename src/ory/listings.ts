import { UpstreamError, refusedAnswer, type AdminAnswer, type OryService } from './admin-http.js'
import type { AdminClient } from './admin.js'
import { linkRelations, nextPageToken } from './pagination.js'
import { isUuid } from '../uuid.js'

/**
 * Items the relay asks for per page: the default of both servers, and within every maximum their API
 * documents (Kratos' `page_size` ≤ 500, Hydra's consent sessions ≤ 500, clients ≤ 1000).
 */
export const LIST_PAGE_SIZE = 250

/** Pages of one listing the relay follows at most: a server that kept answering `next` would not end it. */
export const MAX_LIST_PAGES = 1000

type Lister = Pick<AdminClient, 'get'>

/** One page of Kratos' identities: their ids, and the token of the next page (none on the last). */
export interface IdentityPage {
  ids: string[]
  next: string | undefined
}

/** What the relay reads of one of Hydra's consent sessions. */
export interface ConsentSession {
  /** The login session of the consent: the `sid` of the ID tokens issued under it. Absent once that login session ended. */
  sid: string | undefined
  clientId: string | undefined
}

/** What the relay reads of one of Hydra's OAuth2 clients. */
export interface OAuth2ClientSummary {
  clientId: string
  /** Empty when the client has none. */
  backchannelLogoutUri: string
  grantTypes: string[]
  responseTypes: string[]
}

/** The JSON list an admin listing answers with 200; anything else as an {@link UpstreamError}. */
function jsonList (service: OryService, operation: string, answer: AdminAnswer): unknown[] {
  const { status } = answer
  // A listing answers an empty list, never 404: a 404 came from a router that has no such route, as
  // Hydra's admin port answers a path prefix too many (with a JSON error, by content negotiation).
  if (status === 404) {
    throw new UpstreamError(service, false, status, `${service} ${operation}: HTTP 404 from something that is not ${service}'s admin API (${String(answer.headers['content-type'] ?? 'no content type')})`, { misrouted: true })
  }
  if (status !== 200) throw refusedAnswer(service, operation, status)
  let body: unknown
  try {
    body = JSON.parse(answer.body)
  } catch {}
  if (!Array.isArray(body)) throw new UpstreamError(service, false, status, `${service} ${operation}: the answer is not a JSON list`)
  return body
}

function record (value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : {}
}

function strings (value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : []
}

/**
 * One page of Kratos' identities (`GET /admin/identities?page_size=&page_token=`, keyset pagination:
 * in id order, the next page's token in the `Link` header). Without a token, the first page.
 */
export async function listIdentitiesPage (kratos: Lister, pageToken: string | undefined, pageSize = LIST_PAGE_SIZE): Promise<IdentityPage> {
  const operation = 'GET /admin/identities'
  const query = new URLSearchParams({ page_size: String(pageSize), ...(pageToken !== undefined ? { page_token: pageToken } : {}) })
  const answer = await kratos.get(`/admin/identities?${query.toString()}`)
  const ids = jsonList('kratos', operation, answer).map((identity) => {
    const id = record(identity)['id']
    if (!isUuid(id)) throw new UpstreamError('kratos', false, 200, `kratos ${operation}: an identity without a UUID id`)
    return id.toLowerCase()
  })
  return { ids, next: nextPageToken(answer.headers['link']) }
}

/**
 * How many identities Kratos has, or undefined when it does not say. Kratos' keyset pages carry no
 * count; its older page pagination does (`X-Total-Count` of `?page=0&per_page=1`), one item long.
 * Only an estimate for a progress bar: any failure is no count.
 */
export async function countIdentities (kratos: Lister): Promise<number | undefined> {
  try {
    const answer = await kratos.get('/admin/identities?page=0&per_page=1')
    if (answer.status !== 200) return undefined
    const total = Number(answer.headers['x-total-count'])
    return Number.isSafeInteger(total) && total >= 0 ? total : undefined
  } catch {
    return undefined
  }
}

/** What a walk through a Hydra listing read. */
interface Pages {
  items: unknown[]
  /** Pages asked for, the empty last one included. */
  pages: number
  /** The `X-Total-Count` of the first page that had one. */
  total: number | undefined
  /** More pages than {@link MAX_LIST_PAGES} would have followed. */
  truncated: boolean
}

/** Every page of a Hydra listing that its `Link` headers lead to, in order; a page without items ends it. */
async function allPages (hydra: Lister, operation: string, path: string, query: Record<string, string>, pageSize: number): Promise<Pages> {
  const items: unknown[] = []
  const seen = new Set<string>()
  let total: number | undefined
  let token: string | undefined
  for (let page = 1; page <= MAX_LIST_PAGES; page++) {
    const search = new URLSearchParams({ ...query, page_size: String(pageSize), ...(token !== undefined ? { page_token: token } : {}) })
    const answer = await hydra.get(`${path}?${search.toString()}`)
    const list = jsonList('hydra', operation, answer)
    items.push(...list)
    const count = Number(answer.headers['x-total-count'])
    if (total === undefined && answer.headers['x-total-count'] !== undefined && Number.isSafeInteger(count)) total = count
    // Hydra v2.3.0 links a `next` page even from an empty listing of clients (its header counts pages
    // from the total, 0): an empty page is the end, as is a token seen before, and a link that does not
    // keep the page size (see ConsentListing.unread): the pages read then stay one after the other.
    token = nextPageToken(answer.headers['link'])
    const size = new URL(linkRelations(answer.headers['link'])['next'] ?? '/', 'http://link.invalid').searchParams.get('page_size')
    if (list.length === 0 || token === undefined || seen.has(token) || (size !== null && size !== String(pageSize))) {
      return { items, pages: page, total, truncated: false }
    }
    seen.add(token)
  }
  return { items, pages: MAX_LIST_PAGES, total, truncated: true }
}

/** Consent sessions per page the relay asks for: the most Hydra's API documents. */
export const CONSENT_PAGE_SIZE = 500

/** A subject's consent sessions as Hydra lists them. */
export interface ConsentListing {
  sessions: ConsentSession[]
  /**
   * Consent sessions Hydra counts (`X-Total-Count`) past the pages read: the oldest ones (Hydra lists
   * the newest first). Hydra v2.3.0 links no usable next page: its handler passes the page and the page
   * size to the Link header the wrong way round (consent/handler.go, listOAuth2ConsentSessions), so
   * that a `next` link, when there is one, names another page size and skips rows. The relay follows
   * only a link that keeps its page size, forges no page token, and says how many it did not reach.
   */
  unread: number
}

/**
 * Every consent session Hydra lists for a subject (`GET /admin/oauth2/auth/sessions/consent?subject=`),
 * each with its login session (`consent_request.login_session_id`).
 *
 * Hydra lists only consents that were asked, not those it skipped because a remembered consent
 * covered them (hydra v2.3.0 persistence/sql/persister_consent.go, FindSubjectsGrantedConsentRequests:
 * `consent_skip=FALSE`), and none whose `remember_for` has passed: a login session whose every consent
 * was skipped is not found here.
 */
export async function listConsentSessions (hydra: Lister, subject: string, pageSize = CONSENT_PAGE_SIZE): Promise<ConsentListing> {
  const { items, pages, total } = await allPages(hydra, 'GET /admin/oauth2/auth/sessions/consent', '/admin/oauth2/auth/sessions/consent', { subject }, pageSize)
  const sessions = items.map((item) => {
    const request = record(record(item)['consent_request'])
    const sid = request['login_session_id']
    const clientId = record(request['client'])['client_id']
    return {
      sid: typeof sid === 'string' && sid !== '' ? sid : undefined,
      clientId: typeof clientId === 'string' ? clientId : undefined
    }
  })
  // Pages cover rows in Hydra's order before it drops the expired ones: what lies past them is unread.
  return { sessions, unread: total === undefined ? 0 : Math.max(0, total - pages * pageSize) }
}

/** Every OAuth2 client of Hydra (`GET /admin/clients`, every page); `truncated` past {@link MAX_LIST_PAGES} pages. */
export async function listClients (hydra: Lister, pageSize = 500): Promise<{ clients: OAuth2ClientSummary[], truncated: boolean }> {
  const { items, truncated } = await allPages(hydra, 'GET /admin/clients', '/admin/clients', {}, pageSize)
  const clients = items.map((item) => {
    const client = record(item)
    const uri = client['backchannel_logout_uri']
    return {
      clientId: String(client['client_id'] ?? ''),
      backchannelLogoutUri: typeof uri === 'string' ? uri : '',
      grantTypes: strings(client['grant_types']),
      responseTypes: strings(client['response_types'])
    }
  })
  return { clients, truncated }
}

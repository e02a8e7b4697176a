/**
 * Ory's pagination as its servers answer it, for the doubles: the `Link` and `X-Total-Count` headers
 * of ory/x (v0.0.660 in Kratos v1.3.1, v0.0.675 in Hydra v2.3.0), ported line by line, quirks and all,
 * so that the relay meets in its tests what it meets in production (test/fixtures/ory-recorded holds
 * the real answers).
 */

/** A link target as Ory writes one: the request's path, its query with the pagination set (Go's `url.Values.Encode`: keys sorted). */
function linkTarget (path: string, query: URLSearchParams, set: Record<string, string>): string {
  const params = new URLSearchParams(query)
  for (const [name, value] of Object.entries(set)) params.set(name, value)
  params.sort()
  return `${path}?${params.toString()}`
}

type Formatter = (rel: string, itemsPerPage: number, offset: number) => string

/**
 * ory/x pagination.HeaderWithFormatter: `X-Total-Count` and the `Link` relations of an offset listing,
 * with its odd cases: an empty listing links `next` and `prev`; a listing that fits one page links
 * only `first`, whose page size is the total.
 */
function headerWithFormatter (total: number, page: number, itemsPerPage: number, format: Formatter): Record<string, string> {
  if (itemsPerPage <= 0) itemsPerPage = 1
  const offset = page * itemsPerPage
  const lastOffset = total % itemsPerPage === 0 ? total - itemsPerPage : Math.floor(total / itemsPerPage) * itemsPerPage
  const headers: Record<string, string> = { 'x-total-count': String(total) }
  const links = (...parts: string[]): Record<string, string> => ({ ...headers, link: parts.join(',') })
  const current = Math.floor(offset / itemsPerPage)
  if (offset >= lastOffset) {
    if (total === 0) {
      return links(format('first', itemsPerPage, 0), format('next', itemsPerPage, (current + 1) * itemsPerPage), format('prev', itemsPerPage, (current - 1) * itemsPerPage))
    }
    if (total <= itemsPerPage) return links(format('first', total, 0))
    return links(format('first', itemsPerPage, 0), format('prev', itemsPerPage, lastOffset - itemsPerPage))
  }
  if (offset < itemsPerPage) return links(format('next', itemsPerPage, itemsPerPage), format('last', itemsPerPage, lastOffset))
  return links(
    format('first', itemsPerPage, 0),
    format('next', itemsPerPage, (current + 1) * itemsPerPage),
    format('prev', itemsPerPage, (current - 1) * itemsPerPage),
    format('last', itemsPerPage, lastOffset)
  )
}

// ---- token pagination (Hydra: clients, consent sessions) -----------------------------------------

/** tokenpagination.Encode: the offset as base64url JSON. */
export function encodeOffsetToken (offset: number): string {
  return Buffer.from(`{"offset":"${offset}","v":2}`).toString('base64url')
}

function decodeOffsetToken (token: string): number {
  try {
    const offset = Number((JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { offset?: unknown }).offset)
    return Number.isFinite(offset) ? Math.trunc(offset) : 0
  } catch {
    return 0
  }
}

/** Hydra's x.ParsePagination (a TokenPaginator of 1000 items at most, 250 by default): page and page size. */
export function parseTokenPagination (query: URLSearchParams): { page: number, itemsPerPage: number } {
  const token = query.get('page_token')
  const offset = token !== null && token !== '' ? decodeOffsetToken(token) : 0
  const size = /^[+-]?\d+$/.test(query.get('page_size') ?? '') ? Number(query.get('page_size')) : 250
  const itemsPerPage = Math.max(1, Math.min(1000, size))
  const page = offset > 0 ? Math.max(0, Math.floor(offset / itemsPerPage)) : 0
  return { page, itemsPerPage }
}

/** tokenpagination.PaginationHeader(w, url, total, page, itemsPerPage). */
export function tokenPaginationHeaders (path: string, query: URLSearchParams, total: number, page: number, itemsPerPage: number): Record<string, string> {
  return headerWithFormatter(total, page, itemsPerPage, (rel, size, offset) =>
    `<${linkTarget(path, query, { page_size: String(size), page_token: encodeOffsetToken(offset) })}>; rel="${rel}"`)
}

// ---- Kratos' identities: keyset pagination, and the older page pagination -------------------------

/** The token of Kratos' first page of identities (identity.DefaultPageToken: the nil UUID). */
export const FIRST_IDENTITY_TOKEN = '00000000-0000-0000-0000-000000000000'

/** keysetpagination.Header: `first`, and `next` unless this is the last page. */
export function keysetHeaders (path: string, query: URLSearchParams, size: number, next: string | undefined): Record<string, string> {
  const link = (rel: string, token: string): string => `<${linkTarget(path, query, { page_token: token, page_size: String(size) })}>; rel="${rel}"`
  return { link: [link('first', FIRST_IDENTITY_TOKEN), ...(next !== undefined ? [link('next', next)] : [])].join(',') }
}

/** pagepagination.PagePaginator{MaxItems: 500, DefaultItems: 250}.ParsePagination, as Kratos parses `page` and `per_page`. */
export function parsePagePagination (query: URLSearchParams): { page: number, perPage: number } {
  const int = (value: string | null): number | undefined => value !== null && /^[+-]?\d+$/.test(value) ? Number(value) : undefined
  const page = Math.max(0, int(query.get('page')) ?? 0)
  const perPage = Math.max(1, Math.min(500, int(query.get('per_page')) ?? 250))
  return { page, perPage }
}

/** pagepagination.PaginationHeader: `X-Total-Count` and links with `page` and `per_page`. */
export function pagePaginationHeaders (path: string, query: URLSearchParams, total: number, page: number, perPage: number): Record<string, string> {
  return headerWithFormatter(total, page, perPage, (rel, limit, offset) =>
    `<${linkTarget(path, query, { per_page: String(limit), page: String(Math.floor(offset / limit)) })}>; rel="${rel}"`)
}

/**
 * The pages of an Ory listing, as its `Link` header names them (RFC 8288):
 * `</admin/identities?page_size=250&page_token=…>; rel="first",</admin/identities?…>; rel="next"`.
 *
 * Kratos' keyset pagination (v1.3.1: the last identity's id as token; Ory Network: an opaque token)
 * and Hydra's token pagination (v2.3.0: base64url `{"offset":"N","v":2}`) both put the next page's
 * `page_token` into the `next` link, and both name only the path (Ory Network: an absolute URL). The
 * relay takes the token alone and asks its own admin URL for it: a token is opaque, and a link's path
 * is the server's view, which a proxy in front may not share.
 */

/** The target URL of each relation of a `Link` header, e.g. `{ first: '/admin/…', next: '/admin/…' }`. */
export function linkRelations (header: string | string[] | undefined): Record<string, string> {
  const relations: Record<string, string> = {}
  const text = Array.isArray(header) ? header.join(',') : header
  if (text === undefined) return relations
  // A target is between < and > and may hold commas; parameters follow it up to the next link.
  for (const match of text.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]+)*)/g)) {
    const target = match[1] ?? ''
    for (const parameter of (match[2] ?? '').split(';')) {
      const [name, value] = parameter.split('=').map((part) => part.trim())
      if (name?.toLowerCase() !== 'rel' || value === undefined) continue
      for (const rel of value.replace(/^"|"$/g, '').split(/\s+/)) {
        if (rel !== '' && relations[rel.toLowerCase()] === undefined) relations[rel.toLowerCase()] = target
      }
    }
  }
  return relations
}

/** The `page_token` of the `next` link, or undefined on the last page. */
export function nextPageToken (header: string | string[] | undefined): string | undefined {
  const next = linkRelations(header)['next']
  if (next === undefined) return undefined
  let url: URL
  try {
    url = new URL(next, 'http://link.invalid')
  } catch {
    return undefined
  }
  const token = url.searchParams.get('page_token')
  return token === null || token === '' ? undefined : token
}

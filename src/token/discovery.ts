/** OpenID Connect Discovery 1.0 §4: `<issuer>/.well-known/openid-configuration`, trailing slash removed. */
export function discoveryUrl (issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
}

/** What the issuer's discovery URL answered: its status, and the body when it is a JSON object. */
export interface DiscoveryAnswer {
  url: string
  status: number
  /** The discovery document (OIDC Discovery 1.0 §3), undefined when the body is no JSON object. */
  document: Record<string, unknown> | undefined
}

/**
 * Fetches the issuer's discovery document: no redirect followed (the issuer's URL is exact), bounded
 * by `timeoutMs`. Rejects only when no answer came; any answer is returned for the caller to judge.
 */
export async function fetchDiscovery (issuer: string, fetchImpl: typeof fetch, timeoutMs: number): Promise<DiscoveryAnswer> {
  const url = discoveryUrl(issuer)
  const response = await fetchImpl(url, {
    headers: { accept: 'application/json' },
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs)
  })
  const text = await response.text()
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch {}
  const isObject = typeof document === 'object' && document !== null && !Array.isArray(document)
  return { url, status: response.status, document: isObject ? document as Record<string, unknown> : undefined }
}

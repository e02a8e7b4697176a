import {
  createLocalJWKSet, createRemoteJWKSet, customFetch, errors, jwksCache,
  type ExportedJWKSCache, type JWTVerifyGetKey
} from 'jose'
import { RelayError } from '../errors.js'
import { fetchDiscovery } from './discovery.js'

export interface IssuerKeysOptions {
  /** The exact issuer; its discovery document names the JWKS when `jwksUrl` is not given. */
  issuer: string
  /** Where the signing keys are, when the issuer's public URL is not reachable from the relay. */
  jwksUrl?: string | undefined
  /** Per HTTP request to the issuer. */
  timeoutMs?: number
  /** An unknown `kid` refetches the JWKS at most once within this period. */
  cooldownMs?: number
  /** Keys are refetched after this age even when every `kid` is known. */
  cacheMaxAgeMs?: number
  /**
   * The fetch of every request to the issuer. The relay passes undici's, over a proxy-aware
   * dispatcher of its own (`createOutboundFetch` in ory/dispatcher.ts); default: Node's global fetch.
   */
  fetch?: typeof fetch
}

/**
 * The issuer's signing keys as a jose key resolver: the JWKS is fetched once, cached, and refetched
 * at most once per cooldown when a token names an unknown `kid` (key rotation). A `kid` still unknown
 * after a refetch is a 400; one met while the cooldown forbids a refetch is `ERR_JWKS_UNAVAILABLE`
 * (503, retry later), since it may be a key rotated in since. When the issuer cannot be reached, the
 * keys last fetched still verify tokens whose `kid` they hold.
 */
export function createIssuerKeys (options: IssuerKeysOptions): JWTVerifyGetKey {
  // Resolved on the first request, not before the first token: an idle relay does not carry undici
  // (Node loads the global fetch's on first access; createOutboundFetch loads its own on first use).
  const fetchImpl: typeof fetch = async (input, init) => await (options.fetch ?? globalThis.fetch)(input, init)
  const timeoutMs = options.timeoutMs ?? 5000
  const cooldownMs = options.cooldownMs ?? 30_000
  // jose keeps the last JWKS fetched (and when) here: our fallback when the issuer is unreachable.
  const cache: Partial<ExportedJWKSCache> = {}
  let remote: Promise<JWTVerifyGetKey> | undefined

  const remoteKeys = (): Promise<JWTVerifyGetKey> => {
    remote ??= resolveJwksUrl(options.issuer, options.jwksUrl, fetchImpl, timeoutMs).then((url) =>
      createRemoteJWKSet(new URL(url), {
        timeoutDuration: timeoutMs,
        cooldownDuration: cooldownMs,
        cacheMaxAge: options.cacheMaxAgeMs ?? 600_000,
        [jwksCache]: cache as ExportedJWKSCache,
        [customFetch]: fetchImpl
      })
    ).catch((err: unknown) => {
      remote = undefined
      throw err
    })
    return remote
  }

  return async (header, token) => {
    const fetchedAt = cache.uat
    try {
      return await (await remoteKeys())(header, token)
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey && cache.uat === fetchedAt) {
        // jose refetches for an unknown kid only once per cooldown. No refetch happened for this
        // token, so the kid may be a key rotated in since: it cannot be judged yet.
        throw new RelayError('ERR_JWKS_UNAVAILABLE', 'logout_token kid is not known yet; the signing keys are refetched shortly',
          { retryAfter: Math.ceil(cooldownMs / 1000) })
      }
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys ||
        err instanceof errors.JOSENotSupported || err instanceof RelayError) {
        throw err
      }
      // The issuer could not be reached: fall back on the keys last fetched, if they know this kid.
      if (cache.jwks !== undefined) {
        try {
          return await createLocalJWKSet(cache.jwks)(header, token)
        } catch {}
      }
      throw new RelayError('ERR_JWKS_UNAVAILABLE', "the issuer's signing keys cannot be loaded right now", { cause: err })
    }
  }
}

async function resolveJwksUrl (
  issuer: string, jwksUrl: string | undefined, fetchImpl: typeof fetch, timeoutMs: number
): Promise<string> {
  if (jwksUrl !== undefined) return jwksUrl
  const { url, status, document } = await fetchDiscovery(issuer, fetchImpl, timeoutMs)
  if (status !== 200) {
    throw new RelayError('ERR_JWKS_UNAVAILABLE', `the discovery document ${url} answered ${status}`)
  }
  if (typeof document?.['jwks_uri'] !== 'string') {
    throw new RelayError('ERR_JWKS_UNAVAILABLE', `the discovery document ${url} has no jwks_uri`)
  }
  return document['jwks_uri']
}

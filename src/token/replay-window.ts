/** The token rules that decide how long a token can be accepted: LOGOUT_TOKEN_MAX_AGE and CLOCK_TOLERANCE. */
export interface TokenAgeRules {
  maxAgeSeconds: number
  clockToleranceSeconds: number
}

/**
 * How long, from `nowMs`, the `jti` of a token issued at `iat` must be remembered to refuse its replay
 * (OIDC BCL §2.6 step 6): as long as the same token could still pass the age check on any replica.
 *
 * The age check accepts a token while `floor(now) − iat − tolerance ≤ maxAge` by the checking
 * replica's clock — up to one second past `iat + maxAge + tolerance`, since `now` is counted in whole
 * seconds. Every replica's clock may be a tolerance off the issuer's, so two replicas may be two
 * tolerances apart: measured by this replica's clock, another one may accept the token until
 * `iat + maxAge + 3 × tolerance + 1`. The window is computed from the token's own `iat`, not from its
 * arrival: a token issued a tolerance ahead of this clock is accepted for that much longer.
 */
export function replayWindowSeconds (iat: number, nowMs: number, rules: TokenAgeRules): number {
  const acceptedUntil = iat + rules.maxAgeSeconds + 3 * rules.clockToleranceSeconds + 1
  return Math.max(1, Math.ceil(acceptedUntil - nowMs / 1000))
}

/**
 * The longest window {@link replayWindowSeconds} gives any token that passes the age check (whose
 * `iat` is at most a tolerance ahead): for what must be remembered as long as any token of one logout.
 */
export function longestReplayWindowSeconds (rules: TokenAgeRules): number {
  return rules.maxAgeSeconds + 4 * rules.clockToleranceSeconds + 1
}

/**
 * What a failed revocation tells the worker, so that the worker decides without knowing which client
 * failed or how (the idea of BullMQ's `UnrecoverableError`):
 *
 * - `transient`: no answer, a timeout, 5xx, 429 — retrying cures it by itself; retried with backoff.
 * - `refused`: an answer that retrying will not change (401, 403, an unexpected status): a
 *   misconfiguration; retried with backoff all the same, so that a fixed configuration lets it through,
 *   and logged as an error.
 * - `held`: the admin API it must go to is not proven to be one (a wrong URL): the job waits in the
 *   queue, its attempt not counted, never dead-lettered for it, until the URL is right.
 */
export type FailureKind = 'transient' | 'refused' | 'held'

export class RevocationFailure extends Error {
  readonly code = 'ERR_REVOCATION_FAILED'

  /** For `held`: how long the job waits before it is looked at again. */
  readonly retryInMs: number | undefined

  constructor (
    readonly kind: FailureKind,
    message: string,
    /** The upstream's HTTP status, when it answered. */
    readonly status?: number,
    options: { cause?: unknown, retryInMs?: number } = {}
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'RevocationFailure'
    this.retryInMs = options.retryInMs
  }
}

export function isRevocationFailure (err: unknown): err is RevocationFailure {
  return err instanceof RevocationFailure
}

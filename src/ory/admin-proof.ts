import type { Logger } from 'pino'
import type { Clock } from '../clock.js'

export type AdminService = 'kratos' | 'hydra'

/**
 * Whether an admin URL is the admin API it should be:
 *
 * - `proven`: an admin route that must exist answered 200 with JSON of the shape Ory documents;
 * - `unreachable`: no answer, or one that says nothing about the URL (5xx, 429, 408) — the calls
 *   themselves will fail and be retried as usual;
 * - `wrong`: an answer that no admin API gives there (404 for a route that must exist, HTML, a
 *   redirect, 401/403): a misconfigured URL or token. Revocations wait while it is wrong, because a
 *   404 from a route that does not exist would otherwise read as "nothing left to revoke".
 */
export type AdminApiProof =
  | { state: 'proven' }
  | { state: 'unreachable', reason: string }
  | { state: 'wrong', reason: string, fix: string }

/** What an admin URL answered to the proof request (or to any admin call). */
export interface ProofAnswer {
  status: number
  contentType: string | undefined
  body: string
  /** The `Location` of a redirect. */
  location?: string | undefined
}

/**
 * The admin route of each service whose answer proves the URL (GET, relative to the admin URL): it
 * exists on the admin port only, lists at most one item, and answers 200 with a JSON array (Kratos
 * `listIdentities`, Hydra `listOAuth2Clients`).
 */
export const PROOF_REQUESTS: Record<AdminService, { path: string, variable: string, tokenVariable: string, what: string, port: string }> = {
  kratos: { path: '/admin/identities?page_size=1', variable: 'KRATOS_ADMIN_URL', tokenVariable: 'KRATOS_ADMIN_TOKEN', what: "Kratos' admin API", port: '4434' },
  hydra: { path: '/admin/clients?page_size=1', variable: 'HYDRA_ADMIN_URL', tokenVariable: 'HYDRA_ADMIN_TOKEN', what: "Hydra's admin API", port: '4445' }
}

/** Judges the answer to a {@link PROOF_REQUESTS} request made against `adminUrl`. */
export function judgeProofAnswer (service: AdminService, adminUrl: string, answer: ProofAnswer): AdminApiProof {
  const { path, variable, tokenVariable, what, port } = PROOF_REQUESTS[service]
  const route = `GET ${path.split('?')[0] ?? path}`
  const { status } = answer
  if (status >= 500 || status === 429 || status === 408) return { state: 'unreachable', reason: `${route} answered ${status}` }
  if (status === 200) {
    if (isJsonArray(answer)) return { state: 'proven' }
    return {
      state: 'wrong',
      reason: `${route} answered 200 but not with the JSON list ${what} gives: this URL serves something else`,
      fix: `set ${variable} to ${what} itself (port ${port} by default), not a UI, a proxy's page or the public port`
    }
  }
  if (status === 404) {
    const prefix = new URL(adminUrl).pathname.replace(/\/+$/, '')
    return {
      state: 'wrong',
      reason: `${route} answered 404: this URL has no ${what} (the public port, or a path prefix too many)`,
      fix: prefix !== ''
        ? `remove the path "${prefix}" from ${variable}: it is the base URL, e.g. http://kratos:${port}, and the relay adds /admin/… itself`
        : `set ${variable} to ${what}'s port (${port} by default), not the public port`
    }
  }
  if (status === 401 || status === 403) {
    return { state: 'wrong', reason: `${route} answered ${status}: ${what} refuses the relay`, fix: `check ${tokenVariable} (and that ${variable} is the admin API)` }
  }
  if (status >= 300 && status < 400) {
    // Kratos' public port redirects /admin/ requests to the admin port's base URL.
    const to = answer.location === undefined ? '' : ` to ${answer.location.replace(/\?.*$/, '')}`
    return {
      state: 'wrong',
      reason: `${route} answered ${status}, a redirect${to}: this is not ${what} (Kratos' public port answers so), and the relay follows no redirect`,
      fix: `set ${variable} to ${what} itself (port ${port} by default)`
    }
  }
  return { state: 'wrong', reason: `${route} answered ${status}`, fix: `check ${variable} and ${tokenVariable}` }
}

function isJsonArray (answer: ProofAnswer): boolean {
  if (answer.contentType?.toLowerCase().includes('json') !== true) return false
  try {
    return Array.isArray(JSON.parse(answer.body))
  } catch {
    return false
  }
}

/**
 * Whether a 404 from an admin operation is Ory's own answer — its JSON error, `{"error": {"code":
 * 404, …}}` — rather than a router's for a route that does not exist (Go's plain "404 page not
 * found", a proxy's page): only the former means "nothing there".
 */
export function isOryNotFound (answer: ProofAnswer): boolean {
  if (answer.status !== 404 || answer.contentType?.toLowerCase().includes('json') !== true) return false
  try {
    const body = JSON.parse(answer.body) as { error?: { code?: unknown } }
    return typeof body.error === 'object' && body.error !== null && body.error.code === 404
  } catch {
    return false
  }
}

export interface AdminApiGuardOptions {
  service: AdminService
  adminUrl: string
  /** Sends the service's proof request; rejects when no answer came. */
  probe: () => Promise<ProofAnswer>
  log: Logger
  /** Re-proves this often while the proof holds (default 5 minutes). */
  provenIntervalMs?: number
  /** Re-proves this often while it fails (default 10 s). */
  failingIntervalMs?: number
  /** A wrong URL is logged again this often while it stays wrong (default 5 minutes). */
  repeatLogMs?: number
  clock?: Clock
  onChange?: (proof: AdminApiProof) => void
}

/**
 * Proves, at startup and again while the relay runs, that an admin URL answers the admin API itself,
 * and tells the revocations whether they may go there. A wrong URL is said in an error log (again
 * every few minutes while it lasts) and through `onChange` (a metric); a call whose answer
 * contradicts the proof (`suspect()`) makes it prove again at once.
 */
export class AdminApiGuard {
  readonly #options: Required<Omit<AdminApiGuardOptions, 'onChange'>> & Pick<AdminApiGuardOptions, 'onChange'>
  #proof: AdminApiProof | undefined
  #proving: Promise<AdminApiProof> | undefined
  #timer: NodeJS.Timeout | undefined
  #loggedWrongAt = Number.NEGATIVE_INFINITY
  #stopped = false

  constructor (options: AdminApiGuardOptions) {
    this.#options = { provenIntervalMs: 300_000, failingIntervalMs: 10_000, repeatLogMs: 300_000, clock: Date.now, ...options }
  }

  /** Proves now, and then on schedule until `stop()`. */
  start (): void {
    this.#stopped = false
    this.prove().catch(() => {})
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  /** The latest proof; the first call waits for the first one. */
  async current (): Promise<AdminApiProof> {
    return this.#proof ?? await this.prove()
  }

  /** The latest proof, or undefined before the first one: for a caller that needs no promise when it has one. */
  get latest (): AdminApiProof | undefined {
    return this.#proof
  }

  /** How long a revocation held by a wrong URL waits before it is looked at again. */
  get holdMs (): number {
    return this.#options.failingIntervalMs
  }

  /** An answer contradicted the proof (a 404 that is not Ory's): prove again now. */
  suspect (): void {
    if (this.#proof?.state === 'proven') this.prove().catch(() => {})
  }

  /** Proves the URL once (calls at the same time share one request). */
  async prove (): Promise<AdminApiProof> {
    this.#proving ??= this.#proveOnce().finally(() => { this.#proving = undefined })
    return await this.#proving
  }

  async #proveOnce (): Promise<AdminApiProof> {
    const { service, adminUrl, probe } = this.#options
    let proof: AdminApiProof
    try {
      proof = judgeProofAnswer(service, adminUrl, await probe())
    } catch (err) {
      proof = { state: 'unreachable', reason: `no answer (${(err as Error).message})` }
    }
    this.#settle(proof)
    return proof
  }

  #settle (proof: AdminApiProof): void {
    const { service, log, clock } = this.#options
    const previous = this.#proof
    this.#proof = proof
    const variable = PROOF_REQUESTS[service].variable
    if (proof.state === 'wrong') {
      if (previous?.state !== 'wrong' || clock() - this.#loggedWrongAt >= this.#options.repeatLogMs) {
        this.#loggedWrongAt = clock()
        log.error({ service, reason: proof.reason, fix: proof.fix },
          `${variable} is not ${PROOF_REQUESTS[service].what}: revocations there wait in the queue until it is fixed`)
      }
    } else if (previous?.state === 'wrong' && proof.state === 'proven') {
      log.info({ service }, `${variable} answers ${PROOF_REQUESTS[service].what} again: the waiting revocations go ahead`)
    }
    if (previous?.state !== proof.state) this.#options.onChange?.(proof)
    if (!this.#stopped) {
      clearTimeout(this.#timer)
      this.#timer = setTimeout(() => { this.prove().catch(() => {}) }, proof.state === 'proven' ? this.#options.provenIntervalMs : this.#options.failingIntervalMs)
      this.#timer.unref()
    }
  }
}

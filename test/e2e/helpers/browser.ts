/**
 * How long one request may take. Long, for one reason: Kratos checks a new password against Have I
 * Been Pwned with a retrying client, and without internet access a registration waits out its
 * retries (1 + 2 + 4 + 8 s) before it ignores the network error and goes on.
 */
const REQUEST_TIMEOUT_MS = 60_000

/** One cookie as RFC 6265 §5.3 stores it (the parts a loopback test needs). */
interface StoredCookie {
  name: string
  value: string
  domain: string
  /** No Domain attribute: sent to exactly this host. */
  hostOnly: boolean
  path: string
  /** Milliseconds since the epoch; undefined for a session cookie. */
  expires: number | undefined
  secure: boolean
}

/** The default path of a cookie set without Path (RFC 6265 §5.1.4): the request path's directory. */
function defaultPath (url: URL): string {
  const path = url.pathname
  if (!path.startsWith('/') || path.lastIndexOf('/') === 0) return '/'
  return path.slice(0, path.lastIndexOf('/'))
}

function pathMatches (requestPath: string, cookiePath: string): boolean {
  if (requestPath === cookiePath) return true
  if (!requestPath.startsWith(cookiePath)) return false
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'
}

function domainMatches (host: string, cookie: StoredCookie): boolean {
  if (cookie.hostOnly) return host === cookie.domain
  return host === cookie.domain || host.endsWith(`.${cookie.domain}`)
}

/** Browsers treat loopback origins as secure contexts: they send Secure cookies there over http. */
function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/**
 * A cookie jar that behaves as a browser's does for the flows of this suite: cookies are keyed by
 * host, not port (Hydra and Kratos on 127.0.0.1 share one jar, as in a browser), with Domain, Path,
 * Max-Age and Expires honoured.
 */
export class CookieJar {
  readonly #cookies: StoredCookie[] = []

  /** Stores the `Set-Cookie` header fields of a response to `url`. */
  store (url: URL, setCookies: string[], now = Date.now()): void {
    for (const header of setCookies) {
      const [pair = '', ...attributes] = header.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const cookie: StoredCookie = {
        name: pair.slice(0, eq).trim(),
        value: pair.slice(eq + 1).trim(),
        domain: url.hostname,
        hostOnly: true,
        path: defaultPath(url),
        expires: undefined,
        secure: false
      }
      let maxAge: number | undefined
      for (const attribute of attributes) {
        const [rawName = '', ...rest] = attribute.split('=')
        const name = rawName.trim().toLowerCase()
        const value = rest.join('=').trim()
        if (name === 'domain' && value !== '') {
          cookie.domain = value.replace(/^\./, '').toLowerCase()
          cookie.hostOnly = false
        } else if (name === 'path' && value.startsWith('/')) {
          cookie.path = value
        } else if (name === 'max-age' && /^-?\d+$/.test(value)) {
          maxAge = Number(value)
        } else if (name === 'expires') {
          const date = Date.parse(value)
          if (!Number.isNaN(date)) cookie.expires = date
        } else if (name === 'secure') {
          cookie.secure = true
        }
      }
      if (maxAge !== undefined) cookie.expires = maxAge <= 0 ? 0 : now + maxAge * 1000
      // A cookie for another domain is refused (RFC 6265 §5.3 step 6).
      if (!cookie.hostOnly && !domainMatches(url.hostname, { ...cookie, hostOnly: false })) continue
      const existing = this.#cookies.findIndex((c) => c.name === cookie.name && c.domain === cookie.domain && c.path === cookie.path)
      if (existing !== -1) this.#cookies.splice(existing, 1)
      if (cookie.expires === undefined || cookie.expires > now) this.#cookies.push(cookie)
    }
  }

  /** The `Cookie` header for a request to `url`, or undefined when no cookie applies. */
  header (url: URL, now = Date.now()): string | undefined {
    const secure = url.protocol === 'https:' || isLoopback(url.hostname)
    const matching = this.#cookies
      .filter((c) => (c.expires === undefined || c.expires > now) && domainMatches(url.hostname, c) &&
        pathMatches(url.pathname, c.path) && (!c.secure || secure))
      // Longer paths first (RFC 6265 §5.4 step 2).
      .sort((a, b) => b.path.length - a.path.length)
    return matching.length === 0 ? undefined : matching.map((c) => `${c.name}=${c.value}`).join('; ')
  }

  /** The names of the cookies held for a host, for assertions and failure messages. */
  names (host: string): string[] {
    return this.#cookies.filter((c) => domainMatches(host, c)).map((c) => c.name)
  }

  /** Forgets every cookie whose name matches, as a user clearing a site's cookies would. */
  clear (match: (name: string) => boolean): void {
    for (let i = this.#cookies.length - 1; i >= 0; i--) {
      if (match(this.#cookies[i]?.name ?? '')) this.#cookies.splice(i, 1)
    }
  }
}

export interface BrowserResponse {
  url: URL
  status: number
  headers: Headers
  /** The redirect target, resolved against the request URL; undefined when there is none. */
  location: URL | undefined
  text: string
}

/** A request as a browser would send it; `form` is sent as application/x-www-form-urlencoded. */
export interface BrowserRequest {
  method?: string
  form?: Record<string, string>
  json?: unknown
  headers?: Record<string, string>
}

/**
 * A browser without a browser: Node's fetch with `redirect: 'manual'` and a {@link CookieJar}, so that
 * every hop of a redirect chain is seen and can be stopped at (the login and consent UI this suite
 * plays itself).
 */
export class Browser {
  readonly jar = new CookieJar()
  /** Every request made, as `METHOD url → status`, for failure messages. */
  readonly history: string[] = []

  async request (target: string | URL, options: BrowserRequest = {}): Promise<BrowserResponse> {
    const url = new URL(target)
    const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml', ...options.headers }
    const cookie = this.jar.header(url)
    if (cookie !== undefined) headers['cookie'] = cookie
    let body: string | undefined
    if (options.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(options.form).toString()
    } else if (options.json !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(options.json)
    }
    const method = options.method ?? (body !== undefined ? 'POST' : 'GET')
    const response = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}), redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
    this.jar.store(url, response.headers.getSetCookie())
    const text = await response.text()
    const raw = response.headers.get('location')
    this.history.push(`${method} ${url.href} → ${response.status}${raw !== null ? ` → ${raw}` : ''}`)
    return { url, status: response.status, headers: response.headers, location: raw !== null ? new URL(raw, url) : undefined, text }
  }

  /** GETs `start` and follows redirects while `follow(next)` holds; returns the first location it does not follow. */
  async followUntil (start: string | URL, stopAt: (location: URL) => boolean, maxHops = 10): Promise<URL> {
    let next = new URL(start)
    for (let hop = 0; hop < maxHops; hop++) {
      const response = await this.request(next)
      if (response.location === undefined || response.status < 300 || response.status > 399) {
        throw new Error(`expected a redirect from ${next.href}, got ${response.status}: ${response.text.slice(0, 500)}\n${this.trail()}`)
      }
      if (stopAt(response.location)) return response.location
      next = response.location
    }
    throw new Error(`more than ${maxHops} redirects from ${String(start)}\n${this.trail()}`)
  }

  /** The last requests, for failure messages. */
  trail (count = 12): string {
    return `requests:\n  ${this.history.slice(-count).join('\n  ')}`
  }
}

/** An answer read off the wire: its status, its body, and whether the connection may carry another request. */
export interface Http1Response {
  status: number
  body: Buffer
  keepAlive: boolean
}

/** The response broke HTTP/1.1 (RFC 9112), or went past a limit: the connection cannot be trusted further. */
export class ResponseError extends Error {
  readonly code: 'EPROTO' | 'ERESPONSETOOLARGE'
  constructor (code: 'EPROTO' | 'ERESPONSETOOLARGE', message: string) {
    super(message)
    this.name = 'ResponseError'
    this.code = code
  }
}

export interface ResponseLimits {
  /** Bytes of status line and header fields (and of a chunked body's trailers). */
  maxHeadBytes: number
  maxBodyBytes: number
}

type Framing =
  | { kind: 'length', remaining: number }
  | { kind: 'chunked', state: 'size' | 'data' | 'data-end' | 'trailers', remaining: number }
  | { kind: 'until-close' }

const CRLF = Buffer.from('\r\n')
const HEAD_END = Buffer.from('\r\n\r\n')
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\r\n]*)?$/
const FIELD = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,8})[ \t]*(?:;.*)?$/

/**
 * Reads one HTTP/1.1 response (RFC 9112) from the bytes of a connection, as they come: interim 1xx
 * answers are skipped, and the body is framed by Content-Length, chunked Transfer-Encoding, or the
 * connection's end (§6.3). Strict where leniency lets a response smuggle another: a Content-Length
 * that is not one number, both Content-Length and Transfer-Encoding, folded header lines and bare
 * line feeds are errors. Trailer fields are read and ignored.
 */
export class ResponseParser {
  readonly #limits: ResponseLimits
  readonly #expectBody: boolean
  #buffered: Buffer = Buffer.alloc(0)
  #head: { status: number, keepAlive: boolean } | undefined
  #framing: Framing | undefined
  #body: Buffer[] = []
  #bodyBytes = 0
  #trailerBytes = 0

  /** `expectBody` false: the answer to a HEAD request, which has none whatever its fields say. */
  constructor (limits: ResponseLimits, expectBody = true) {
    this.#limits = limits
    this.#expectBody = expectBody
  }

  /** Whether any byte of the response has arrived. */
  get started (): boolean {
    return this.#head !== undefined || this.#buffered.length > 0
  }

  /**
   * Takes the next bytes; returns the response once it is complete. Bytes after its end are an
   * error: a client that sends one request at a time is owed nothing more.
   */
  push (chunk: Buffer): Http1Response | undefined {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk])
    while (this.#head === undefined) {
      if (!this.#readHead()) return undefined
    }
    const response = this.#readBody()
    if (response !== undefined && this.#buffered.length > 0) {
      throw new ResponseError('EPROTO', 'bytes after the end of the response')
    }
    return response
  }

  /** The connection ended: the response, when its body runs to the end; an error when it is cut short. */
  end (): Http1Response {
    if (this.#framing?.kind === 'until-close') return this.#complete(false)
    throw new ResponseError('EPROTO', 'the connection ended before the response did')
  }

  /** Reads a head once it has fully arrived; false while it has not. */
  #readHead (): boolean {
    const end = this.#buffered.indexOf(HEAD_END)
    if (end === -1) {
      if (this.#buffered.length > this.#limits.maxHeadBytes) throw new ResponseError('ERESPONSETOOLARGE', 'the response head is too large')
      return false
    }
    if (end > this.#limits.maxHeadBytes) throw new ResponseError('ERESPONSETOOLARGE', 'the response head is too large')
    const lines = this.#buffered.toString('latin1', 0, end).split('\r\n')
    this.#buffered = this.#buffered.subarray(end + HEAD_END.length)

    const statusLine = STATUS_LINE.exec(lines[0] ?? '')
    if (statusLine === null) throw new ResponseError('EPROTO', 'no HTTP/1.x status line')
    const minor = statusLine[1]
    const status = Number(statusLine[2])
    let contentLength: number | undefined
    let transferEncoding: string[] | undefined
    const connection: string[] = []
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? ''
      const field = FIELD.exec(line)
      if (field === null) throw new ResponseError('EPROTO', 'a malformed header field')
      const name = (field[1] ?? '').toLowerCase()
      const value = field[2] ?? ''
      if (name === 'content-length') {
        for (const item of value.split(',')) {
          const length = /^\s*(\d{1,15})\s*$/.exec(item)?.[1]
          if (length === undefined || (contentLength !== undefined && Number(length) !== contentLength)) {
            throw new ResponseError('EPROTO', 'an invalid Content-Length')
          }
          contentLength = Number(length)
        }
      } else if (name === 'transfer-encoding') {
        transferEncoding = [...(transferEncoding ?? []), ...tokens(value)]
      } else if (name === 'connection') {
        connection.push(...tokens(value))
      }
    }

    if (status === 101) throw new ResponseError('EPROTO', 'an upgrade was not asked for')
    // An interim answer (100 Continue, 103 Early Hints): the final one follows.
    if (status < 200) return true

    if (transferEncoding !== undefined && contentLength !== undefined) {
      throw new ResponseError('EPROTO', 'both Transfer-Encoding and Content-Length')
    }
    const keepAlive = minor === '1' ? !connection.includes('close') : connection.includes('keep-alive')
    this.#head = { status, keepAlive }
    if (!this.#expectBody || status === 204 || status === 304) {
      this.#framing = { kind: 'length', remaining: 0 }
    } else if (transferEncoding !== undefined) {
      this.#framing = transferEncoding.at(-1) === 'chunked'
        ? { kind: 'chunked', state: 'size', remaining: 0 }
        : { kind: 'until-close' }
    } else if (contentLength !== undefined) {
      if (contentLength > this.#limits.maxBodyBytes) throw new ResponseError('ERESPONSETOOLARGE', 'the response body is too large')
      this.#framing = { kind: 'length', remaining: contentLength }
    } else {
      this.#framing = { kind: 'until-close' }
    }
    return true
  }

  #readBody (): Http1Response | undefined {
    const framing = this.#framing
    if (framing === undefined) return undefined
    switch (framing.kind) {
      case 'length': {
        const taken = this.#take(framing.remaining)
        framing.remaining -= taken
        return framing.remaining === 0 ? this.#complete(this.#head?.keepAlive ?? false) : undefined
      }
      case 'until-close':
        this.#take(this.#buffered.length)
        return undefined
      case 'chunked':
        return this.#readChunks(framing)
    }
  }

  /** RFC 9112 §7.1: size line, data, CRLF, …, a zero size, trailer fields, an empty line. */
  #readChunks (framing: Extract<Framing, { kind: 'chunked' }>): Http1Response | undefined {
    for (;;) {
      if (framing.state === 'data') {
        framing.remaining -= this.#take(framing.remaining)
        if (framing.remaining > 0) return undefined
        framing.state = 'data-end'
      }
      const lineEnd = this.#buffered.indexOf(CRLF)
      if (lineEnd === -1) {
        if (this.#buffered.length > this.#limits.maxHeadBytes) throw new ResponseError('ERESPONSETOOLARGE', 'a chunk line is too long')
        return undefined
      }
      const line = this.#buffered.toString('latin1', 0, lineEnd)
      this.#buffered = this.#buffered.subarray(lineEnd + CRLF.length)
      switch (framing.state) {
        case 'data-end':
          if (line !== '') throw new ResponseError('EPROTO', 'a chunk runs past its size')
          framing.state = 'size'
          break
        case 'size': {
          const size = CHUNK_SIZE.exec(line)?.[1]
          if (size === undefined) throw new ResponseError('EPROTO', 'an invalid chunk size')
          framing.remaining = Number.parseInt(size, 16)
          if (this.#bodyBytes + framing.remaining > this.#limits.maxBodyBytes) throw new ResponseError('ERESPONSETOOLARGE', 'the response body is too large')
          framing.state = framing.remaining === 0 ? 'trailers' : 'data'
          break
        }
        case 'trailers':
          if (line === '') return this.#complete(this.#head?.keepAlive ?? false)
          this.#trailerBytes += line.length
          if (this.#trailerBytes > this.#limits.maxHeadBytes) throw new ResponseError('ERESPONSETOOLARGE', 'the trailer fields are too large')
          if (!FIELD.test(line)) throw new ResponseError('EPROTO', 'a malformed trailer field')
          break
      }
    }
  }

  /** Moves up to `count` buffered bytes into the body. */
  #take (count: number): number {
    const taken = Math.min(count, this.#buffered.length)
    if (taken === 0) return 0
    this.#bodyBytes += taken
    if (this.#bodyBytes > this.#limits.maxBodyBytes) throw new ResponseError('ERESPONSETOOLARGE', 'the response body is too large')
    this.#body.push(this.#buffered.subarray(0, taken))
    this.#buffered = this.#buffered.subarray(taken)
    return taken
  }

  #complete (keepAlive: boolean): Http1Response {
    const body = this.#body.length === 1 ? this.#body[0] as Buffer : Buffer.concat(this.#body)
    return { status: this.#head?.status ?? 0, body, keepAlive }
  }
}

/** The comma-separated, case-insensitive tokens of a field value. */
function tokens (value: string): string[] {
  return value.split(',').map((token) => token.trim().toLowerCase()).filter((token) => token !== '')
}

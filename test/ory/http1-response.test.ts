import fc from 'fast-check'
import t, { type Test } from 'tap'
import { ResponseError, ResponseParser, type Http1Response, type ResponseLimits } from '../../src/ory/http1-response.js'

const LIMITS: ResponseLimits = { maxHeadBytes: 1024, maxBodyBytes: 4096 }

/** Feeds `wire` in the given pieces; the response, or the error's code. */
function parse (pieces: Array<string | Buffer>, options: { limits?: ResponseLimits, expectBody?: boolean, ended?: boolean } = {}): Http1Response | string {
  const parser = new ResponseParser(options.limits ?? LIMITS, options.expectBody ?? true)
  try {
    for (const [i, piece] of pieces.entries()) {
      const response = parser.push(Buffer.isBuffer(piece) ? piece : Buffer.from(piece, 'latin1'))
      if (response !== undefined) return i === pieces.length - 1 ? response : 'answered before the last piece'
    }
    return options.ended === true ? parser.end() : 'incomplete'
  } catch (err) {
    if (err instanceof ResponseError) return err.code
    throw err
  }
}

/** Every way of cutting `wire` in two, and byte by byte: each must read as the whole does. */
function everySplit (t: Test, wire: string, expected: { status: number, body: string, keepAlive: boolean }, options: { ended?: boolean } = {}): void {
  const cuts: string[][] = [[wire], wire.split('')]
  for (let at = 1; at < wire.length; at++) cuts.push([wire.slice(0, at), wire.slice(at)])
  let same = 0
  for (const pieces of cuts) {
    const response = parse(pieces, options)
    if (typeof response !== 'string' && response.status === expected.status && response.body.toString('latin1') === expected.body && response.keepAlive === expected.keepAlive) same++
    else t.fail(`split ${JSON.stringify(pieces.map((piece) => piece.length))}: ${JSON.stringify(response)}`)
  }
  t.equal(same, cuts.length, `${cuts.length} ways of arriving, one response`)
}

const ANSWER_204 = 'HTTP/1.1 204 No Content\r\nDate: Wed, 02 Dec 2026 04:44:14 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n'

t.test('a 204, as Kratos answers a revocation', async (t) => {
  everySplit(t, ANSWER_204, { status: 204, body: '', keepAlive: true })
})

t.test('a Content-Length body', async (t) => {
  const body = '{"error":{"code":404,"status":"Not Found"}}'
  everySplit(t, `HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    { status: 404, body, keepAlive: true })
  everySplit(t, 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', { status: 200, body: '', keepAlive: true })
  everySplit(t, 'HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\nContent-Length: 3\r\n\r\nabc', { status: 200, body: 'abc', keepAlive: true })
})

t.test('a chunked body, with extensions and trailer fields', async (t) => {
  everySplit(t, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n,\r\nA \r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n',
    { status: 200, body: 'hello,0123456789', keepAlive: true })
  everySplit(t, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n0\r\n\r\n', { status: 200, body: '', keepAlive: true })
})

t.test('interim 1xx answers are skipped', async (t) => {
  everySplit(t, `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n${ANSWER_204}`, { status: 204, body: '', keepAlive: true })
  t.equal(parse(['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n']), 'EPROTO', 'an upgrade nobody asked for')
})

t.test('a body that runs to the end of the connection', async (t) => {
  everySplit(t, 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end', { status: 200, body: 'until the end', keepAlive: false }, { ended: true })
  everySplit(t, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw', { status: 200, body: 'raw', keepAlive: false }, { ended: true })
  t.equal(parse(['HTTP/1.1 200 OK\r\n\r\nab']), 'incomplete', 'not complete before the end')
})

t.test('whether the connection may be reused', async (t) => {
  const keepAlive = (wire: string): boolean | string => {
    const response = parse([wire])
    return typeof response === 'string' ? response : response.keepAlive
  }
  t.equal(keepAlive('HTTP/1.1 204 No Content\r\n\r\n'), true, 'HTTP/1.1: by default')
  t.equal(keepAlive('HTTP/1.1 204 No Content\r\nConnection: Close\r\n\r\n'), false)
  t.equal(keepAlive('HTTP/1.1 204 No Content\r\nConnection: upgrade, close\r\n\r\n'), false)
  t.equal(keepAlive('HTTP/1.0 204 No Content\r\n\r\n'), false, 'HTTP/1.0: only when asked')
  t.equal(keepAlive('HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n'), true)
  t.equal(keepAlive('HTTP/1.1 204 \r\n\r\n'), true, 'an empty reason phrase')
  t.equal(keepAlive('HTTP/1.1 204\r\n\r\n'), true, 'no reason phrase at all')
})

t.test('no body where none can be: 204, 304, and the answer to HEAD', async (t) => {
  const response = parse(['HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n'])
  t.equal(typeof response !== 'string' && response.body.length, 0)
  const head = parse(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'], { expectBody: false })
  t.same(typeof head !== 'string' && [head.status, head.body.length], [200, 0])
  t.equal(parse(['HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n']), 'EPROTO', 'a second response nobody asked for')
})

t.test('malformed responses are errors, not guesses', async (t) => {
  const cases: Array<[string, string]> = [
    ['ICY 200 OK\r\n\r\n', 'not HTTP'],
    ['HTTP/2 200\r\n\r\n', 'not HTTP/1.x'],
    ['HTTP/1.1 20 OK\r\n\r\n', 'a two-digit status'],
    ['HTTP/1.1 099 Odd\r\n\r\n', 'a status below 100'],
    ['HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n\r\n', 'an obsolete line folding'],
    ['HTTP/1.1 200 OK\r\nNo colon\r\n\r\n', 'a field without a colon'],
    ['HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n', 'a space in a field name'],
    ['HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n', 'a bare line feed'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 'two different lengths'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd', 'a list of different lengths'],
    ['HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n', 'a negative length'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n', 'a length that is no decimal number'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'both framings: a smuggling attempt'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'a chunk size that is not hex'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', 'a chunk longer than its size'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nno colon\r\n\r\n', 'a malformed trailer field'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab', 'bytes after the body']
  ]
  for (const [wire, what] of cases) t.equal(parse([wire]), 'EPROTO', what)
})

t.test('limits: head, body and chunk lines', async (t) => {
  const limits = { maxHeadBytes: 64, maxBodyBytes: 16 }
  t.equal(parse([`HTTP/1.1 200 OK\r\nX-Long: ${'a'.repeat(100)}\r\n\r\n`], { limits }), 'ERESPONSETOOLARGE', 'a head too large, complete')
  t.equal(parse([`HTTP/1.1 200 OK\r\nX-Long: ${'a'.repeat(100)}`], { limits }), 'ERESPONSETOOLARGE', 'a head too large, still arriving')
  t.equal(parse(['HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n'], { limits }), 'ERESPONSETOOLARGE', 'a declared length over the limit, before its body')
  const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
  t.equal(parse([`${chunked}10\r\n${'a'.repeat(16)}\r\n1\r\n`], { limits }), 'ERESPONSETOOLARGE', 'chunks that add up past the limit')
  t.equal(parse([`${chunked}1${' '.repeat(80)}`], { limits }), 'ERESPONSETOOLARGE', 'a chunk line without end')
  t.equal(parse([`${chunked}0\r\nX: ${'a'.repeat(80)}\r\n\r\n`], { limits }), 'ERESPONSETOOLARGE', 'trailer fields too large')
  t.equal(parse(['HTTP/1.1 200 OK\r\n\r\n', 'a'.repeat(17)], { limits }), 'ERESPONSETOOLARGE', 'a body to the end that goes past the limit')
  const atLimit = parse(['HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n', 'a'.repeat(16)], { limits })
  t.equal(typeof atLimit !== 'string' && atLimit.body.length, 16, 'a body exactly at the limit')
})

t.test('a connection that ends early', async (t) => {
  t.equal(parse(['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab'], { ended: true }), 'EPROTO', 'in the body')
  t.equal(parse(['HTTP/1.1 200 OK\r\nContent-'], { ended: true }), 'EPROTO', 'in the head')
  t.equal(parse([], { ended: true }), 'EPROTO', 'before anything')
  t.equal(parse(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'], { ended: true }), 'EPROTO', 'in a chunk')
  t.notOk(new ResponseParser(LIMITS).started, 'nothing has started before a byte')
})

t.test('any body, framed either way, cut anywhere, reads back whole', async (t) => {
  const framed = fc.record({
    status: fc.integer({ min: 200, max: 599 }).filter((status) => status !== 204 && status !== 304),
    body: fc.uint8Array({ maxLength: 600 }),
    chunked: fc.boolean(),
    chunkSizes: fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
    cuts: fc.array(fc.nat(), { maxLength: 6 })
  })
  fc.assert(fc.property(framed, ({ status, body, chunked, chunkSizes, cuts }) => {
    const bytes = Buffer.from(body)
    let wire: Buffer
    if (chunked) {
      const parts: Buffer[] = [Buffer.from(`HTTP/1.1 ${status} X\r\nTransfer-Encoding: chunked\r\n\r\n`)]
      for (let at = 0, i = 0; at < bytes.length; i++) {
        const size = Math.min(chunkSizes[i % chunkSizes.length] ?? 1, bytes.length - at)
        parts.push(Buffer.from(`${size.toString(16)}\r\n`), bytes.subarray(at, at + size), Buffer.from('\r\n'))
        at += size
      }
      wire = Buffer.concat([...parts, Buffer.from('0\r\n\r\n')])
    } else {
      wire = Buffer.concat([Buffer.from(`HTTP/1.1 ${status} X\r\nContent-Length: ${bytes.length}\r\n\r\n`), bytes])
    }
    const points = [...new Set(cuts.map((cut) => cut % (wire.length + 1)))].sort((a, b) => a - b)
    const pieces = [0, ...points].map((from, i) => wire.subarray(from, points[i] ?? wire.length)).filter((piece) => piece.length > 0)
    const response = parse(pieces)
    return typeof response !== 'string' && response.status === status && response.body.equals(bytes) && response.keepAlive
  }), { numRuns: 500 })
  t.pass('500 random responses')
})

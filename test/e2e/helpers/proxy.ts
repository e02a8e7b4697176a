import { createServer, request, type Server } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

/** One request that went through the proxy: when it arrived and when its answer was complete. */
export interface ProxiedCall {
  method: string
  path: string
  status: number | undefined
  /** The request's body as text, complete once the request has ended (a logout token's form). */
  body: string
  /** Milliseconds since the epoch (fractions from the monotonic clock, for ordering). */
  startedAt: number
  finishedAt: number | undefined
}

/**
 * A transparent HTTP proxy in front of one server (Hydra's admin API, or the relay's back-channel
 * logout endpoint as Hydra calls it): every request is passed on as it is, and recorded with its body,
 * its answer's status and the times it arrived and was answered, so that a test can tell in which
 * order a client made its calls, and what it sent.
 */
export class RecordingProxy {
  readonly calls: ProxiedCall[] = []
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  origin = ''

  private constructor (target: string) {
    const upstream = new URL(target)
    const origin = performance.timeOrigin
    this.#server = createServer((req, res) => {
      const call: ProxiedCall = { method: req.method ?? '', path: req.url ?? '', status: undefined, body: '', startedAt: origin + performance.now(), finishedAt: undefined }
      this.calls.push(call)
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      req.on('end', () => { call.body = Buffer.concat(chunks).toString('utf8') })
      const forwarded = request({
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host }
      }, (answer) => {
        call.status = answer.statusCode
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
        answer.on('end', () => { call.finishedAt = origin + performance.now() })
      })
      forwarded.on('error', () => { res.destroy() })
      req.pipe(forwarded)
    })
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
  }

  static async start (target: string): Promise<RecordingProxy> {
    const proxy = new RecordingProxy(target)
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve))
    proxy.origin = `http://127.0.0.1:${(proxy.#server.address() as AddressInfo).port}`
    return proxy
  }

  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

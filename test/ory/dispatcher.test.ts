import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { UpstreamError, createKratosAdmin } from '../../src/ory/admin.js'
import { createOutboundFetch, type ProxySettings } from '../../src/ory/dispatcher.js'
import { createIssuerKeys } from '../../src/token/issuer-keys.js'
import { createLogoutTokenVerifier } from '../../src/token/logout-token.js'
import { HydraDouble } from '../doubles/hydra.js'
import { KratosDouble } from '../doubles/kratos.js'
import { build, checkContracts } from '../helper.js'

/**
 * A forward proxy on 127.0.0.1 that tunnels HTTP CONNECT to 127.0.0.1 only (anything else is refused)
 * and records the targets it was asked for; `refuse` makes it answer 403 instead.
 */
async function startProxy (t: Test): Promise<{ url: string, tunnels: string[], refuse: boolean }> {
  const sockets = new Set<Socket>()
  const proxy = { url: '', tunnels: [] as string[], refuse: false }
  const server = createServer((_req, res) => res.writeHead(405).end())
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client)
    client.on('error', () => {})
    const target = req.url ?? ''
    proxy.tunnels.push(target)
    const [host, port] = target.split(':')
    if (proxy.refuse || host !== '127.0.0.1') {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n')
      return
    }
    const upstream = connect(Number(port), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      upstream.pipe(client)
      client.pipe(upstream)
    })
    sockets.add(upstream)
    upstream.on('error', () => client.destroy())
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  proxy.url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return proxy
}

async function kratosThrough (t: Test, proxy: ProxySettings): Promise<{ kratos: KratosDouble, revoke: () => Promise<unknown> }> {
  const kratos = await new KratosDouble({ token: 'kratos-secret-token' }).listen()
  t.teardown(() => kratos.close())
  checkContracts(t, kratos)
  const admin = createKratosAdmin({ adminUrl: kratos.url, token: 'kratos-secret-token', timeoutMs: 2000, proxy })
  t.teardown(admin.close)
  return { kratos, revoke: async () => await admin.revokeIdentitySessions(randomUUID()) }
}

t.test('HTTP_PROXY: the Kratos call goes through the proxy, its token inside the tunnel', async (t) => {
  const proxy = await startProxy(t)
  const { kratos, revoke } = await kratosThrough(t, { httpProxy: proxy.url })
  t.same(await revoke(), { status: 404 })
  t.same(await revoke(), { status: 404 })
  t.same([...new Set(proxy.tunnels)], [`127.0.0.1:${kratos.port}`], 'tunnels to Kratos, and nowhere else')
  t.ok(proxy.tunnels.length <= 2, 'kept alive')
  t.equal(kratos.callsOf('deleteIdentitySessions')[1]?.authorization, 'Bearer kratos-secret-token')
})

t.test('NO_PROXY: a host it lists is called directly', async (t) => {
  const proxy = await startProxy(t)
  for (const noProxy of ['127.0.0.1', 'localhost,127.0.0.1', '*']) {
    const { kratos, revoke } = await kratosThrough(t, { httpProxy: proxy.url, httpsProxy: proxy.url, noProxy })
    t.same(await revoke(), { status: 404 }, noProxy)
    t.equal(kratos.callsOf('deleteIdentitySessions').length, 1)
  }
  // Another port of the same host is not listed: that call goes through the proxy.
  const { kratos, revoke } = await kratosThrough(t, { httpProxy: proxy.url, noProxy: '127.0.0.1:1' })
  t.same(await revoke(), { status: 404 })
  t.same(proxy.tunnels, [`127.0.0.1:${kratos.port}`], 'only the call to an unlisted port was proxied')
})

t.test('HTTPS_PROXY alone does not proxy an http: admin URL; a proxy that refuses is a transient failure', async (t) => {
  const proxy = await startProxy(t)
  const direct = await kratosThrough(t, { httpsProxy: proxy.url })
  t.same(await direct.revoke(), { status: 404 })
  t.same(proxy.tunnels, [])

  proxy.refuse = true
  const refused = await kratosThrough(t, { httpProxy: proxy.url })
  const err = await refused.revoke().catch((err: unknown) => err)
  t.ok(err instanceof UpstreamError && err.transient && err.service === 'kratos', 'transient')
  t.equal((err as Error).message, 'kratos DELETE /admin/identities/{id}/sessions: no answer (UND_ERR_ABORTED)')
  t.equal(refused.kratos.calls.length, 0)
})

t.test("the issuer's discovery and JWKS go through the proxy too, over undici's fetch", async (t) => {
  const proxy = await startProxy(t)
  const hydra = await HydraDouble.start()
  t.teardown(() => hydra.close())
  checkContracts(t, hydra)
  for (const noProxy of [undefined, '127.0.0.1']) {
    proxy.tunnels.length = 0
    const outbound = createOutboundFetch({ proxy: { httpProxy: proxy.url, noProxy } })
    t.teardown(outbound.close)
    const verify = createLogoutTokenVerifier({
      issuer: hydra.issuer,
      audiences: [],
      algorithms: ['RS256'],
      maxAgeSeconds: 300,
      clockToleranceSeconds: 30,
      requireExp: false,
      keys: createIssuerKeys({ issuer: hydra.issuer, timeoutMs: 2000, fetch: outbound.fetch })
    })
    const sid = randomUUID()
    t.equal((await verify(await hydra.logoutToken(sid))).sid, sid)
    t.same([...new Set(proxy.tunnels)], noProxy === undefined ? [`127.0.0.1:${hydra.port}`] : [],
      noProxy === undefined ? 'discovery and JWKS through the proxy' : 'NO_PROXY: directly')
  }
})

t.test('the relay takes the proxy from its configuration: logout, JWKS and revocation through it', async (t) => {
  const proxy = await startProxy(t)
  const relay = await build(t, { env: { HTTP_PROXY: proxy.url } })
  const { identityId, sid } = await relay.login(2)
  t.equal((await relay.logout(await relay.hydra.logoutToken(sid))).statusCode, 200)
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  t.equal(relay.kratos.activeSessions(identityId), 0)
  t.same([...new Set(proxy.tunnels)].sort(), [`127.0.0.1:${relay.hydra.port}`, `127.0.0.1:${relay.kratos.port}`].sort())
})

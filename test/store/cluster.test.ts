import { randomUUID } from 'node:crypto'
import t from 'tap'
import { build, eventually } from '../helper.js'
import { startRedisCluster } from '../helpers/redis.js'

const cluster = await startRedisCluster()
t.teardown(() => cluster.close())

t.test('the relay on a Redis Cluster (REDIS_CLUSTER_NODES): every flow works as on one node', async (t) => {
  const relay = await build(t, { env: { REDIS_CLUSTER_NODES: cluster.nodes.join(','), REDIS_KEY_PREFIX: cluster.prefix } })
  t.equal((await relay.app.inject('/health/ready')).statusCode, 200)

  const logins = await Promise.all(Array.from({ length: 20 }, async () => await relay.login(2)))
  for (const { sid } of logins) {
    for (const clientId of ['app-a', 'app-b']) {
      t.equal((await relay.logout(await relay.hydra.logoutToken(sid, { clientId }))).statusCode, 200)
    }
  }
  t.ok(await eventually(() => logins.every(({ identityId }) => relay.kratos.activeSessions(identityId) === 0)))
  t.equal(relay.kratos.revokedIdentities().length, 20, 'one revocation per sid, with keys spread over the slots')

  const replayed = await relay.hydra.logoutToken(logins[0]?.sid ?? '')
  t.equal((await relay.logout(replayed)).statusCode, 200)
  t.equal((await relay.logout(replayed)).statusCode, 400, 'replay refused')

  const lateSid = randomUUID()
  const lateIdentity = randomUUID()
  relay.kratos.addSessions(lateIdentity)
  t.equal((await relay.logout(await relay.hydra.logoutToken(lateSid))).statusCode, 200)
  t.equal((await relay.hook({ identity_id: lateIdentity, sid: lateSid })).statusCode, 204)
  t.ok(await eventually(() => relay.kratos.activeSessions(lateIdentity) === 0), 'a late login hook revokes')

  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_store_up 1/)
  t.match(metrics, /logout_relay_queue_depth\{state="waiting"\} 0/)
})

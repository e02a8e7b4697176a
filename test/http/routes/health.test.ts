import t from 'tap'
import { build } from '../../helper.js'
import { spawnRedis } from '../../helpers/redis.js'

t.test('alive while serving; ready while Redis answers and the relay is not closing', async (t) => {
  const redis = await spawnRedis()
  t.teardown(() => redis.close())
  const relay = await build(t, { redis, env: { REDIS_COMMAND_TIMEOUT: '300' } })
  t.same((await relay.app.inject('/health/alive')).json(), { status: 'ok' })
  const ready = await relay.app.inject('/health/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok' })

  await redis.stop()
  const down = await relay.app.inject('/health/ready')
  t.equal(down.statusCode, 503)
  t.same(down.json(), { errors: { redis: 'redis does not answer' } })
  t.equal((await relay.app.inject('/health/alive')).statusCode, 200, 'alive regardless')
  const metrics = (await relay.app.inject('/metrics')).body
  t.match(metrics, /logout_relay_store_up 0/)
})

t.test('not ready once shutdown began', async (t) => {
  const relay = await build(t)
  let during: number | undefined
  relay.app.addHook('preClose', async () => {
    during = (await fetch(`${url}/health/ready`)).status
  })
  const url = await relay.app.listen({ port: 0, host: '127.0.0.1' })
  t.equal((await fetch(`${url}/health/ready`)).status, 200, 'the in-memory store is always ready')
  await relay.app.close()
  t.equal(during, 503)
})

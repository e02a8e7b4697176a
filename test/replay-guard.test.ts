import { randomUUID } from 'node:crypto'
import t from 'tap'
import { createMemoryReplayGuard, createRedisReplayGuard } from '../src/replay-guard.js'
import { backends } from './helpers/backends.js'

for (const backend of await backends(t)) {
  let now = Date.now()
  const make = () => backend.redis === undefined
    ? createMemoryReplayGuard(() => now)
    : createRedisReplayGuard(backend.redis, backend.keys())

  t.test(`${backend.name}: a jti is consumed once, per issuer`, async (t) => {
    const guard = make()
    const jti = randomUUID()
    t.equal(await guard.seen('https://a/', jti), false)
    t.equal(await guard.consume('https://a/', jti, 60), true)
    t.equal(await guard.seen('https://a/', jti), true)
    t.equal(await guard.consume('https://a/', jti, 60), false, 'a second consume loses')
    t.equal(await guard.seen('https://b/', jti), false, 'another issuer has its own jti space')
  })

  t.test(`${backend.name}: consumption expires`, async (t) => {
    const guard = make()
    const jti = randomUUID()
    await guard.consume('https://a/', jti, 1)
    now += 1500
    if (backend.redis !== undefined) await new Promise((resolve) => setTimeout(resolve, 1100))
    t.equal(await guard.seen('https://a/', jti), false)
  })
}

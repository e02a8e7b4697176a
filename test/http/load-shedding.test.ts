import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build } from '../helper.js'

function blockEventLoop (ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) { /* saturate the loop, as a burst of CPU-bound work would */ }
}

/**
 * Saturates the loop until the load monitor reports it. The monitor samples every 100 ms, and a
 * sample can run just before the blocked loop's delay is recorded, so one block is not always seen.
 */
async function saturate (app: FastifyInstance, blockMs: number): Promise<boolean> {
  for (let attempt = 0; attempt < 20; attempt++) {
    blockEventLoop(blockMs)
    await new Promise((resolve) => setTimeout(resolve, 1))
    if (app.isUnderPressure()) return true
  }
  return false
}

const malformedLogout = { method: 'POST', url: '/backchannel-logout', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'x=1' } as const

t.test('a saturated event loop answers 503 with Retry-After at once; health and metrics are spared', async (t) => {
  const relay = await build(t, { env: { MAX_EVENT_LOOP_DELAY: '50' } })
  const readyAt = Date.now()
  t.equal((await relay.app.inject('/health/ready')).statusCode, 200)
  const token = await relay.hydra.logoutToken('sid-1')

  // The first second after startup is spared: its first sample measures loading the code.
  t.ok(await saturate(relay.app, 150), 'the monitor sees the saturated loop')
  t.ok(Date.now() - readyAt < 900, 'still inside the startup grace')
  t.equal((await relay.app.inject(malformedLogout)).statusCode, 400, 'not shed right after startup')
  await new Promise((resolve) => setTimeout(resolve, 1100))

  t.ok(await saturate(relay.app, 300), 'the monitor sees the saturated loop')
  const shed = await relay.logout(token)
  t.equal(shed.statusCode, 503)
  t.equal(shed.headers['retry-after'], '5')
  t.same(shed.json(), { error: 'temporarily_unavailable', error_description: 'the relay is overloaded; retry later' })
  t.equal((await relay.app.inject('/health/alive')).statusCode, 200)
  t.equal((await relay.app.inject('/metrics')).statusCode, 200)

  await new Promise((resolve) => setTimeout(resolve, 400))
  t.notOk(relay.app.isUnderPressure(), 'the monitor sees the loop recover')
  t.equal((await relay.logout(token)).statusCode, 200, 'served again once the loop recovers, and the shed token was not consumed')
})

t.test('MAX_EVENT_LOOP_DELAY=0 turns shedding off', async (t) => {
  const relay = await build(t, { env: { MAX_EVENT_LOOP_DELAY: '0' } })
  blockEventLoop(300)
  await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal((await relay.app.inject('/health/ready')).statusCode, 200)
  t.equal((await relay.logout(await relay.hydra.logoutToken('sid-2'))).statusCode, 200)
})

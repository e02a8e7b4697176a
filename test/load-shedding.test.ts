import t from 'tap'
import { build } from './helper.js'

function blockEventLoop (ms: number): void {
  const until = Date.now() + ms
  while (Date.now() < until) { /* saturate the loop, as a burst of CPU-bound work would */ }
}

t.test('a saturated event loop answers 503 with Retry-After at once; health and metrics are spared', async (t) => {
  const relay = await build(t, { env: { MAX_EVENT_LOOP_DELAY: '50' } })
  t.equal((await relay.app.inject('/health/ready')).statusCode, 200)
  const token = await relay.hydra.logoutToken('sid-1')

  // The first second after startup is spared: its first sample measures loading the code.
  blockEventLoop(300)
  await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal((await relay.app.inject('/health/ready')).statusCode, 200)
  t.equal((await relay.app.inject({ method: 'POST', url: '/backchannel-logout', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'x=1' })).statusCode, 400,
    'not shed right after startup')
  await new Promise((resolve) => setTimeout(resolve, 1100))

  blockEventLoop(600)
  await new Promise((resolve) => setTimeout(resolve, 5))
  const shed = await relay.logout(token)
  t.equal(shed.statusCode, 503)
  t.equal(shed.headers['retry-after'], '5')
  t.same(shed.json(), { error: 'temporarily_unavailable', error_description: 'the relay is overloaded; retry later' })
  t.equal((await relay.app.inject('/health/alive')).statusCode, 200)
  t.equal((await relay.app.inject('/metrics')).statusCode, 200)

  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal((await relay.logout(token)).statusCode, 200, 'served again once the loop recovers, and the shed token was not consumed')
})

t.test('MAX_EVENT_LOOP_DELAY=0 turns shedding off', async (t) => {
  const relay = await build(t, { env: { MAX_EVENT_LOOP_DELAY: '0' } })
  blockEventLoop(300)
  await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal((await relay.app.inject('/health/ready')).statusCode, 200)
  t.equal((await relay.logout(await relay.hydra.logoutToken('sid-2'))).statusCode, 200)
})

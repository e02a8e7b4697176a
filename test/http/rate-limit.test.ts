import t from 'tap'
import { CallLimit, FailureLimit } from '../../src/http/rate-limit.js'

t.test('a call limit counts per key within a window', async (t) => {
  const limit = new CallLimit(3, 10)
  t.same([await limit.hit('a'), await limit.hit('a'), await limit.hit('a')], [0, 0, 0])
  const wait = await limit.hit('a')
  t.ok(wait >= 9 && wait <= 10, `the fourth waits for the window to end (${wait} s)`)
  t.equal(await limit.hit('b'), 0, 'keys are separate')
})

t.test('a call limit starts again with a new window', async (t) => {
  const limit = new CallLimit(1, 1)
  t.equal(await limit.hit('a'), 0)
  t.equal(await limit.hit('a'), 1)
  await new Promise((resolve) => setTimeout(resolve, 1050))
  t.equal(await limit.hit('a'), 0, 'a new window')
})

t.test('failures are limited per address', async (t) => {
  const failures = new FailureLimit({ perAddress: 2, overall: 100, windowSeconds: 60 })
  t.equal(await failures.fail('203.0.113.7'), 0)
  t.equal(await failures.fail('203.0.113.7'), 0)
  t.ok(await failures.fail('203.0.113.7') > 0, 'the third failure from the address waits')
  t.equal(await failures.fail('198.51.100.9'), 0, 'another address is not affected')
})

t.test('failures are limited over all addresses: rotating the address escapes nothing', async (t) => {
  const failures = new FailureLimit({ perAddress: 2, overall: 5, windowSeconds: 60 })
  for (let i = 0; i < 5; i++) t.equal(await failures.fail(`203.0.113.${i}`), 0)
  t.ok(await failures.fail('203.0.113.200') > 0, 'a fresh address is refused once the overall limit is reached')
})

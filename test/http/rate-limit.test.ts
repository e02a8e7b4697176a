import t from 'tap'
import { FixedWindowLimiter } from '../../src/http/rate-limit.js'

t.test('counts per key within a window, then resets', async (t) => {
  let now = 1_000_000
  const limiter = new FixedWindowLimiter(3, 10_000, () => now)
  t.same([limiter.hit('a'), limiter.hit('a'), limiter.hit('a')], [0, 0, 0])
  t.equal(limiter.hit('a'), 10, 'the fourth waits for the window to end')
  t.equal(limiter.hit('b'), 0, 'keys are separate')
  now += 4_000
  t.equal(limiter.blocked('a'), 6)
  t.equal(limiter.blocked('b'), 0)
  now += 6_000
  t.equal(limiter.blocked('a'), 0)
  t.equal(limiter.hit('a'), 0, 'a new window')
})

t.test('blocked() does not count', async (t) => {
  const limiter = new FixedWindowLimiter(2, 60_000)
  for (let i = 0; i < 10; i++) t.equal(limiter.blocked('x'), 0)
  limiter.hit('x')
  t.equal(limiter.blocked('x'), 0)
  limiter.hit('x')
  t.ok(limiter.blocked('x') > 0, 'at the limit: blocked')
})

t.test('memory stays bounded under a flood of keys', async (t) => {
  let now = 0
  const limiter = new FixedWindowLimiter(1, 1000, () => now, 100)
  for (let i = 0; i < 1000; i++) limiter.hit(`ip-${i}`)
  t.ok(limiter.hit('ip-999') >= 0)
  now += 1000
  for (let i = 0; i < 150; i++) limiter.hit(`new-${i}`)
  t.equal(limiter.hit('new-149'), 1, 'recent keys still count after a sweep')
})

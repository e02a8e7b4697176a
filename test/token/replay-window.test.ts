import t from 'tap'
import { longestReplayWindowSeconds, replayWindowSeconds } from '../../src/token/replay-window.js'

const rules = { maxAgeSeconds: 300, clockToleranceSeconds: 30 }

t.test('a jti is remembered from the token\'s own iat, not from its arrival', async (t) => {
  const now = 1_700_000_000_000
  const iat = now / 1000
  t.equal(replayWindowSeconds(iat, now, rules), 300 + 90 + 1, 'max age, three tolerances, one second of rounding')
  t.equal(replayWindowSeconds(iat + 30, now, rules), 300 + 120 + 1, 'an iat ahead of the clock is remembered that much longer')
  t.equal(replayWindowSeconds(iat - 200, now + 150_000, rules), 391 - 200 - 150, 'an older token for what is left of its life')
  t.equal(replayWindowSeconds(iat - 1000, now, rules), 1, 'never less than a second')
})

t.test('the longest window covers every token that passes the age check', async (t) => {
  const now = 1_700_000_000_000
  const aheadByTolerance = now / 1000 + 30
  t.equal(longestReplayWindowSeconds(rules), replayWindowSeconds(aheadByTolerance, now, rules))
})

import t from 'tap'
import { bearerToken, createApiKeyMatcher } from '../../src/http/api-keys.js'

t.test('matches any configured key, exactly, and tells which', async (t) => {
  const match = createApiKeyMatcher(['first-key-0123456789', 'second-key-0123456789'])
  t.equal(match('first-key-0123456789'), 0)
  t.equal(match('second-key-0123456789'), 1)
  t.equal(match('first-key-012345678'), -1, 'a prefix is no match')
  t.equal(match('first-key-01234567890'), -1, 'nor a longer string')
  t.equal(match(''), -1)
  t.equal(match(undefined), -1)
  t.equal(createApiKeyMatcher([])('anything'), -1, 'no keys: nothing matches')
})

t.test('reads RFC 6750 Bearer credentials', async (t) => {
  t.equal(bearerToken('Bearer abc.DEF-_~+/='), 'abc.DEF-_~+/=')
  t.equal(bearerToken('bearer abc'), 'abc', 'the scheme is case-insensitive')
  t.equal(bearerToken('Basic abc'), undefined)
  t.equal(bearerToken('Bearer'), undefined)
  t.equal(bearerToken('Bearer a b'), undefined)
  t.equal(bearerToken(undefined), undefined)
})

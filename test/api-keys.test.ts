import t from 'tap'
import { bearerToken, createApiKeyCheck } from '../src/api-keys.js'

t.test('matches any configured key, exactly', async (t) => {
  const check = createApiKeyCheck(['first-key-0123456789', 'second-key-0123456789'])
  t.equal(check('first-key-0123456789'), true)
  t.equal(check('second-key-0123456789'), true)
  t.equal(check('first-key-012345678'), false, 'a prefix is no match')
  t.equal(check('first-key-01234567890'), false, 'nor a longer string')
  t.equal(check(''), false)
  t.equal(check(undefined), false)
  t.equal(createApiKeyCheck([])('anything'), false, 'no keys: nothing matches')
})

t.test('reads RFC 6750 Bearer credentials', async (t) => {
  t.equal(bearerToken('Bearer abc.DEF-_~+/='), 'abc.DEF-_~+/=')
  t.equal(bearerToken('bearer abc'), 'abc', 'the scheme is case-insensitive')
  t.equal(bearerToken('Basic abc'), undefined)
  t.equal(bearerToken('Bearer'), undefined)
  t.equal(bearerToken('Bearer a b'), undefined)
  t.equal(bearerToken(undefined), undefined)
})

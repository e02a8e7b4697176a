import { randomUUID } from 'node:crypto'
import t from 'tap'
import { defineScripts } from '../../src/store/redis.js'
import { backends } from '../helpers/backends.js'

const COUNT_KEYS = {
  name: 'testCountKeys',
  keys: 'variable' as const,
  // KEYS: any, under one hash tag. Sets each to ARGV[1]; returns how many.
  lua: `
for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1]) end
return #KEYS`
}

for (const backend of (await backends(t)).filter((candidate) => candidate.redis !== undefined)) {
  const redis = backend.redis!

  t.test(`${backend.name}: a script with a variable number of keys, batched in one tick with commands for every node`, async (t) => {
    const run = defineScripts(redis, [COUNT_KEYS])
    const keys = backend.keys()
    const calls: Array<Promise<unknown>> = []
    for (let i = 0; i < 50; i++) {
      const tagged = Array.from({ length: 1 + (i % 7) }, (_, n) => keys.key('script', `tag-${i}`, String(n)))
      calls.push(run(COUNT_KEYS.name, tagged, ['x']))
      // Keys of other slots, which auto-pipelining sends in the same tick.
      calls.push(redis.get(keys.key('plain', randomUUID())))
    }
    const results = await Promise.all(calls)
    t.same(results.filter((_, i) => i % 2 === 0), Array.from({ length: 50 }, (_, i) => 1 + (i % 7)))
  })

  t.test(`${backend.name}: a script Redis does not hold (flushed, restarted) is sent whole, then by its SHA`, async (t) => {
    const run = defineScripts(redis, [COUNT_KEYS])
    const keys = backend.keys()
    const flush = 'nodes' in redis ? Promise.all(redis.nodes('master').map(async (node) => await node.script('FLUSH'))) : redis.script('FLUSH')
    await flush
    t.equal(await run(COUNT_KEYS.name, [keys.key('script', 'one', 'a'), keys.key('script', 'one', 'b')], ['y']), 2)
    t.equal(await run(COUNT_KEYS.name, [keys.key('script', 'one', 'a')], ['z']), 1)
    t.equal(await redis.get(keys.key('script', 'one', 'a')), 'z')
  })
}

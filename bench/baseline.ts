import formbody from '@fastify/formbody'
import Fastify from 'fastify'
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'
import { pino } from 'pino'
import { Pool } from 'undici'
import { createRedisClient, waitForRedis } from '../src/store/redis.js'

/**
 * The baselines the relay is measured against, each a bare Fastify server parsing the same form body:
 * A returns at once; B also verifies the RS256 token against a local JWKS (jose); C also makes two
 * Redis round trips (SET NX of the jti, GET of the sid), through the relay's own Redis client settings;
 * D also makes the one call to Kratos that a logout exists for (`DELETE /admin/identities/{id}/sessions`,
 * with undici's keep-alive pool of 128 connections, the relay's own limit) before it answers.
 */
const mode = process.env['MODE'] ?? 'A'
const jwks = JSON.parse(process.env['JWKS'] ?? '{"keys":[]}') as JSONWebKeySet
const issuer = process.env['ISSUER'] ?? ''
const keys = createLocalJWKSet(jwks)
const redis = mode === 'C' || mode === 'D' ? createRedisClient({ url: process.env['REDIS_URL'] ?? '' }, pino({ level: 'silent' })) : undefined
if (redis !== undefined) await waitForRedis(redis, 5000)
const kratos = mode === 'D' ? new Pool(process.env['KRATOS_URL'] ?? '', { connections: 128 }) : undefined

const app = Fastify()
await app.register(formbody)
app.post('/backchannel-logout', async (request, reply) => {
  const token = (request.body as { logout_token?: unknown }).logout_token
  if (typeof token !== 'string') return await reply.code(400).send()
  if (mode !== 'A') {
    const { payload } = await jwtVerify(token, keys, { algorithms: ['RS256'], issuer })
    if (redis !== undefined) {
      await redis.set(`baseline:jti:${String(payload.jti)}`, '1', 'EX', 360, 'NX')
      await redis.get(`baseline:sid:${String(payload['sid'])}`)
    }
    if (kratos !== undefined) {
      const { statusCode, body } = await kratos.request({ method: 'DELETE', path: `/admin/identities/${String(payload['sid'])}/sessions` })
      await body.dump()
      if (statusCode !== 204) return await reply.code(503).send()
    }
  }
  return await reply.code(200).send()
})
await app.listen({ port: Number(process.env['PORT'] ?? 0), host: '127.0.0.1' })
process.on('SIGTERM', () => {
  app.close().then(async () => {
    redis?.disconnect()
    await kratos?.close()
    process.exit(0)
  }, () => process.exit(1))
})

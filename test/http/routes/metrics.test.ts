import t from 'tap'
import { build } from '../../helper.js'
import { startRedis } from '../../helpers/redis.js'

t.test('Prometheus text with the relay\'s metrics', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.close())
  const relay = await build(t, { redis })
  const { sid } = await relay.login()
  await relay.logout(await relay.hydra.logoutToken(sid))
  await relay.logout('garbage')
  await relay.kratos.waitForCalls('deleteIdentitySessions', 1)
  const response = await relay.app.inject('/metrics')
  t.equal(response.statusCode, 200)
  t.match(response.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const body = response.body
  for (const name of [
    'logout_relay_logout_tokens_total', 'logout_relay_revocations_total', 'logout_relay_login_hook_calls_total',
    'logout_relay_queue_depth', 'logout_relay_dead_letters', 'logout_relay_http_request_duration_seconds',
    'logout_relay_store_up', 'logout_relay_process_resident_memory_bytes'
  ]) t.match(body, new RegExp(`# TYPE ${name} `), name)
  t.match(body, /logout_relay_logout_tokens_total\{outcome="rejected",reason="malformed"\} 1/)
  t.match(body, /logout_relay_queue_depth\{state="waiting"\} 0/)
  t.match(body, /logout_relay_http_request_duration_seconds_count\{method="POST",route="\/backchannel-logout",status_code="200"\} 1/)
  t.match(body, /logout_relay_store_up 1/)
})

import { randomUUID, sign } from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'

/** Signs Hydra-shaped logout tokens (RS256, typ JWT, no sub, no exp) for the benchmark, off the main thread. */
const { privateKey, kid, issuer, sids, iat } = workerData
const header = Buffer.from(JSON.stringify({ alg: 'RS256', kid, typ: 'JWT' })).toString('base64url')
const tokens = sids.map((sid, i) => {
  const payload = Buffer.from(JSON.stringify({
    iss: issuer,
    aud: [`bench-client-${i % 3}`],
    iat,
    jti: randomUUID(),
    sid,
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} }
  })).toString('base64url')
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), privateKey).toString('base64url')
  return `${header}.${payload}.${signature}`
})
parentPort.postMessage(tokens)

/**
 * The container's HEALTHCHECK: asks the relay's own /health/alive on loopback, with nothing but
 * Node (the runtime image has no curl or wget). Exits 0 when alive.
 */
const port = process.env['PORT'] ?? '8080'
fetch(`http://127.0.0.1:${port}/health/alive`, { signal: AbortSignal.timeout(2000) }).then(
  (response) => process.exit(response.ok ? 0 : 1),
  () => process.exit(1)
)

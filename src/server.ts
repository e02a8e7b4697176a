import { buildApp } from './app.js'
import { ConfigError, loadConfig, startupNotices } from './config.js'
import { createLogger } from './ops/logger.js'

/**
 * The entrypoint: configuration → app → listen. On SIGTERM or SIGINT it stops accepting, lets the
 * requests and revocations in flight finish, leaves queued jobs in the store, and exits 0. A second
 * signal, or a shutdown that outlasts SHUTDOWN_TIMEOUT, exits 1 at once.
 */
async function main (): Promise<void> {
  let config
  try {
    config = loadConfig(process.env)
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`logout-relay: ${err.message}\n`)
      process.exit(78) // EX_CONFIG
    }
    throw err
  }

  const log = createLogger(config.logLevel)
  for (const notice of startupNotices(config)) log[notice.level](notice.message)
  const app = await buildApp(config, { logger: log })

  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    stopping = true
    log.info({ signal }, 'shutting down: finishing requests and revocations in flight')
    const deadline = setTimeout(() => {
      log.error('shutdown took too long: exiting')
      process.exit(1)
    }, config.http.shutdownTimeoutMs)
    deadline.unref()
    app.close().then(() => {
      log.info('stopped')
      process.exit(0)
    }, (err: unknown) => {
      log.error({ err }, 'error while shutting down')
      process.exit(1)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)

  await app.listen({ port: config.http.port, host: config.http.host })
}

main().catch((err: unknown) => {
  process.stderr.write(`logout-relay: failed to start: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})

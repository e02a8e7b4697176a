import { pino, type DestinationStream, type Logger } from 'pino'

/**
 * Paths that could hold a secret should anything ever log them: the relay logs neither bodies nor
 * headers, and this is the second line of defence. Exact paths only: a wildcard path makes every log
 * call walk every object it is given.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'logout_token',
  'body',
  'token',
  'apiKey'
]

/** Bytes of log lines gathered before a write to stdout, and the longest a line waits for them. */
const LOG_BATCH_BYTES = 4096
const LOG_FLUSH_INTERVAL_MS = 250

/**
 * The service's pino logger: JSON lines, secrets redacted. To stdout by default, written
 * asynchronously in batches — a write per 4 KiB of lines or per quarter second, whichever comes
 * first, rather than one per line (an access log line per request made the write the largest part
 * of the logging's cost) — and flushed when the process exits.
 */
export function createLogger (level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'logout-relay' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' }
  }
  return pino(options, destination ?? pino.destination({
    dest: 1,
    sync: false,
    minLength: LOG_BATCH_BYTES,
    periodicFlush: LOG_FLUSH_INTERVAL_MS
  }))
}

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

/**
 * The service's pino logger: JSON lines, secrets redacted. To stdout by default, written
 * asynchronously (a write per burst of lines, not per line) and flushed when the process exits.
 */
export function createLogger (level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'logout-relay' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' }
  }
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }))
}

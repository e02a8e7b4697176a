import { pino, type DestinationStream, type Logger } from 'pino'

/**
 * Paths that could hold a secret should anything ever log them: the relay logs neither bodies nor
 * headers, and this is the second line of defence.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'logout_token',
  '*.logout_token',
  'body',
  '*.body',
  'token',
  '*.token',
  'apiKey',
  '*.apiKey'
]

/** The service's pino logger: JSON lines, secrets redacted. */
export function createLogger (level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'logout-relay' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}

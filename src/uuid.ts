const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** A UUID in its text form (RFC 9562), in either case: what Kratos identity ids are. */
export function isUuid (value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value)
}

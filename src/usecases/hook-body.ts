import { RelayError } from '../errors.js'
import { isIdentityId } from './logout.js'

/** A hook body at fault: a 400 that names the field. */
export function invalidHookBody (field: string, message: string): RelayError {
  return new RelayError('ERR_HOOK_BODY_INVALID', message, { field })
}

/**
 * The parts every Kratos hook body shares: a JSON object whose `identity_id` is a Kratos identity id,
 * returned in Kratos' lower case with the object's members. Each error names the field at fault.
 */
export function hookBody (body: unknown): { identityId: string, fields: Record<string, unknown> } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidHookBody('body', 'the body must be a JSON object')
  }
  const fields = body as Record<string, unknown>
  const identityId = fields['identity_id']
  if (identityId === undefined || identityId === null || identityId === '') throw invalidHookBody('identity_id', 'identity_id is required')
  if (!isIdentityId(identityId)) throw invalidHookBody('identity_id', 'identity_id must be a Kratos identity id (a UUID)')
  return { identityId: identityId.toLowerCase(), fields }
}

/** An optional string member: absent (or null), or a non-empty string of at most `maxLength` characters. */
export function optionalString (fields: Record<string, unknown>, field: string, maxLength: number): string | undefined {
  const value = fields[field]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string' || value === '' || value.length > maxLength) {
    throw invalidHookBody(field, `${field} must be a non-empty string of at most ${maxLength} characters`)
  }
  return value
}

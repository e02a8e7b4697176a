import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv, type ErrorObject } from 'ajv'
import { parse as parseYaml } from 'yaml'

/** The repository's root directory. */
export const root = fileURLToPath(new URL('../..', import.meta.url))

export function repoPath (...parts: string[]): string {
  return join(root, ...parts)
}

export function readText (relative: string): string {
  return readFileSync(repoPath(relative), 'utf8')
}

/** A YAML file of the repository, parsed the way Compose and Ory parse it (anchors resolved). */
export function readYaml (relative: string): unknown {
  return parseYaml(readText(relative))
}

export function readJson (relative: string): unknown {
  return JSON.parse(readText(relative)) as unknown
}

/** A JSON value narrowed to an object, or undefined. */
export function record (value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined
}

/** The value at a dotted path of nested objects, or undefined. */
export function at (value: unknown, path: string): unknown {
  let current = value
  for (const key of path.split('.')) current = record(current)?.[key]
  return current
}

/** A deep copy of parsed configuration, for tests that break it. */
export function copy<T> (value: T): T {
  return structuredClone(value)
}

// ajv-formats is CommonJS whose default export TypeScript cannot see through NodeNext's interop.
const addFormats = createRequire(import.meta.url)('ajv-formats') as (ajv: Ajv) => Ajv

export type SchemaName = 'hydra' | 'kratos' | 'identity' | 'compose'

const fixture = (relative: string): unknown => readJson(`test/fixtures/${relative}`)

/**
 * Validators for Ory's published configuration schemas and the Compose Specification, as the project
 * vendors them in test/fixtures: Ajv in draft-07, `strict: false`, with ajv-formats. Each returns the
 * problems found, empty when the value is valid.
 */
export function createValidators (): Record<SchemaName, (value: unknown) => string[]> {
  const ajv = new Ajv({ strict: false, allErrors: true, logger: false })
  addFormats(ajv)
  ajv.addSchema(fixture('ory/oryx/otelx/config.schema.json') as object, 'ory://tracing-config')
  ajv.addSchema(fixture('ory/oryx/configx/serve.schema.json') as object, 'ory://serve-config')
  ajv.addSchema(fixture('ory/oryx/configx/cors.schema.json') as object, 'ory://cors-config')
  ajv.addSchema(fixture('ory/oryx/configx/tls.schema.json') as object, 'ory://tls-config')
  // The meta-schema of identity schemas refers to Kratos' extension vocabulary (`ory.sh/kratos`),
  // which is not among the vendored contracts: it accepts anything here, and the wiring tests check
  // the parts of it the stack relies on.
  ajv.addSchema({ $id: 'ory://identity-extension' })
  // The Compose Specification names draft-07 by its https URL; Ajv knows it by the http one.
  const draft07 = createRequire(import.meta.url)('ajv/dist/refs/json-schema-draft-07.json') as Record<string, unknown>
  ajv.addMetaSchema({ ...draft07, $id: 'https://json-schema.org/draft-07/schema' })

  const compile = (schema: unknown): ((value: unknown) => string[]) => {
    const validate = ajv.compile(schema as object)
    return (value) => validate(value) ? [] : (validate.errors ?? []).map(describe)
  }
  return {
    hydra: compile(fixture('ory/hydra/config.schema.json')),
    kratos: compile(fixture('ory/kratos/config.schema.json')),
    identity: compile(fixture('ory/kratos/identity_meta.schema.json')),
    compose: compile(fixture('compose-spec.json'))
  }
}

function describe (error: ErrorObject): string {
  return `${error.instancePath || '/'} ${error.message ?? 'is invalid'} ${JSON.stringify(error.params)}`
}

/** One instruction of a Dockerfile, continuation lines joined. */
export interface DockerInstruction {
  keyword: string
  value: string
}

export interface DockerStage {
  name: string | undefined
  /** The image, with ARG defaults substituted. */
  from: string
  instructions: DockerInstruction[]
}

/** A Dockerfile's global ARG defaults and its stages, in order. */
export function parseDockerfile (text: string): { args: Record<string, string>, stages: DockerStage[] } {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((line) => line.trim())
  const args: Record<string, string> = {}
  const stages: DockerStage[] = []
  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^(\S+)\s+(.*)$/.exec(line)
    if (match === null) continue
    const keyword = (match[1] ?? '').toUpperCase()
    const value = (match[2] ?? '').trim()
    const stage = stages.at(-1)
    if (keyword === 'ARG' && stage === undefined) {
      const [name, fallback] = value.split('=', 2)
      if (name !== undefined) args[name] = fallback ?? ''
    } else if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(value)
      const image = (from?.[1] ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_all, a: string | undefined, b: string | undefined) => args[a ?? b ?? ''] ?? '')
      stages.push({ name: from?.[2], from: image, instructions: [] })
    } else if (stage !== undefined) {
      stage.instructions.push({ keyword, value })
    }
  }
  return { args, stages }
}

/** The exec-form arguments of an instruction (`["node", "x.js"]`), after any `--flag=…` options. */
export function execForm (value: string): string[] {
  const json = /(\[.*\])\s*$/.exec(value)?.[1]
  if (json === undefined) throw new Error(`not in exec form: ${value}`)
  return JSON.parse(json) as string[]
}

/** The `ENV` variables a stage sets (`KEY=value` pairs, unquoted). */
export function stageEnv (stage: DockerStage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const { keyword, value } of stage.instructions) {
    if (keyword !== 'ENV') continue
    for (const pair of value.split(/\s+/)) {
      const [name, setting] = pair.split('=', 2)
      if (name !== undefined && setting !== undefined) env[name] = setting
    }
  }
  return env
}

/** The part of a Compose service these tests read. */
export interface ComposeService {
  image?: string
  build?: string | { context?: string }
  command?: string | string[]
  entrypoint?: string | string[]
  environment?: Record<string, string | number | boolean | null> | string[]
  ports?: Array<string | { target: number, published?: string | number, host_ip?: string }>
  volumes?: Array<string | { type?: string, source?: string, target: string }>
  healthcheck?: { test?: string | string[], disable?: boolean }
  depends_on?: string[] | Record<string, { condition: string }>
  restart?: string
}

export interface ComposeFile {
  name?: string
  services: Record<string, ComposeService>
  volumes?: Record<string, unknown>
}

/**
 * Compose's variable interpolation of one string: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:?error}` and `${VAR?error}` (an unset required variable throws).
 */
export function interpolate (text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_]\w*)/g,
    (all, braced: string | undefined, operator: string | undefined, argument: string | undefined, bare: string | undefined) => {
      if (all === '$$') return '$'
      const name = braced ?? bare ?? ''
      const value = env[name]
      const missing = operator?.startsWith(':') === true ? value === undefined || value === '' : value === undefined
      if (operator === undefined || !missing) return value ?? ''
      if (operator.endsWith('?')) throw new Error(`${name}: ${argument ?? 'required'}`)
      return argument ?? ''
    })
}

/** A service's environment after interpolation with the host's variables `env`. */
export function serviceEnv (service: ComposeService, env: Record<string, string | undefined> = {}): Record<string, string> {
  const entries: Array<[string, string]> = Array.isArray(service.environment)
    ? service.environment.map((item) => {
      const [name, ...rest] = item.split('=')
      return [name ?? '', rest.join('=')]
    })
    : Object.entries(service.environment ?? {}).map(([name, value]) => [name, value === null ? '' : String(value)])
  return Object.fromEntries(entries.map(([name, value]) => [name, interpolate(value, env)]))
}

/** Where a container path of a service comes from: the host file of a bind mount, or a named volume. */
export function mountSource (service: ComposeService, containerPath: string): { bind: string } | { volume: string, rest: string } | undefined {
  for (const volume of service.volumes ?? []) {
    const [source, target] = typeof volume === 'string'
      ? volume.split(':')
      : [volume.source, volume.target]
    if (source === undefined || target === undefined) continue
    if (containerPath !== target && !containerPath.startsWith(`${target}/`)) continue
    const rest = containerPath.slice(target.length)
    if (source.startsWith('.') || source.startsWith('/')) return { bind: join(root, source, rest) }
    return { volume: source, rest }
  }
  return undefined
}

/** The services a service waits for, with the condition of each. */
export function dependencies (service: ComposeService): Record<string, string> {
  if (Array.isArray(service.depends_on)) return Object.fromEntries(service.depends_on.map((name) => [name, 'service_started']))
  return Object.fromEntries(Object.entries(service.depends_on ?? {}).map(([name, { condition }]) => [name, condition]))
}

/** A service's command as one list, whatever its form. */
export function commandOf (service: ComposeService): string[] {
  const command = service.command ?? []
  return typeof command === 'string' ? command.split(/\s+/) : command
}

import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { root } from './binaries.js'

/**
 * Where the shipped configuration (config/, written for the compose stack) points, and where the suite's
 * processes listen instead. Every address of the shipped files must be in this table: an address the
 * suite does not know fails the render instead of pointing somewhere else unnoticed.
 */
export interface Addresses {
  hydraPublic: string
  hydraAdmin: string
  kratosPublic: string
  kratosAdmin: string
  /** The login, consent and logout UI (the compose stack's self-service UI); the test plays it, nothing listens. */
  ui: string
  /** The relay as Kratos calls its login hook. */
  relay: string
}

/** The secrets of one run, in place of the shipped examples. */
export interface Secrets {
  hydraSystem: string
  kratosDefault: string
  kratosCookie: string
  /** The login hook's key, written into Kratos' hook config by config/kratos/render.sh. */
  hookKey: string
}

/** The compose stack's origins, as config/hydra/hydra.yml and config/kratos/kratos.yml name them. */
const SHIPPED_ORIGINS: Record<string, keyof Addresses> = {
  'http://127.0.0.1:4444': 'hydraPublic',
  'http://hydra:4445': 'hydraAdmin',
  'http://127.0.0.1:4433': 'kratosPublic',
  'http://kratos:4434': 'kratosAdmin',
  'http://127.0.0.1:4455': 'ui',
  'http://logout-relay:8080': 'relay'
}

/** Where the compose stack mounts config/kratos, and the directory itself. */
const SHIPPED_KRATOS_DIR = 'file:///etc/config/kratos/'
const KRATOS_CONFIG_DIR = `file://${join(root, 'config/kratos')}/`

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

function isObject (value: unknown): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Every string of the value with its shipped origin (or Kratos' config directory) replaced. */
function readdress (value: Json, addresses: Addresses, path: string): Json {
  if (typeof value === 'string') {
    if (value.startsWith(SHIPPED_KRATOS_DIR)) return KRATOS_CONFIG_DIR + value.slice(SHIPPED_KRATOS_DIR.length)
    if (!/^https?:\/\//.test(value)) return value
    const url = new URL(value)
    const name = SHIPPED_ORIGINS[url.origin]
    if (name === undefined) throw new Error(`${path} is ${value}: an address the end-to-end suite does not map (test/e2e/helpers/ory-config.ts)`)
    if (!value.startsWith(url.origin)) throw new Error(`${path} is ${value}: write its origin in lower case, as the suite maps it`)
    // The rest of the URL (path, query, a trailing slash or none) stays as shipped; only the origin is this run's.
    return new URL(addresses[name]).origin + value.slice(url.origin.length)
  }
  if (Array.isArray(value)) return value.map((item, i) => readdress(item, addresses, `${path}[${i}]`))
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, readdress(item, addresses, `${path}.${key}`)]))
  return value
}

function objectAt (value: Record<string, Json>, path: string): Record<string, Json> {
  let current: Record<string, Json> = value
  for (const key of path.split('.')) {
    const next = current[key] ?? {}
    if (!isObject(next)) throw new Error(`${path}: ${key} is not an object`)
    current[key] = next
    current = next
  }
  return current
}

/** The SQLite DSN of the shipped file with its path moved into `dir` (the query, `_fk=true&mode=rwc`, kept). */
function moveDsn (dsn: Json, dir: string, file: string): string {
  if (typeof dsn !== 'string' || !dsn.startsWith('sqlite://')) throw new Error(`the shipped dsn is not a SQLite file DSN: ${String(dsn)}`)
  const query = dsn.includes('?') ? dsn.slice(dsn.indexOf('?')) : ''
  return `sqlite://${join(dir, file)}${query}`
}

function listenOn (config: Record<string, Json>, part: 'public' | 'admin', origin: string): void {
  const serve = objectAt(config, `serve.${part}`)
  const url = new URL(origin)
  serve['host'] = url.hostname
  serve['port'] = Number(url.port)
}

/**
 * config/hydra/hydra.yml for one run (or `source`, another text of it): the project's own file with
 * only its addresses, ports, DSN and secrets changed.
 */
export function renderHydraConfig (addresses: Addresses, secrets: Secrets, dir: string, source = readFileSync(join(root, 'config/hydra/hydra.yml'), 'utf8')): Record<string, Json> {
  const shipped = parseYaml(source) as Json
  const config = readdress(shipped, addresses, 'hydra') as Record<string, Json>
  config['dsn'] = moveDsn(config['dsn'] ?? null, dir, 'hydra.sqlite')
  listenOn(config, 'public', addresses.hydraPublic)
  listenOn(config, 'admin', addresses.hydraAdmin)
  objectAt(config, 'secrets')['system'] = [secrets.hydraSystem]
  return config
}

/**
 * config/kratos/kratos.yml for one run: first rendered by the project's own config/kratos/render.sh
 * (the hook key's placeholder replaced, as the compose stack does), then only its addresses, ports,
 * DSN and secrets changed. The hook body and identity schema are the shipped files, read in place.
 */
export function renderKratosConfig (addresses: Addresses, secrets: Secrets, dir: string): Record<string, Json> {
  const rendered = join(dir, 'kratos.rendered.yml')
  const result = spawnSync('sh', [join(root, 'config/kratos/render.sh'), join(root, 'config/kratos/kratos.yml'), rendered], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LOGIN_HOOK_API_KEY: secrets.hookKey },
    encoding: 'utf8'
  })
  if (result.status !== 0) throw new Error(`config/kratos/render.sh exited ${String(result.status)}: ${result.stderr}`)
  const config = readdress(parseYaml(readFileSync(rendered, 'utf8')) as Json, addresses, 'kratos') as Record<string, Json>
  config['dsn'] = moveDsn(config['dsn'] ?? null, dir, 'kratos.sqlite')
  listenOn(config, 'public', addresses.kratosPublic)
  listenOn(config, 'admin', addresses.kratosAdmin)
  const secretsNode = objectAt(config, 'secrets')
  secretsNode['default'] = [secrets.kratosDefault]
  secretsNode['cookie'] = [secrets.kratosCookie]
  return config
}

/**
 * The dotted paths at which `rendered` differs from `shipped`, each with both values: what the suite
 * changed in the project's configuration.
 */
export function configChanges (shipped: unknown, rendered: unknown, path = ''): Array<{ path: string, shipped: unknown, rendered: unknown }> {
  // A section the shipped file does not have (Hydra's serve.public) counts key by key.
  if ((isObject(shipped) || shipped === undefined) && (isObject(rendered) || rendered === undefined) && shipped !== rendered) {
    shipped ??= {}
    rendered ??= {}
  }
  if (isObject(shipped) && isObject(rendered)) {
    const keys = new Set([...Object.keys(shipped), ...Object.keys(rendered)])
    return [...keys].flatMap((key) => configChanges(shipped[key], rendered[key], path === '' ? key : `${path}.${key}`))
  }
  if (Array.isArray(shipped) && Array.isArray(rendered) && shipped.length === rendered.length) {
    return shipped.flatMap((item, i) => configChanges(item, rendered[i], `${path}[${i}]`))
  }
  return JSON.stringify(shipped) === JSON.stringify(rendered) ? [] : [{ path, shipped, rendered }]
}

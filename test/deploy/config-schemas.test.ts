import t from 'tap'
import { at, copy, createValidators, readJson, readYaml, record } from '../helpers/deploy.js'

// The shipped configuration against Ory's published schemas (v26.2.0) and the Compose Specification.
// Each file also gets broken copies: a validator that accepts them would prove nothing.
const validate = createValidators()
const hydra = readYaml('config/hydra/hydra.yml')
const kratos = readYaml('config/kratos/kratos.yml')
const identity = readJson('config/kratos/identity.schema.json')
const compose = readYaml('docker-compose.yml')

/** A copy of `value` with `mutate` applied to it. */
function broken<T> (value: T, mutate: (copy: Record<string, unknown>) => void): T {
  const result = copy(value)
  mutate(result as Record<string, unknown>)
  return result
}

/** The object at a dotted path of a parsed copy, to change it in place. */
function node (value: unknown, path: string): Record<string, unknown> {
  const found = record(at(value, path))
  if (found === undefined) throw new Error(`${path} is not an object`)
  return found
}

t.test('config/hydra/hydra.yml is a valid Hydra configuration', async (t) => {
  t.same(validate.hydra(hydra), [])
  t.notSame(validate.hydra(broken(hydra, (c) => { c['issuer'] = 'http://127.0.0.1:4444/' })), [], 'a key Hydra does not have, at the top')
  t.notSame(validate.hydra(broken(hydra, (c) => { node(c, 'urls.self')['issuer'] = 4444 })), [], 'an issuer that is no string')
  t.notSame(validate.hydra(broken(hydra, (c) => { node(c, 'clients.http')['disallow_private_ip_ranges'] = 'no' })), [], 'a boolean as text')
  t.notSame(validate.hydra(broken(hydra, (c) => { node(c, 'secrets')['system'] = ['too-short'] })), [], 'a system secret under 16 characters')
  t.notSame(validate.hydra(broken(hydra, (c) => { node(c, 'serve.cookies')['same_site_mode'] = 'lax' })), [], 'an unknown SameSite mode')
})

t.test('config/kratos/kratos.yml is a valid Kratos configuration', async (t) => {
  t.same(validate.kratos(kratos), [])
  const hook = (c: unknown): Record<string, unknown> => {
    const hooks = at(c, 'selfservice.flows.login.after.password.hooks') as unknown[]
    return node(hooks[0], 'config')
  }
  t.notSame(validate.kratos(broken(kratos, (c) => { Reflect.deleteProperty(c, 'selfservice') })), [], 'no selfservice section')
  t.notSame(validate.kratos(broken(kratos, (c) => { Reflect.deleteProperty(hook(c), 'method') })), [], 'a web hook without its method')
  t.notSame(validate.kratos(broken(kratos, (c) => { node(hook(c), 'auth')['type'] = 'bearer' })), [], 'an auth type Kratos does not have')
  t.notSame(validate.kratos(broken(kratos, (c) => { node(hook(c), 'auth.config')['in'] = 'query' })), [], 'an api key in the query')
  t.notSame(validate.kratos(broken(kratos, (c) => { node(c, 'selfservice.flows.login.after')['magic_link'] = { hooks: [] } })), [], 'a login method Kratos does not have')
  t.notSame(validate.kratos(broken(kratos, (c) => {
    (at(c, 'selfservice.flows.login.after.password.hooks') as unknown[]).push({ hook: 'session' })
  })), [], 'the session hook after login (registration only)')
  t.notSame(validate.kratos(broken(kratos, (c) => { node(c, 'session.cookie')['persistent'] = 'yes' })), [], 'a boolean as text')
})

t.test('config/kratos/identity.schema.json is a valid identity schema', async (t) => {
  t.same(validate.identity(identity), [])
  t.notSame(validate.identity(broken(identity, (c) => { Reflect.deleteProperty(node(c, 'properties'), 'traits') })), [], 'no traits')
  t.notSame(validate.identity(broken(identity, (c) => { node(c, 'properties.traits')['properties'] = {} })), [], 'traits without a property')
  t.notSame(validate.identity(broken(identity, (c) => { node(c, 'properties.traits')['type'] = 'array' })), [], 'traits that are no object')
  t.notSame(validate.identity(broken(identity, (c) => { node(c, 'properties.traits.properties.email')['type'] = 'text' })), [], 'a type JSON Schema does not have')
})

t.test('docker-compose.yml follows the Compose Specification', async (t) => {
  t.same(validate.compose(compose), [])
  t.notSame(validate.compose(broken(compose, (c) => { node(c, 'services.kratos.depends_on.kratos-migrate')['condition'] = 'service_done' })), [], 'an unknown depends_on condition')
  t.notSame(validate.compose(broken(compose, (c) => { node(c, 'services.redis.healthcheck')['test'] = { cmd: 'redis-cli ping' } })), [], 'a healthcheck test that is no command')
  t.notSame(validate.compose(broken(compose, (c) => { node(c, 'services.logout-relay')['environment'] = 'REDIS_URL=redis://redis:6379' })), [], 'an environment that is neither list nor map')
  t.notSame(validate.compose(broken(compose, (c) => { node(c, 'services.hydra')['command_line'] = ['serve'] })), [], 'a key Compose does not have')
})

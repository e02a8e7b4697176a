import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { buildApp } from '../../src/app.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import {
  at, commandOf, copy, dependencies, execForm, mountSource, parseDockerfile, readJson, readText, readYaml, record, repoPath, root,
  serviceEnv, stageEnv, type ComposeFile, type ComposeService
} from '../helpers/deploy.js'

// Cross-checks of the example stack: each catches a wiring mistake that every file would survive on
// its own (each is valid against its schema). The checks return the problems they find; the shipped
// stack has none, and each check is shown to find the mistake it exists for.

/** The relay's routes, as its HTTP interface documents them. */
const HOOK_ROUTE = '/hooks/login'
const CREDENTIALS_ROUTE = '/hooks/credentials-changed'
const LOGOUT_ROUTE = '/backchannel-logout'
/** Hydra's own default ports, where its configuration sets none. */
const HYDRA_PORTS = { public: 4444, admin: 4445 }

interface Stack {
  compose: ComposeFile
  hydra: unknown
  kratos: unknown
  /** The client the register-client service registers. */
  client: Record<string, unknown>
  readme: string
}

const shipped: Stack = {
  compose: readYaml('docker-compose.yml') as ComposeFile,
  hydra: readYaml('config/hydra/hydra.yml'),
  kratos: readYaml('config/kratos/kratos.yml'),
  client: readJson('config/hydra/example-client.json') as Record<string, unknown>,
  // The README and the pages it links: what an operator copies from.
  readme: ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)].map(readText).join('\n')
}
const kratosSchema = readJson('test/fixtures/ory/kratos/config.schema.json')
const dockerfile = parseDockerfile(readText('Dockerfile'))
const runtimeStage = dockerfile.stages.at(-1)

// The relay itself answers which routes exist: a renamed route fails these checks.
const app = await buildApp(loadConfig({ LOG_LEVEL: 'silent' }), { startWorker: false })
t.teardown(() => app.close())
t.ok(app.hasRoute({ method: 'POST', url: HOOK_ROUTE }), `the relay serves POST ${HOOK_ROUTE}`)
t.ok(app.hasRoute({ method: 'POST', url: LOGOUT_ROUTE }), `the relay serves POST ${LOGOUT_ROUTE}`)
t.ok(app.hasRoute({ method: 'POST', url: CREDENTIALS_ROUTE }), `the relay serves POST ${CREDENTIALS_ROUTE}`)

function findService (stack: Stack, what: string, test: (service: ComposeService) => boolean): [string, ComposeService] {
  const found = Object.entries(stack.compose.services).filter(([, service]) => test(service))
  if (found.length !== 1 || found[0] === undefined) throw new Error(`expected one ${what} service, found ${found.length}`)
  return found[0]
}

const image = (service: ComposeService, name: string): boolean => service.image?.split(':')[0] === name
const services = {
  relay: (stack: Stack) => findService(stack, 'relay', (s) => s.build !== undefined),
  hydra: (stack: Stack) => findService(stack, 'hydra', (s) => image(s, 'oryd/hydra') && commandOf(s)[0] === 'serve'),
  kratos: (stack: Stack) => findService(stack, 'kratos', (s) => image(s, 'oryd/kratos') && commandOf(s)[0] === 'serve'),
  ui: (stack: Stack) => findService(stack, 'self-service UI', (s) => image(s, 'oryd/kratos-selfservice-ui-node')),
  exampleApp: (stack: Stack) => findService(stack, 'example app', (s) => commandOf(s)[0] === 'perform'),
  registerClient: (stack: Stack) => findService(stack, 'client registration', (s) => commandOf(s).join(' ').includes('oauth2-client')),
  init: (stack: Stack) => findService(stack, 'init', (s) => commandOf(s).join(' ').includes('render.sh')),
  redis: (stack: Stack) => findService(stack, 'redis', (s) => image(s, 'redis'))
}

/** Every `${VAR…}` the compose file interpolates, set to fresh values: the stack as a user configures it. */
function hostEnvSetting (stack: Stack): Record<string, string> {
  const names = new Set([...JSON.stringify(stack.compose).matchAll(/\$\{([A-Za-z_]\w*)/g)].map((match) => match[1] ?? ''))
  return Object.fromEntries([...names].map((name) => [name, randomBytes(18).toString('hex')]))
}
/** The host environments every check runs under: none set (the example's defaults), and all set. */
const hostEnvs = (stack: Stack): Array<Record<string, string>> => [{}, hostEnvSetting(stack)]

function relayEnv (stack: Stack, hostEnv: Record<string, string> = {}): Record<string, string> {
  return serviceEnv(services.relay(stack)[1], hostEnv)
}

function relayPort (stack: Stack): number {
  return Number(relayEnv(stack)['PORT'] ?? (runtimeStage !== undefined ? stageEnv(runtimeStage)['PORT'] : undefined) ?? 8080)
}

/** The problems of one URL against what it must be. */
function checkUrl (label: string, raw: unknown, want: { host?: string, port?: number, path?: string, origin?: string }): string[] {
  let url: URL
  try {
    url = new URL(String(raw))
  } catch {
    return [`${label}: "${String(raw)}" is not a URL`]
  }
  const problems: string[] = []
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  if (want.host !== undefined && url.hostname !== want.host) problems.push(`${label}: host ${url.hostname}, expected ${want.host}`)
  if (want.port !== undefined && port !== want.port) problems.push(`${label}: port ${port}, expected ${want.port}`)
  if (want.path !== undefined && url.pathname !== want.path) problems.push(`${label}: path ${url.pathname}, expected ${want.path}`)
  if (want.origin !== undefined && url.origin !== want.origin) problems.push(`${label}: origin ${url.origin}, expected ${want.origin}`)
  return problems
}

/** The relay's compose environment is a configuration the relay accepts, however the host sets it. */
function checkRelayConfiguration (stack: Stack): string[] {
  return hostEnvs(stack).flatMap((hostEnv) => {
    try {
      loadConfig(relayEnv(stack, hostEnv))
      return []
    } catch (err) {
      return err instanceof ConfigError ? err.problems.map((problem) => `relay environment: ${problem}`) : [String(err)]
    }
  })
}

type Hook = Record<string, unknown>

/** The relay's Kratos hooks: each known by its template, and the route it must call. */
const HOOKS = {
  login: { label: 'relay hook', template: 'config/kratos/login-hook.jsonnet', route: HOOK_ROUTE },
  credentials: { label: 'credentials hook', template: 'config/kratos/credentials-changed.jsonnet', route: CREDENTIALS_ROUTE }
} as const
type HookKind = keyof typeof HOOKS

/** Kratos' hooks that are one of the relay's (the login hook by default): the web hooks whose body is its template. */
function isRelayHook (stack: Stack, hook: unknown, kind: HookKind = 'login'): boolean {
  const body = at(hook, 'config.body')
  if (at(hook, 'hook') !== 'web_hook' || typeof body !== 'string' || !body.startsWith('file://')) return false
  const source = mountSource(services.kratos(stack)[1], new URL(body).pathname)
  return source !== undefined && 'bind' in source && source.bind === repoPath(HOOKS[kind].template)
}

/** The relay hooks of kratos.yml of one kind, or of both, each once (a YAML alias repeats one hook in several lists). */
function relayHooks (stack: Stack, kind?: HookKind): Hook[] {
  const kinds = kind === undefined ? Object.keys(HOOKS) as HookKind[] : [kind]
  const found = new Set<Hook>()
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk)
    else if (record(value) !== undefined) {
      if (kinds.some((candidate) => isRelayHook(stack, value, candidate))) found.add(value as Hook)
      else Object.values(value as object).forEach(walk)
    }
  }
  walk(stack.kratos)
  return [...found]
}

/** Each relay hook calls its route of the relay, synchronously, with a key from the environment. */
function checkHookConfig (stack: Stack): string[] {
  return (Object.keys(HOOKS) as HookKind[]).flatMap((kind) => checkHooksOf(stack, kind))
}

function checkHooksOf (stack: Stack, kind: HookKind): string[] {
  const hooks = relayHooks(stack, kind)
  if (hooks.length === 0) return [`kratos.yml has no web hook with ${HOOKS[kind].template} as its body`]
  const [relayName] = services.relay(stack)
  return hooks.flatMap((hook, index) => {
    const label = `${HOOKS[kind].label} #${index + 1}`
    const problems = checkUrl(`${label} url`, at(hook, 'config.url'), { host: relayName, port: relayPort(stack), path: HOOKS[kind].route })
    if (at(hook, 'config.method') !== 'POST') problems.push(`${label}: method ${String(at(hook, 'config.method'))}, expected POST`)
    // Kratos must wait for the answer: a login the relay could not index must fail, not pass silently;
    // a credentials change the relay could not record must not look done.
    if (at(hook, 'config.response.ignore') === true) problems.push(`${label}: response.ignore makes the hook asynchronous`)
    // With either, Kratos runs a settings hook before it saves the change instead of after it.
    if (kind === 'credentials' && (at(hook, 'config.response.parse') === true || at(hook, 'config.can_interrupt') === true)) {
      problems.push(`${label}: response.parse or can_interrupt runs it before Kratos saves the new credential`)
    }
    const auth = at(hook, 'config.auth')
    if (at(auth, 'type') !== 'api_key' || at(auth, 'config.in') !== 'header' || String(at(auth, 'config.name')).toLowerCase() !== 'authorization') {
      problems.push(`${label}: auth must be an api_key in the Authorization header`)
    }
    if (!/^Bearer \$\{[A-Za-z_]\w*\}$/.test(String(at(auth, 'config.value')))) {
      problems.push(`${label}: auth value must be "Bearer \${VARIABLE}", the key coming from the environment`)
    }
    return problems
  })
}

/** The key Kratos sends is one the relay accepts: both come from the same host variable. */
function checkHookKey (stack: Stack): string[] {
  const [initName, init] = services.init(stack)
  const [kratosName, kratos] = services.kratos(stack)
  const problems: string[] = []

  // The Kratos that serves reads the copy that init renders from config/kratos/kratos.yml.
  const command = commandOf(init).join(' ')
  const render = /render\.sh\s+(\S+)\s+(\S+)/.exec(command)
  const configPath = commandOf(kratos)[commandOf(kratos).indexOf('--config') + 1] ?? ''
  const served = mountSource(kratos, configPath)
  const source = render?.[1] !== undefined ? mountSource(init, render[1]) : undefined
  const rendered = render?.[2] !== undefined ? mountSource(init, render[2]) : undefined
  if (source === undefined || !('bind' in source) || source.bind !== repoPath('config/kratos/kratos.yml')) {
    problems.push(`${initName} does not render config/kratos/kratos.yml`)
  }
  if (served === undefined || rendered === undefined || JSON.stringify(served) !== JSON.stringify(rendered)) {
    problems.push(`${kratosName} serves --config ${configPath}, which is not the file ${initName} renders`)
  }
  if (!dependsOn(stack, kratosName, initName, 'service_completed_successfully')) {
    problems.push(`${kratosName} does not wait for ${initName} to complete`)
  }

  for (const hook of relayHooks(stack)) {
    const variable = /^Bearer \$\{(\w+)\}$/.exec(String(at(hook, 'config.auth.config.value')))?.[1]
    if (variable === undefined) continue
    for (const hostEnv of hostEnvs(stack)) {
      const key = serviceEnv(init, hostEnv)[variable]
      const setting = Object.keys(hostEnv).length > 0 ? 'with the variables set' : 'on the defaults'
      if (key === undefined) {
        problems.push(`${initName} has no ${variable} to render the hook's key from`)
        break
      }
      let accepted: string[] = []
      try {
        accepted = loadConfig(relayEnv(stack, hostEnv)).loginHook.apiKeys
      } catch {}
      if (!accepted.includes(key)) problems.push(`${setting}, the relay's LOGIN_HOOK_API_KEYS does not hold the key Kratos sends (${variable})`)
    }
  }
  return problems
}

/** Whether `from` waits, directly or through others, for `to` with `condition`. */
function dependsOn (stack: Stack, from: string, to: string, condition: string, seen = new Set<string>()): boolean {
  if (seen.has(from)) return false
  seen.add(from)
  const direct = dependencies(stack.compose.services[from] ?? {})
  if (direct[to] === condition) return true
  return Object.keys(direct).some((next) => dependsOn(stack, next, to, condition, seen))
}

function methodsOf (definition: string): string[] {
  const properties = record(at(kratosSchema, `definitions.${definition}.properties`)) ?? {}
  return Object.keys(properties).filter((name) => name !== 'hooks' && name !== 'default_browser_return_url')
}

/** Whether a self-service method is on, counting Kratos' defaults: a method left out may still be enabled. */
function methodEnabled (kratos: unknown, method: string): boolean {
  const settings = at(kratos, `selfservice.methods.${method}`)
  if (method === 'code' && at(settings, 'passwordless_enabled') === true) return true
  const explicit = at(settings, 'enabled')
  if (typeof explicit === 'boolean') return explicit
  return at(kratosSchema, `properties.selfservice.properties.methods.properties.${method}.properties.enabled.default`) === true
}

/** The hooks Kratos runs after a method: its own list, or the global list when it has none. */
function effectiveHooks (after: unknown, method: string): unknown[] {
  const own = at(after, `${method}.hooks`)
  if (Array.isArray(own) && own.length > 0) return own
  const global = at(after, 'hooks')
  return Array.isArray(global) ? global : []
}

/** Every enabled login method runs the hook; a registration that logs in runs it before `session`. */
function checkHookCoverage (stack: Stack): string[] {
  const problems: string[] = []
  const login = at(stack.kratos, 'selfservice.flows.login.after')
  for (const method of methodsOf('selfServiceAfterLogin').filter((name) => methodEnabled(stack.kratos, name))) {
    if (!effectiveHooks(login, method).some((hook) => isRelayHook(stack, hook))) problems.push(`login method ${method} is enabled but does not run the relay hook`)
  }
  if (at(stack.kratos, 'selfservice.flows.registration.enabled') === false) return problems
  const registration = at(stack.kratos, 'selfservice.flows.registration.after')
  for (const method of methodsOf('selfServiceAfterRegistration').filter((name) => methodEnabled(stack.kratos, name))) {
    const hooks = effectiveHooks(registration, method)
    const session = hooks.findIndex((hook) => at(hook, 'hook') === 'session')
    const relay = hooks.findIndex((hook) => isRelayHook(stack, hook))
    if (session >= 0 && (relay < 0 || relay > session)) problems.push(`registration method ${method} logs in (session hook) without the relay hook before it`)
  }
  return problems
}

/**
 * Every enabled credential method of the settings flow, and the recovery flow (on or not: wired ahead),
 * runs the relay's credentials hook and then `revoke_active_sessions`: the relay ends the Hydra login
 * sessions, Kratos the other Kratos sessions.
 */
function checkCredentialsCoverage (stack: Stack): string[] {
  const settings = at(stack.kratos, 'selfservice.flows.settings.after')
  // profile changes traits, not a credential.
  const methods = methodsOf('selfServiceAfterSettings').filter((name) => name !== 'profile' && methodEnabled(stack.kratos, name))
  const flows: Array<[string, unknown[]]> = methods.map((method) => [`settings method ${method}`, effectiveHooks(settings, method)])
  const recovery = at(stack.kratos, 'selfservice.flows.recovery.after.hooks')
  flows.push(['recovery', Array.isArray(recovery) ? recovery : []])
  return flows.flatMap(([label, hooks]) => {
    const relay = hooks.findIndex((hook) => isRelayHook(stack, hook, 'credentials'))
    const revoke = hooks.findIndex((hook) => at(hook, 'hook') === 'revoke_active_sessions')
    if (relay < 0) return [`${label} does not run the relay's credentials hook`]
    if (revoke < 0) return [`${label} runs the credentials hook without revoke_active_sessions after it: the other Kratos sessions would stay`]
    if (revoke < relay) return [`${label} runs revoke_active_sessions before the relay's credentials hook`]
    return []
  })
}

/**
 * With its own Kratos link (`urls.identity_provider.url`), Hydra disables the Kratos session tied to
 * each login session it revokes: after a credentials change, the one the user is in too. The relay
 * ends Kratos sessions itself and needs none of it.
 */
function checkHydraKratosLink (stack: Stack): string[] {
  if (at(stack.hydra, 'urls.identity_provider.url') === undefined || relayHooks(stack, 'credentials').length === 0) return []
  return ['hydra urls.identity_provider.url is set: Hydra would end the Kratos session tied to each sid the credentials hook revokes, the current one included']
}

/** Hydra sends back-channel logouts only for remembered logins; Kratos remembers when this is true. */
function checkRemember (stack: Stack): string[] {
  return at(stack.kratos, 'session.cookie.persistent') === false ? ['kratos session.cookie.persistent is false: Hydra would not remember logins, nor send their logouts'] : []
}

/** Hydra reaches the relay, and Kratos the hook, on private addresses: allowed, or listed as exceptions. */
function checkPrivateAddresses (stack: Stack): string[] {
  const problems: string[] = []
  const allows = (config: unknown, url: unknown): boolean => at(config, 'clients.http.disallow_private_ip_ranges') !== true ||
    ((at(config, 'clients.http.private_ip_exception_urls') ?? []) as unknown[]).includes(url)
  if (!allows(stack.hydra, stack.client['backchannel_logout_uri'])) problems.push('hydra blocks private addresses and does not list the backchannel_logout_uri as an exception')
  for (const hook of relayHooks(stack)) {
    if (!allows(stack.kratos, at(hook, 'config.url'))) problems.push('kratos blocks private addresses and does not list the hook URL as an exception')
  }
  return problems
}

/** The relay accepts Hydra's tokens (same issuer, keys from the hydra service) and reaches both admin APIs. */
function checkRelayToOry (stack: Stack): string[] {
  const env = relayEnv(stack)
  const [hydraName] = services.hydra(stack)
  const [kratosName] = services.kratos(stack)
  const issuer = at(stack.hydra, 'urls.self.issuer')
  const problems: string[] = []
  if (env['OIDC_ISSUER'] !== issuer) problems.push(`relay OIDC_ISSUER "${String(env['OIDC_ISSUER'])}" is not hydra's urls.self.issuer "${String(issuer)}" exactly`)
  const hydraPublic = Number(at(stack.hydra, 'serve.public.port') ?? HYDRA_PORTS.public)
  const hydraAdmin = Number(at(stack.hydra, 'serve.admin.port') ?? HYDRA_PORTS.admin)
  const kratosAdmin = Number(at(stack.kratos, 'serve.admin.port') ?? 4434)
  problems.push(...checkUrl('relay OIDC_JWKS_URL', env['OIDC_JWKS_URL'], { host: hydraName, port: hydraPublic, path: '/.well-known/jwks.json' }))
  problems.push(...checkUrl('relay HYDRA_ADMIN_URL', env['HYDRA_ADMIN_URL'], { host: hydraName, port: hydraAdmin }))
  problems.push(...checkUrl('relay KRATOS_ADMIN_URL', env['KRATOS_ADMIN_URL'], { host: kratosName, port: kratosAdmin }))
  problems.push(...checkUrl('kratos oauth2_provider.url', at(stack.kratos, 'oauth2_provider.url'), { host: hydraName, port: hydraAdmin }))
  return problems
}

/** The registered client sends its logouts to the relay, and the example app is that client. */
function checkClient (stack: Stack): string[] {
  const [relayName] = services.relay(stack)
  const [registerName, register] = services.registerClient(stack)
  const [appName, exampleApp] = services.exampleApp(stack)
  const problems = checkUrl('client backchannel_logout_uri', stack.client['backchannel_logout_uri'], { host: relayName, port: relayPort(stack), path: LOGOUT_ROUTE })

  const file = /--file\s+(\S+)/.exec(commandOf(register).join(' '))?.[1]
  const source = file !== undefined ? mountSource(register, file) : undefined
  if (source === undefined || !('bind' in source) || source.bind !== repoPath('config/hydra/example-client.json')) {
    problems.push(`${registerName} does not register config/hydra/example-client.json`)
  }
  const args = commandOf(exampleApp)
  const flag = (name: string): string | undefined => args[args.indexOf(name) + 1]
  if (flag('--client-id') !== stack.client['client_id']) problems.push(`${appName} is not client ${String(stack.client['client_id'])}`)
  if (flag('--client-secret') !== stack.client['client_secret']) problems.push(`${appName}'s secret is not the registered one`)
  const callback = `http://127.0.0.1:${flag('--port') ?? ''}/callback`
  if (!((stack.client['redirect_uris'] ?? []) as unknown[]).includes(callback)) problems.push(`the client's redirect_uris lack ${appName}'s ${callback}`)
  if (!publishes(exampleApp, Number(flag('--port')))) problems.push(`${appName}'s port ${String(flag('--port'))} is not published on 127.0.0.1`)
  const redirects = ((stack.client['redirect_uris'] ?? []) as unknown[]).map((uri) => new URL(String(uri)))
  const postLogout = (stack.client['post_logout_redirect_uris'] ?? []) as unknown[]
  if (postLogout.length === 0) problems.push('the client has no post_logout_redirect_uris')
  // Hydra refuses a client whose post-logout URI shares scheme, host and port with none of its redirect URIs.
  for (const uri of postLogout.map((item) => new URL(String(item)))) {
    if (!redirects.some((redirect) => redirect.protocol === uri.protocol && redirect.host === uri.host)) problems.push(`post_logout_redirect_uri ${uri.href} matches no redirect URI's scheme, host and port`)
  }
  if (!dependsOn(stack, appName, registerName, 'service_completed_successfully')) problems.push(`${appName} does not wait for ${registerName}`)
  return problems
}

/** The README's URLs of the relay name its routes, and the example stack's URLs are published ports. */
function checkDocs (stack: Stack): string[] {
  const problems: string[] = []
  // Placeholders such as https://<slug>.… are no URLs: skipped.
  const urls = [...stack.readme.matchAll(/https?:\/\/[^\s"'`<>)\\]+/g)].flatMap(([url]) => URL.canParse(url) ? [new URL(url)] : [])
  const relayUrls = urls.filter((url) => Number(url.port) === relayPort(stack) && url.pathname !== '/')
  for (const route of [LOGOUT_ROUTE, HOOK_ROUTE, CREDENTIALS_ROUTE]) {
    if (!relayUrls.some((url) => url.pathname === route)) problems.push(`README.md shows no URL of the route ${route}`)
  }
  for (const url of relayUrls) {
    // An identity id in a path, or a shell variable holding one, stands for the route's :id parameter.
    const route = url.pathname.replace(/\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\$[A-Z_]+)(?=\/|$)/g, '/:id')
    if (!['POST', 'GET'].some((method) => app.hasRoute({ method, url: route }))) problems.push(`README.md: ${url.href} is no route of the relay`)
  }
  for (const [, path] of stack.readme.matchAll(/path: (\/\S+?)[,\s}]/g)) {
    if (!app.hasRoute({ method: 'GET', url: path ?? '' })) problems.push(`README.md: the probe path ${String(path)} is no route of the relay`)
  }
  const start = stack.readme.indexOf('## Try it: Hydra, Kratos and the relay on one machine')
  const section = stack.readme.slice(start, stack.readme.indexOf('\n## ', start + 1))
  const published = Object.values(stack.compose.services).flatMap((service) => (service.ports ?? []).map(String))
  for (const [, port] of section.matchAll(/http:\/\/127\.0\.0\.1:(\d+)/g)) {
    if (!published.includes(`127.0.0.1:${String(port)}:${String(port)}`)) problems.push(`README.md: the stack publishes nothing on 127.0.0.1:${String(port)}`)
  }
  return problems
}

/** Whether a service publishes `port` on the host's loopback, under the same number. */
function publishes (service: ComposeService, port: number): boolean {
  return (service.ports ?? []).some((entry) => typeof entry === 'string' && entry === `127.0.0.1:${port}:${port}`)
}

/** Hydra's login, consent and logout URLs and Kratos' flows are the self-service UI, as the browser reaches it. */
function checkUi (stack: Stack): string[] {
  const [uiName, ui] = services.ui(stack)
  const [hydraName] = services.hydra(stack)
  const [kratosName] = services.kratos(stack)
  const env = serviceEnv(ui)
  const port = Number(env['PORT'] ?? 3000)
  const origin = `http://127.0.0.1:${port}`
  const problems: string[] = []
  if (!publishes(ui, port)) problems.push(`${uiName}'s port ${port} is not published on 127.0.0.1`)
  for (const [key, path] of [['login', '/login'], ['consent', '/consent'], ['logout', '/logout']] as const) {
    problems.push(...checkUrl(`hydra urls.${key}`, at(stack.hydra, `urls.${key}`), { origin, path }))
  }
  for (const flow of ['login', 'registration', 'settings', 'error']) {
    problems.push(...checkUrl(`kratos ${flow} ui_url`, at(stack.kratos, `selfservice.flows.${flow}.ui_url`), { origin, path: `/${flow}` }))
  }
  problems.push(...checkUrl(`${uiName} HYDRA_ADMIN_URL`, env['HYDRA_ADMIN_URL'], { host: hydraName, port: Number(at(stack.hydra, 'serve.admin.port') ?? HYDRA_PORTS.admin) }))
  problems.push(...checkUrl(`${uiName} KRATOS_PUBLIC_URL`, env['KRATOS_PUBLIC_URL'], { host: kratosName, port: Number(at(stack.kratos, 'serve.public.port') ?? 4433) }))
  if (env['KRATOS_BROWSER_URL'] !== at(stack.kratos, 'serve.public.base_url')) problems.push(`${uiName} KRATOS_BROWSER_URL is not kratos' serve.public.base_url`)
  return problems
}

/** Each service starts once what it needs is there; the one-shots run to completion first. */
function checkStartup (stack: Stack): string[] {
  const problems: string[] = []
  const all = stack.compose.services
  for (const [name, service] of Object.entries(all)) {
    for (const [target, condition] of Object.entries(dependencies(service))) {
      const dependency = all[target]
      if (dependency === undefined) {
        problems.push(`${name} depends on ${target}, which is no service`)
        continue
      }
      if (condition === 'service_started') problems.push(`${name} starts with ${target} merely started; wait for it to be healthy or complete`)
      if (condition === 'service_healthy' && (dependency.healthcheck?.test === undefined || dependency.healthcheck.disable === true)) {
        problems.push(`${name} waits for ${target} to be healthy, but ${target} has no healthcheck`)
      }
      if (condition === 'service_completed_successfully' && dependency.restart !== undefined && dependency.restart !== 'no') {
        problems.push(`${name} waits for ${target} to complete, but ${target} restarts (${dependency.restart})`)
      }
    }
    if (dependsOn(stack, name, name, 'service_healthy') || dependsOn(stack, name, name, 'service_completed_successfully')) {
      problems.push(`${name} depends on itself`)
    }
  }

  // Hydra and Kratos serve the database their migration one-shot migrated.
  for (const [[serverName, server], configuration] of [[services.hydra(stack), stack.hydra], [services.kratos(stack), stack.kratos]] as const) {
    const dsn = String(at(configuration, 'dsn'))
    const file = /^sqlite:\/\/([^?]+)/.exec(dsn)?.[1]
    const migrations = Object.entries(all).filter(([, s]) => s.image === server.image && commandOf(s)[0] === 'migrate')
    if (file === undefined) {
      problems.push(`${serverName}: dsn ${dsn} is not a SQLite file`)
      continue
    }
    if (migrations.length !== 1) problems.push(`${serverName}: expected one migration one-shot, found ${migrations.length}`)
    for (const [migrateName, migrate] of migrations) {
      if (!dependsOn(stack, serverName, migrateName, 'service_completed_successfully')) problems.push(`${serverName} does not wait for ${migrateName} to complete`)
      const served = mountSource(server, file)
      if (served === undefined || !('volume' in served)) problems.push(`${serverName}'s database ${file} is not on a volume`)
      else if (JSON.stringify(mountSource(migrate, file)) !== JSON.stringify(served)) problems.push(`${migrateName} migrates another ${file} than ${serverName} serves`)
    }
  }

  const [relayName, relay] = services.relay(stack)
  const [redisName] = services.redis(stack)
  const [hydraName] = services.hydra(stack)
  if (dependencies(relay)[redisName] !== 'service_healthy') problems.push(`${relayName} does not wait for ${redisName} to be healthy`)
  if (dependencies(relay)[hydraName] !== 'service_healthy') problems.push(`${relayName} does not wait for ${hydraName} to be healthy`)
  if (dependencies(services.registerClient(stack)[1])[hydraName] !== 'service_healthy') problems.push(`the client registration does not wait for ${hydraName}`)
  // The compose healthcheck is the image's own, only polled faster.
  const imageCheck = runtimeStage?.instructions.find((instruction) => instruction.keyword === 'HEALTHCHECK')
  if (imageCheck === undefined || JSON.stringify(relay.healthcheck?.test) !== JSON.stringify(['CMD', ...execForm(imageCheck.value)])) {
    problems.push(`${relayName}'s healthcheck is not the Dockerfile's HEALTHCHECK`)
  }
  return problems
}

/** Redis keeps the queue across restarts: AOF on, data on a volume. */
function checkRedis (stack: Stack): string[] {
  const [name, redis] = services.redis(stack)
  const command = commandOf(redis)
  const problems: string[] = []
  if (command[command.indexOf('--appendonly') + 1] !== 'yes') problems.push(`${name} runs without --appendonly yes`)
  const data = mountSource(redis, '/data')
  if (data === undefined || !('volume' in data)) problems.push(`${name}'s /data is not a volume`)
  if (!/^redis:7(\.|-|$)/.test(redis.image ?? '')) problems.push(`${name} is not Redis 7`)
  return problems
}

/** The Ory images are the release the configuration was validated against; the files Kratos reads exist. */
function checkImagesAndFiles (stack: Stack): string[] {
  const problems: string[] = []
  for (const [name, service] of Object.entries(stack.compose.services)) {
    if (service.image?.startsWith('oryd/') === true && !service.image.endsWith(':v26.2.0')) problems.push(`${name} runs ${service.image}, not v26.2.0`)
  }
  const [kratosName, kratos] = services.kratos(stack)
  const identitySchemas = (at(stack.kratos, 'identity.schemas') ?? []) as unknown[]
  for (const url of [...identitySchemas.map((schema) => at(schema, 'url')), ...relayHooks(stack).map((hook) => at(hook, 'config.body'))]) {
    const path = typeof url === 'string' && url.startsWith('file://') ? new URL(url).pathname : undefined
    const source = path !== undefined ? mountSource(kratos, path) : undefined
    if (source === undefined || !('bind' in source) || !existsSync(source.bind)) problems.push(`${kratosName} cannot read ${String(url)}`)
  }
  return problems
}

const checks = {
  checkRelayConfiguration,
  checkHookConfig,
  checkHookKey,
  checkHookCoverage,
  checkCredentialsCoverage,
  checkHydraKratosLink,
  checkRemember,
  checkPrivateAddresses,
  checkRelayToOry,
  checkClient,
  checkDocs,
  checkUi,
  checkStartup,
  checkRedis,
  checkImagesAndFiles
}

t.test('the shipped stack is wired without a mistake', async (t) => {
  for (const [name, check] of Object.entries(checks)) t.same(check(shipped), [], name)
})

/** A copy of the shipped stack with `mutate` applied. */
function variant (mutate: (stack: Stack) => void): Stack {
  const stack = copy(shipped)
  mutate(stack)
  return stack
}
const service = (stack: Stack, name: string): ComposeService => {
  const found = stack.compose.services[name]
  if (found === undefined) throw new Error(`no service ${name}`)
  return found
}
const env = (stack: Stack, name: string): Record<string, string> => service(stack, name).environment as Record<string, string>
const hookOf = (stack: Stack, kind: HookKind = 'login'): Hook => {
  const hook = relayHooks(stack, kind)[0]
  if (hook === undefined) throw new Error('no relay hook')
  return hook
}
const hookConfig = (stack: Stack, kind: HookKind = 'login'): Record<string, unknown> => hookOf(stack, kind)['config'] as Record<string, unknown>
const authConfig = (stack: Stack): Record<string, unknown> => at(hookConfig(stack), 'auth.config') as Record<string, unknown>
/** A Compose variable reference, `${NAME}` or `${NAME:-fallback}`. */
const variable = (name: string, fallback?: string): string => fallback === undefined ? `\${${name}}` : `\${${name}:-${fallback}}`
const loginAfter = (stack: Stack): Record<string, unknown> => at(stack.kratos, 'selfservice.flows.login.after') as Record<string, unknown>
const settingsAfter = (stack: Stack): Record<string, unknown> => at(stack.kratos, 'selfservice.flows.settings.after') as Record<string, unknown>
const recoveryAfter = (stack: Stack): Record<string, unknown> => at(stack.kratos, 'selfservice.flows.recovery.after') as Record<string, unknown>

/** Asserts that `check` finds a problem in the variant, one that matches `pattern`. */
function finds (t: Test, check: (stack: Stack) => string[], stack: Stack, pattern: RegExp, message: string): void {
  const problems = check(stack)
  t.ok(problems.some((problem) => pattern.test(problem)), `${message}: ${problems.join('; ') || 'no problem found'}`)
}

t.test('the relay hook: route, service, port, method, synchronous, key from the environment', async (t) => {
  finds(t, checkHookConfig, variant((s) => { hookConfig(s)['url'] = 'http://logout-relay:8080/hooks/logins' }), /path \/hooks\/logins/, 'a path the relay does not serve')
  finds(t, checkHookConfig, variant((s) => { hookConfig(s)['url'] = 'http://relay:8080/hooks/login' }), /host relay/, 'a host that is no service')
  finds(t, checkHookConfig, variant((s) => { hookConfig(s)['url'] = 'http://logout-relay:8081/hooks/login' }), /port 8081/, 'a port the relay does not listen on')
  finds(t, checkHookConfig, variant((s) => { env(s, 'logout-relay')['PORT'] = '9090' }), /port 8080, expected 9090/, 'the relay moved to another port')
  finds(t, checkHookConfig, variant((s) => { hookConfig(s)['method'] = 'PUT' }), /method PUT/, 'a method the route does not take')
  finds(t, checkHookConfig, variant((s) => { hookConfig(s)['response'] = { ignore: true } }), /asynchronous/, 'a hook Kratos does not wait for')
  finds(t, checkHookConfig, variant((s) => { (hookConfig(s)['auth'] as Hook)['config'] = { name: 'X-Api-Key', value: 'k', in: 'header' } }), /Authorization header/, 'the key in another header')
  finds(t, checkHookConfig, variant((s) => { authConfig(s)['value'] = 'Bearer 0123456789abcdef' }), /from the environment/, 'a key written into the file')
})

t.test('the hook key: Kratos sends one the relay accepts, on the defaults and when set', async (t) => {
  const exampleKey = 'example-login-hook-key-not-for-production'
  finds(t, checkHookKey, variant((s) => { env(s, 'logout-relay')['LOGIN_HOOK_API_KEYS'] = variable('RELAY_HOOK_KEY', exampleKey) }), /with the variables set/, 'the relay reads another variable')
  finds(t, checkHookKey, variant((s) => { env(s, 'init')['LOGIN_HOOK_API_KEY'] = variable('LOGIN_HOOK_API_KEY', 'another-default-key-0123456789') }), /on the defaults/, 'different defaults on the two sides')
  finds(t, checkHookKey, variant((s) => { authConfig(s)['value'] = `Bearer ${variable('HOOK_KEY')}` }), /no HOOK_KEY/, 'the file names a variable init does not have')
  finds(t, checkHookKey, variant((s) => { service(s, 'kratos').command = ['serve', '--dev', '--config', '/etc/config/kratos/kratos.yml'] }), /not the file init renders/, 'Kratos serving the unrendered file')
  finds(t, checkHookKey, variant((s) => {
    service(s, 'kratos').depends_on = { 'kratos-migrate': { condition: 'service_completed_successfully' } }
    service(s, 'kratos-migrate').depends_on = {}
  }), /does not wait for init/, 'Kratos starting before its configuration is written')
})

t.test('every enabled login method carries the hook; registration runs it before session', async (t) => {
  finds(t, checkHookCoverage, variant((s) => { (at(s.kratos, 'selfservice.methods') as Hook)['webauthn'] = { enabled: true } }), /login method webauthn/, 'a method enabled without the hook')
  finds(t, checkHookCoverage, variant((s) => { Reflect.deleteProperty(loginAfter(s), 'code') }), /login method code/, 'code, enabled by default, without the hook')
  finds(t, checkHookCoverage, variant((s) => { loginAfter(s)['password'] = { hooks: [{ hook: 'revoke_active_sessions' }] } }), /login method password/, 'a method list that replaces the hook')
  finds(t, checkHookCoverage, variant((s) => {
    const password = at(s.kratos, 'selfservice.flows.registration.after.password') as Hook
    password['hooks'] = [...(password['hooks'] as unknown[])].reverse()
  }), /registration method password/, 'session before the hook')
  // A method without its own list runs the global one: the hook there covers it.
  t.same(checkHookCoverage(variant((s) => {
    const hooks = at(s.kratos, 'selfservice.flows.login.after.password.hooks')
    loginAfter(s)['hooks'] = hooks
    Reflect.deleteProperty(loginAfter(s), 'password')
    Reflect.deleteProperty(loginAfter(s), 'code')
  })), [], 'the hook in the global list covers methods without a list')
  t.same(checkHookCoverage(variant((s) => { (at(s.kratos, 'selfservice.methods') as Hook)['code'] = { enabled: false }; Reflect.deleteProperty(loginAfter(s), 'code') })), [], 'a disabled method needs no hook')
})

t.test('the credentials hook: its route, synchronous, after Kratos saved the change', async (t) => {
  finds(t, checkHookConfig, variant((s) => { hookConfig(s, 'credentials')['url'] = 'http://logout-relay:8080/hooks/login' }), /credentials hook #1 url: path \/hooks\/login, expected \/hooks\/credentials-changed/, 'the login hook\'s route')
  finds(t, checkHookConfig, variant((s) => { hookConfig(s, 'credentials')['response'] = { ignore: true } }), /credentials hook #1: response\.ignore/, 'a hook Kratos does not wait for')
  finds(t, checkHookConfig, variant((s) => { hookConfig(s, 'credentials')['response'] = { parse: true } }), /before Kratos saves/, 'a hook run before the change is saved')
  finds(t, checkHookConfig, variant((s) => { hookConfig(s, 'credentials')['can_interrupt'] = true }), /before Kratos saves/, 'an interrupting hook')
  finds(t, checkHookConfig, variant((s) => {
    settingsAfter(s)['password'] = { hooks: [{ hook: 'revoke_active_sessions' }] }
    recoveryAfter(s)['hooks'] = [{ hook: 'revoke_active_sessions' }]
  }), /no web hook with config\/kratos\/credentials-changed\.jsonnet/, 'no credentials hook at all')
  finds(t, checkHookKey, variant((s) => {
    hookConfig(s, 'credentials')['auth'] = { type: 'api_key', config: { name: 'Authorization', value: `Bearer ${variable('CREDENTIALS_KEY')}`, in: 'header' } }
  }), /no CREDENTIALS_KEY/, 'a key init does not render')
})

t.test('every enabled credential method and recovery run the credentials hook, then revoke_active_sessions', async (t) => {
  const password = (s: Stack): Hook => at(s.kratos, 'selfservice.flows.settings.after.password') as Hook
  finds(t, checkCredentialsCoverage, variant((s) => { password(s)['hooks'] = [...(password(s)['hooks'] as unknown[])].reverse() }), /settings method password runs revoke_active_sessions before/, 'Kratos\' revocation first')
  finds(t, checkCredentialsCoverage, variant((s) => { password(s)['hooks'] = [hookOf(s, 'credentials')] }), /settings method password runs the credentials hook without revoke_active_sessions/, 'no revoke_active_sessions')
  finds(t, checkCredentialsCoverage, variant((s) => { Reflect.deleteProperty(settingsAfter(s), 'password') }), /settings method password does not run/, 'password, enabled by default, without a list')
  finds(t, checkCredentialsCoverage, variant((s) => { (at(s.kratos, 'selfservice.methods') as Hook)['totp'] = { enabled: true } }), /settings method totp does not run/, 'a method enabled without the hook')
  finds(t, checkCredentialsCoverage, variant((s) => { recoveryAfter(s)['hooks'] = [{ hook: 'revoke_active_sessions' }] }), /recovery does not run/, 'recovery without the hook')
  finds(t, checkCredentialsCoverage, variant((s) => { Reflect.deleteProperty(at(s.kratos, 'selfservice.flows') as Hook, 'recovery') }), /recovery does not run/, 'recovery not wired')
  t.same(checkCredentialsCoverage(variant((s) => {
    (at(s.kratos, 'selfservice.methods') as Hook)['lookup_secret'] = { enabled: true }
    settingsAfter(s)['lookup_secret'] = { hooks: password(s)['hooks'] }
  })), [], 'a second method with both hooks')
  finds(t, checkHydraKratosLink, variant((s) => { (at(s.hydra, 'urls') as Hook)['identity_provider'] = { url: 'http://kratos:4434' } }),
    /the current one included/, 'Hydra ending the Kratos session of each sid it revokes')
  t.same(checkCredentialsCoverage(variant((s) => {
    (at(s.kratos, 'selfservice.methods') as Hook)['password'] = { enabled: false }
    Reflect.deleteProperty(settingsAfter(s), 'password')
  })), [], 'a disabled method needs no hook')
})

t.test('logouts reach the relay: remembered logins, private addresses allowed or excepted', async (t) => {
  finds(t, checkRemember, variant((s) => { (at(s.kratos, 'session.cookie') as Hook)['persistent'] = false }), /persistent is false/, 'logins not remembered')
  finds(t, checkPrivateAddresses, variant((s) => { (at(s.hydra, 'clients.http') as Hook)['disallow_private_ip_ranges'] = true }), /hydra blocks/, 'hydra blocking the relay')
  finds(t, checkPrivateAddresses, variant((s) => { (at(s.kratos, 'clients.http') as Hook)['disallow_private_ip_ranges'] = true }), /kratos blocks/, 'kratos blocking the hook')
  finds(t, checkPrivateAddresses, variant((s) => {
    Object.assign(at(s.kratos, 'clients.http') as Hook, { disallow_private_ip_ranges: true, private_ip_exception_urls: ['http://logout-relay:8080/hooks/login'] })
  }), /kratos blocks/, 'the login hook excepted, the credentials hook not')
  t.same(checkPrivateAddresses(variant((s) => {
    Object.assign(at(s.hydra, 'clients.http') as Hook, { disallow_private_ip_ranges: true, private_ip_exception_urls: ['http://logout-relay:8080/backchannel-logout'] })
    Object.assign(at(s.kratos, 'clients.http') as Hook, { disallow_private_ip_ranges: true, private_ip_exception_urls: ['http://logout-relay:8080/hooks/login', 'http://logout-relay:8080/hooks/credentials-changed'] })
  })), [], 'blocking with the relay listed as an exception')
})

t.test('the relay trusts Hydra\'s tokens and reaches the admin APIs', async (t) => {
  finds(t, checkRelayToOry, variant((s) => { env(s, 'logout-relay')['OIDC_ISSUER'] = 'http://127.0.0.1:4444' }), /OIDC_ISSUER/, 'an issuer without the trailing slash')
  finds(t, checkRelayToOry, variant((s) => { (at(s.hydra, 'urls.self') as Hook)['issuer'] = 'http://localhost:4444/' }), /OIDC_ISSUER/, 'hydra issuing under another name')
  finds(t, checkRelayToOry, variant((s) => { env(s, 'logout-relay')['OIDC_JWKS_URL'] = 'http://127.0.0.1:4444/.well-known/jwks.json' }), /OIDC_JWKS_URL: host 127\.0\.0\.1/, 'keys from an address the container cannot reach')
  finds(t, checkRelayToOry, variant((s) => { env(s, 'logout-relay')['OIDC_JWKS_URL'] = 'http://hydra:4445/.well-known/jwks.json' }), /OIDC_JWKS_URL: port 4445/, 'keys from the admin port')
  finds(t, checkRelayToOry, variant((s) => { env(s, 'logout-relay')['KRATOS_ADMIN_URL'] = 'http://kratos:4433' }), /KRATOS_ADMIN_URL: port 4433/, 'Kratos\' public port for its admin API')
  finds(t, checkRelayToOry, variant((s) => { (at(s.kratos, 'oauth2_provider') as Hook)['url'] = 'http://hydra:4444' }), /oauth2_provider/, 'Kratos accepting logins at Hydra\'s public port')
  finds(t, checkRelayConfiguration, variant((s) => { env(s, 'logout-relay')['LOGIN_HOOK_API_KEYS'] = variable('LOGIN_HOOK_API_KEY', 'short') }), /LOGIN_HOOK_API_KEYS/, 'a default key the relay refuses')
})

t.test('the example client: logouts to the relay, registered from the file, used by the example app', async (t) => {
  finds(t, checkClient, variant((s) => { s.client['backchannel_logout_uri'] = 'http://logout-relay:8080/logout' }), /path \/logout/, 'a route the relay does not serve')
  finds(t, checkClient, variant((s) => { s.client['backchannel_logout_uri'] = 'http://127.0.0.1:8080/backchannel-logout' }), /host 127\.0\.0\.1/, 'the relay at an address Hydra cannot reach')
  finds(t, checkClient, variant((s) => { s.client['redirect_uris'] = ['http://127.0.0.1:5556/callback'] }), /redirect_uris/, 'a callback the example app does not serve')
  finds(t, checkClient, variant((s) => { s.client['client_secret'] = 'another-secret-0123456789' }), /secret/, 'a secret the example app does not know')
  finds(t, checkClient, variant((s) => { s.client['post_logout_redirect_uris'] = ['http://localhost:5555/'] }), /matches no redirect URI/, 'a post-logout URI Hydra would refuse')
  finds(t, checkClient, variant((s) => { service(s, 'register-client').volumes = ['./config:/etc/config/hydra:ro'] }), /does not register/, 'another file registered')
})

t.test('the README names the relay\'s routes and the stack\'s ports', async (t) => {
  finds(t, checkDocs, variant((s) => { s.readme = s.readme.replace('--backchannel-logout-callback http://logout-relay:8080/backchannel-logout', '--backchannel-logout-callback http://logout-relay:8080/backchannel_logout') }), /backchannel_logout is no route/, 'a documented command with another route')
  finds(t, checkDocs, variant((s) => { s.readme = s.readme.replace('url: http://logout-relay:8080/hooks/login', 'url: http://logout-relay:8080/hooks/logins') }), /hooks\/logins is no route/, 'a documented hook URL with another route')
  finds(t, checkDocs, variant((s) => { s.readme = s.readme.replace('path: /health/ready', 'path: /healthz') }), /probe path \/healthz/, 'a probe on a path the relay does not serve')
  finds(t, checkDocs, variant((s) => { service(s, 'example-app').ports = ['127.0.0.1:5556:5555'] }), /127\.0\.0\.1:5555/, 'a documented port the stack does not publish')
})

t.test('the UI is Hydra\'s login, consent and logout UI and Kratos\' flows', async (t) => {
  finds(t, checkUi, variant((s) => { (s.hydra as Hook)['urls'] = { ...(at(s.hydra, 'urls') as Hook), consent: 'http://127.0.0.1:3000/consent' } }), /urls\.consent/, 'consent on another port')
  finds(t, checkUi, variant((s) => { env(s, 'selfservice-ui')['PORT'] = '3000' }), /not published/, 'the UI on a port nobody publishes')
  finds(t, checkUi, variant((s) => { env(s, 'selfservice-ui')['KRATOS_BROWSER_URL'] = 'http://kratos:4433/' }), /KRATOS_BROWSER_URL/, 'a browser URL the browser cannot reach')
})

t.test('startup order: one-shots complete first, dependencies healthy, databases shared', async (t) => {
  finds(t, checkStartup, variant((s) => { service(s, 'kratos').depends_on = { hydra: { condition: 'service_healthy' } } }), /does not wait for kratos-migrate/, 'Kratos before its migration')
  finds(t, checkStartup, variant((s) => { service(s, 'hydra-migrate').volumes = ['./config/hydra:/etc/config/hydra:ro'] }), /hydra-migrate migrates another/, 'a migration of a database nobody serves')
  finds(t, checkStartup, variant((s) => { Reflect.deleteProperty(service(s, 'redis'), 'healthcheck') }), /redis has no healthcheck/, 'waiting for a health nobody checks')
  finds(t, checkStartup, variant((s) => { service(s, 'hydra-migrate').restart = 'unless-stopped' }), /restarts/, 'a one-shot that never completes')
  finds(t, checkStartup, variant((s) => { service(s, 'logout-relay').depends_on = { redis: { condition: 'service_started' } } }), /merely started/, 'a dependency merely started')
  finds(t, checkStartup, variant((s) => { service(s, 'logout-relay').healthcheck = { test: ['CMD', 'node', 'dist/server.js', '--health'] } }), /HEALTHCHECK/, 'a healthcheck other than the image\'s')
  finds(t, checkRedis, variant((s) => { service(s, 'redis').command = ['redis-server'] }), /appendonly/, 'Redis without its append-only file')
  finds(t, checkImagesAndFiles, variant((s) => { service(s, 'kratos').image = 'oryd/kratos:v1.3.1' }), /not v26\.2\.0/, 'another Ory release')
  finds(t, checkImagesAndFiles, variant((s) => { service(s, 'kratos').volumes = (service(s, 'kratos').volumes ?? []).filter((v) => !String(v).startsWith('./config/kratos')) }), /cannot read/, 'the hook body and schema not mounted')
})

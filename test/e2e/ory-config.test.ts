import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { root } from './helpers/binaries.js'
import { configChanges, renderHydraConfig, renderKratosConfig, type Addresses, type Secrets } from './helpers/ory-config.js'

// The end-to-end suite runs Hydra and Kratos on the project's own configuration: the rendered copies
// may differ from config/ in addresses, ports, DSNs and secrets only. Needs no Ory binary.

const dir = mkdtempSync(join(tmpdir(), 'logout-relay-e2e-config-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const addresses: Addresses = {
  hydraPublic: 'http://127.0.0.1:41001',
  hydraAdmin: 'http://127.0.0.1:41002',
  kratosPublic: 'http://127.0.0.1:41003',
  kratosAdmin: 'http://127.0.0.1:41004',
  ui: 'http://127.0.0.1:41005',
  relay: 'http://127.0.0.1:41006'
}
const secrets: Secrets = { hydraSystem: 'a'.repeat(64), kratosDefault: 'b'.repeat(64), kratosCookie: 'c'.repeat(64), hookKey: 'd'.repeat(64) }
const shipped = (file: string): unknown => parseYaml(readFileSync(join(root, file), 'utf8'))

/** Why a change is one the suite may make, or undefined when it is not. */
function allowed (change: { path: string, shipped: unknown, rendered: unknown }): string | undefined {
  if (change.path === 'dsn') return 'the DSN'
  if (/^serve\.(public|admin)\.(host|port)$/.test(change.path)) return 'a listen address'
  if (/^secrets\.(system|default|cookie)\[\d+\]$/.test(change.path)) return 'a secret'
  if (typeof change.shipped === 'string' && typeof change.rendered === 'string') {
    const [before, after] = [change.shipped, change.rendered]
    if (before.startsWith('file:///etc/config/kratos/') && after === `file://${join(root, 'config/kratos', before.slice('file:///etc/config/kratos/'.length))}`) {
      return 'the shipped file, read in place'
    }
    // eslint-disable-next-line no-template-curly-in-string -- the placeholder render.sh replaces
    if (before === 'Bearer ${LOGIN_HOOK_API_KEY}' && after === `Bearer ${secrets.hookKey}`) return 'the hook key, by render.sh'
    if (/^https?:\/\//.test(before) && /^https?:\/\//.test(after)) {
      const [from, to] = [new URL(before), new URL(after)]
      if (before.slice(from.origin.length) === after.slice(to.origin.length)) return 'an address'
    }
  }
  return undefined
}

for (const [name, file, render] of [
  ['hydra', 'config/hydra/hydra.yml', renderHydraConfig],
  ['kratos', 'config/kratos/kratos.yml', renderKratosConfig]
] as const) {
  t.test(`${file} runs with only its addresses, ports, DSN and secrets changed`, async (t) => {
    const changes = configChanges(shipped(file), render(addresses, secrets, dir))
    t.ok(changes.length > 0)
    for (const change of changes) t.ok(allowed(change), `${name}: ${change.path}: ${JSON.stringify(change.shipped)} → ${JSON.stringify(change.rendered)}`)
    const rendered = JSON.stringify(render(addresses, secrets, dir))
    for (const origin of ['127.0.0.1:4444', 'hydra:4445', '127.0.0.1:4433', 'kratos:4434', '127.0.0.1:4455', 'logout-relay:8080', '/etc/config', '/var/lib/sqlite']) {
      t.notMatch(rendered, origin, `no ${origin} left`)
    }
  })
}

t.test('an address the suite does not map fails the render', async (t) => {
  const source = 'dsn: sqlite:///var/lib/sqlite/hydra.sqlite\nurls:\n  login: http://ui.example.com/login\n'
  t.throws(() => renderHydraConfig(addresses, secrets, dir, source), /urls\.login is http:\/\/ui\.example\.com\/login: an address the end-to-end suite does not map/)
})

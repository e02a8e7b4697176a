import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { createValidators, readYaml, repoPath } from '../helpers/deploy.js'

// config/kratos/render.sh writes the kratos.yml that Kratos runs with in the example stack: the file
// as shipped, its ${LOGIN_HOOK_API_KEY} placeholder replaced by the key from the environment. Run
// here with the machine's POSIX sh, as the stack runs it with busybox's.
// eslint-disable-next-line no-template-curly-in-string -- literal text that render.sh replaces
const PLACEHOLDER = '${LOGIN_HOOK_API_KEY}'
const dir = mkdtempSync(join(tmpdir(), 'logout-relay-render-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function render (key: string | undefined, source = repoPath('config/kratos/kratos.yml')): { status: number | null, stderr: string, dest: string } {
  const dest = join(dir, `kratos-${randomBytes(4).toString('hex')}.yml`)
  const result = spawnSync('sh', [repoPath('config/kratos/render.sh'), source, dest], {
    env: { PATH: process.env['PATH'] ?? '', ...(key !== undefined ? { LOGIN_HOOK_API_KEY: key } : {}) },
    encoding: 'utf8'
  })
  return { status: result.status, stderr: result.stderr, dest }
}

/** `value` with every occurrence of the placeholder in its strings replaced by `key`. */
function substitute (value: unknown, key: string): unknown {
  if (typeof value === 'string') return value.split(PLACEHOLDER).join(key)
  if (Array.isArray(value)) return value.map((item) => substitute(item, key))
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([name, item]) => [name, substitute(item, key)]))
  return value
}

t.test('the key replaces the placeholder, and nothing else changes', async (t) => {
  const source = readYaml('config/kratos/kratos.yml')
  t.match(JSON.stringify(source), PLACEHOLDER, 'the shipped file carries the placeholder')
  const key = randomBytes(24).toString('base64url')
  const { status, stderr, dest } = render(key)
  t.equal(status, 0, stderr)
  const text = readFileSync(dest, 'utf8')
  t.notMatch(text, '${', 'no placeholder is left')
  const rendered = parseYaml(text) as unknown
  t.same(rendered, substitute(source, key))
  t.match(text, `value: Bearer ${key}`)
  t.same(createValidators().kratos(rendered), [], 'still a valid Kratos configuration')
})

t.test('keys that the relay would refuse, or that would not stay literal, are refused', async (t) => {
  for (const [key, why] of [
    [undefined, 'unset'],
    ['', 'empty'],
    ['0123456789abcde', 'shorter than 16'],
    ['0123456789abcdef/x', 'a slash (sed)'],
    ['0123456789abcdef&x', 'an ampersand (sed)'],
    ['0123456789abcdef x', 'a space'],
    ['0123456789abcdef,x', 'a comma (two keys for the relay)'],
    ['0123456789abcdef"x', 'a quote (YAML)']
  ] as const) {
    const { status, stderr, dest } = render(key)
    t.equal(status, 1, `${why}: ${stderr.trim()}`)
    t.match(stderr, /LOGIN_HOOK_API_KEY/)
    t.notOk(existsSync(dest), `${why}: nothing written`)
  }
})

t.test('a configuration without the placeholder is refused, not copied with no key', async (t) => {
  const source = join(dir, 'no-placeholder.yml')
  writeFileSync(source, 'dsn: memory\n')
  const { status, stderr, dest } = render('0123456789abcdef0123', source)
  t.equal(status, 1)
  t.match(stderr, /no \$\{LOGIN_HOOK_API_KEY\}/)
  t.notOk(existsSync(dest))
})

import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { CONFIG_VARIABLES } from '../src/config.js'

/** The documentation stays in step with the code: its links resolve, and it documents every variable. */
const root = fileURLToPath(new URL('..', import.meta.url))
const pages = ['README.md', 'config/README.md', 'test/fixtures/README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]
const read = (page: string): string => readFileSync(join(root, page), 'utf8')

/** A page without its fenced code blocks, where a `#` is a shell comment and a link is no link. */
function prose (text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '')
}

/** GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function anchors (text: string): Set<string> {
  const seen = new Map<string, number>()
  const result = new Set<string>()
  for (const [, heading = ''] of prose(text).matchAll(/^#{1,6} +(.+?) *$/gm)) {
    const slug = heading.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    const count = seen.get(slug) ?? 0
    seen.set(slug, count + 1)
    result.add(count === 0 ? slug : `${slug}-${count}`)
  }
  return result
}

t.test('every relative link of the documentation resolves, anchors included', async (t) => {
  let links = 0
  for (const page of pages) {
    for (const [, target = ''] of prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target)) continue
      links++
      const [path = '', anchor] = target.split('#')
      const file = path === '' ? join(root, page) : resolve(dirname(join(root, page)), path)
      const where = `${page} → ${target}`
      if (!existsSync(file)) {
        t.fail(`${where}: no such file`)
        continue
      }
      if (anchor !== undefined && anchor !== '') {
        t.ok(file.endsWith('.md') && anchors(readFileSync(file, 'utf8')).has(anchor), `${where}: the anchor exists in ${relative(root, file)}`)
      }
    }
  }
  t.ok(links > 30, `${links} links checked`)
})

t.test('the configuration page documents exactly the variables the relay reads', async (t) => {
  const page = prose(read('docs/configuration.md'))
  const documented = new Set<string>()
  for (const line of page.split('\n')) {
    const first = /^\| ([^|]+) \|/.exec(line)?.[1] ?? ''
    for (const [, name = ''] of first.matchAll(/`([A-Za-z][A-Za-z0-9_]*)`/g)) documented.add(name)
  }
  // The proxy variables are read in either case, as curl reads them; the page names the upper case.
  const variables: readonly string[] = CONFIG_VARIABLES.filter((name) => name === name.toUpperCase())
  t.same([...documented].filter((name) => !variables.includes(name)).sort(), [], 'nothing documented that the relay does not read')
  t.same(variables.filter((name) => !documented.has(name)).sort(), [], 'nothing read that is not documented')
})

t.test('the README is a front door: what the relay is, the two commands, the HTTP interface, the way in', async (t) => {
  const readme = read('README.md')
  t.ok(Buffer.byteLength(readme) < 20_000, 'short enough to read first')
  for (const heading of ['## Two commands', '## HTTP interface', '## Documentation']) t.ok(readme.includes(heading), heading)
  for (const page of readdirSync(join(root, 'docs'))) t.ok(readme.includes(`](docs/${page})`), `links docs/${page}`)
})

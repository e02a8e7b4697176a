import t from 'tap'
import { execForm, parseDockerfile, readText, stageEnv, type DockerStage } from '../helpers/deploy.js'

// What the image must be, read from the Dockerfile itself (no Docker engine runs here). What the
// runtime stage contains, and that it starts and serves, is test/deploy/runtime.test.ts.
const dockerfile = parseDockerfile(readText('Dockerfile'))

function stage (name: string): DockerStage {
  const found = dockerfile.stages.find((candidate) => candidate.name === name)
  if (found === undefined) throw new Error(`no stage ${name}`)
  return found
}
const values = (of: DockerStage, keyword: string): string[] =>
  of.instructions.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.value)

t.test('both stages run one pinned Node.js LTS image', async (t) => {
  t.same(dockerfile.stages.map((s) => s.name), ['build', 'runtime'], 'a build stage, then the runtime stage last')
  const [build, runtime] = [stage('build'), stage('runtime')]
  t.equal(build.from, runtime.from, 'the runtime runs the Node.js it was built with')
  // A full version, not a moving tag such as node:22 or node:lts.
  t.match(runtime.from, /^node:(20|22)\.\d+\.\d+-[a-z]+-slim$/)
})

t.test('the build stage assembles the runtime with the script the runtime test runs', async (t) => {
  const build = stage('build')
  t.ok(values(build, 'RUN').includes('sh scripts/assemble-runtime.sh /runtime'))
  const copied = values(build, 'COPY').flatMap((value) => value.split(/\s+/).slice(0, -1))
  // What the script reads: the manifests, the TypeScript configuration and sources, itself.
  for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'scripts']) {
    t.ok(copied.includes(path), `the build stage copies ${path}`)
  }
})

t.test('the runtime stage: only the assembled runtime, as a non-root user, stopped by SIGTERM', async (t) => {
  const runtime = stage('runtime')
  t.same(values(runtime, 'COPY'), ['--from=build /runtime ./'], 'one COPY: the assembled directory')
  t.same(values(runtime, 'RUN'), [], 'nothing installed or built in the runtime stage')
  t.same(values(runtime, 'ADD'), [])
  const user = values(runtime, 'USER')
  t.equal(user.length, 1)
  t.notOk(['root', '0', '0:0'].includes(user[0] ?? 'root'), `runs as ${user[0] ?? 'root'}`)
  t.same(values(runtime, 'EXPOSE'), ['8080'])
  t.equal(stageEnv(runtime)['PORT'], '8080', 'listens where it exposes')
  t.equal(stageEnv(runtime)['NODE_ENV'], 'production')
  t.same(values(runtime, 'STOPSIGNAL'), ['SIGTERM'])
})

t.test('CMD and HEALTHCHECK run Node itself, in exec form', async (t) => {
  const runtime = stage('runtime')
  const [cmd] = values(runtime, 'CMD')
  const [healthcheck] = values(runtime, 'HEALTHCHECK')
  t.same(execForm(cmd ?? ''), ['node', 'dist/server.js'], 'node is PID 1 and receives SIGTERM itself')
  // The slim image has no curl or wget: the check must need nothing but node.
  t.same(execForm(healthcheck ?? ''), ['node', 'dist/healthcheck.js'])
  t.match(healthcheck, /^(--\w[\w-]*=\S+\s+)*CMD /, 'options, then CMD')
})

t.test('.dockerignore keeps dependencies, build output, tests, git and secrets out of the context', async (t) => {
  const ignored = readText('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
  for (const entry of ['node_modules', 'dist', 'test', '.git', '.env']) t.ok(ignored.includes(entry), entry)
  const copied = values(stage('build'), 'COPY').flatMap((value) => value.split(/\s+/).slice(0, -1))
  for (const path of copied) t.notOk(ignored.includes(path), `${path} is copied, so it must not be ignored`)
})

import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Summarises V8 CPU profiles (`--cpu-prof`): where the relay's time goes, by function (self time) and
 * by package. Run the benchmark with BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR", then
 * `tsx bench/cpu-profile.ts DIR`.
 */
interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  children?: number[]
}
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const dir = process.argv[2] ?? '.'
for (const file of readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfTime = new Map<number, number>()
  profile.samples.forEach((id, i) => selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const total = [...selfTime.values()].reduce((a, b) => a + b, 0)
  const byFunction = new Map<string, number>()
  const byPackage = new Map<string, number>()
  for (const [id, time] of selfTime) {
    const frame = byId.get(id)?.callFrame
    if (frame === undefined) continue
    const where = frame.url.replace(/^file:\/\//, '')
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1] ?? (where.includes('/dist/') ? 'logout-relay' : where === '' ? `(${frame.functionName || 'native'})` : 'node:internal')
    const name = `${frame.functionName || '(anonymous)'} ${where.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + time)
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + time)
  }
  const top = (map: Map<string, number>, count: number): string => [...map].sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([name, time]) => `  ${(100 * time / total).toFixed(1).padStart(5)} %  ${name}`).join('\n')
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled\nby package:\n${top(byPackage, 15)}\nby function (self):\n${top(byFunction, 25)}\n\n`)
}

import { spawnSync } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository's root directory. */
export const root = fileURLToPath(new URL('../../..', import.meta.url))

/** The version of `module` that the wrapper module tools/ory/<name>/go.mod pins. */
function pinnedVersion (name: string, module: string): string {
  const goMod = readFileSync(join(root, 'tools/ory', name, 'go.mod'), 'utf8')
  const line = goMod.split('\n').map((text) => text.trim().split(/\s+/)).find(([path]) => path === module)
  if (line?.[1] === undefined) throw new Error(`tools/ory/${name}/go.mod does not require ${module}`)
  return line[1]
}

/** The Ory versions the wrapper modules in tools/ory pin: what the suite runs, and what recordings name. */
export const ORY_VERSIONS = {
  hydra: pinnedVersion('hydra', 'github.com/ory/hydra/v2'),
  kratos: pinnedVersion('kratos', 'github.com/ory/kratos')
} as const

export interface OryBinaries {
  hydra: string
  kratos: string
}

/** True in CI, where a missing binary fails the suite instead of skipping it. */
export function inCi (env: Record<string, string | undefined> = process.env): boolean {
  const value = env['CI']?.trim().toLowerCase()
  return value !== undefined && value !== '' && value !== 'false' && value !== '0'
}

/**
 * The Hydra and Kratos binaries that `scripts/ory-binaries.sh` built, as its `--print` names them
 * (`HYDRA_BIN` and `KRATOS_BIN` in the environment take precedence); a string saying what is missing
 * otherwise.
 */
export function findOryBinaries (env: Record<string, string | undefined> = process.env): OryBinaries | string {
  let hydra = env['HYDRA_BIN']
  let kratos = env['KRATOS_BIN']
  if (hydra === undefined || kratos === undefined) {
    const printed = spawnSync('bash', [join(root, 'scripts/ory-binaries.sh'), '--print'], { encoding: 'utf8', env: { ...process.env } })
    if (printed.status !== 0) return (printed.stderr || `scripts/ory-binaries.sh --print exited ${String(printed.status)}`).trim()
    for (const line of printed.stdout.split('\n')) {
      const [name, ...rest] = line.split('=')
      if (name === 'HYDRA_BIN') hydra ??= rest.join('=')
      if (name === 'KRATOS_BIN') kratos ??= rest.join('=')
    }
  }
  for (const [name, path] of [['hydra', hydra], ['kratos', kratos]] as const) {
    if (path === undefined || path === '') return `no ${name} binary`
    try {
      accessSync(path, constants.X_OK)
    } catch {
      return `${path} is not an executable ${name} binary`
    }
  }
  return { hydra: hydra as string, kratos: kratos as string }
}

/** The part of a tap test that decides between skipping and failing. */
interface Skippable {
  plan: (count: number, comment?: string) => void
  fail: (message: string) => void
}

/**
 * The binaries, or undefined after the file was skipped (outside CI) or failed (in CI, where the suite
 * must never pass by skipping).
 */
export function requireOryBinaries (t: Skippable): OryBinaries | undefined {
  const found = findOryBinaries()
  if (typeof found !== 'string') return found
  const how = 'build them with scripts/ory-binaries.sh (about 4 minutes cold, cached after)'
  if (inCi()) {
    t.fail(`the end-to-end suite needs real Ory Hydra ${ORY_VERSIONS.hydra} and Kratos ${ORY_VERSIONS.kratos}: ${found}; ${how}`)
  } else {
    t.plan(0, `Ory Hydra and Kratos binaries missing (${found}): ${how}`)
  }
  return undefined
}

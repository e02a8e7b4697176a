import t from 'tap'
import { barLine, createProgressDisplay, figures, formatDuration } from '../../src/ops/backfill-progress.js'
import { emptyCounts } from '../../src/store/backfill-cursor.js'

const counts = { ...emptyCounts(), identities: 60, sidsIndexed: 40, alreadyKnown: 5, errors: 0 }
const totals = { ...counts, identities: 1060, sidsIndexed: 812 }

t.test('durations', async (t) => {
  t.same([0, 45, 75, 3600, 7322].map(formatDuration), ['0s', '45s', '1m15s', '1h00m', '2h02m'])
})

t.test('the rate is this run\'s; an ETA only with a total, after a few seconds', async (t) => {
  t.match(figures(counts, totals, 2000, 3000), { done: 1060, doneNow: 60, rate: 20, etaSeconds: 47 })
  t.equal(figures(counts, totals, undefined, 3000).etaSeconds, undefined, 'no total: no ETA')
  t.equal(figures(counts, totals, 2000, 2000).etaSeconds, undefined, 'too early to tell')
  t.equal(figures(counts, totals, 1000, 3000).etaSeconds, undefined, 'more done than counted: no ETA')
  t.equal(figures(emptyCounts(), emptyCounts(), 10, 3000).rate, undefined)
})

t.test('the bar: with a total, a percentage and an ETA; without, what was read and the rate', async (t) => {
  t.equal(barLine(totals, figures(counts, totals, 2000, 3000), false),
    'backfill [███████████░░░░░░░░░]  53% 1,060/2,000 identities · 20.0/s · ETA 47s · 812 indexed, 5 known, 0 conflicts, 0 errors')
  t.equal(barLine(totals, figures(counts, totals, undefined, 3000), true),
    'backfill (dry run) 1,060 identities read · 20.0/s · 812 to index, 5 known, 0 conflicts, 0 errors · no ETA: Kratos gives no total')
  t.equal(barLine(totals, figures(counts, totals, undefined, 3000), false, 30), 'backfill 1,060 identities re…', 'cut one short of the terminal\'s width, so that it never wraps')
})

t.test('the display: the bar redrawn in place, lines above it; JSON lines on their own', async (t) => {
  let now = 0
  const written: string[] = []
  const bar = createProgressDisplay({ mode: 'bar', output: { write: (text: string) => written.push(text), columns: 200 }, clock: () => now, dryRun: false, total: 2, redrawMs: 100 })
  bar.event({ kind: 'progress', counts: { ...emptyCounts(), identities: 1 }, totals: { ...emptyCounts(), identities: 1 } })
  now = 50
  bar.event({ kind: 'progress', counts: { ...emptyCounts(), identities: 1 }, totals: { ...emptyCounts(), identities: 1 } })
  t.equal(written.length, 1, 'redrawn at most every 100 ms')
  bar.event({ kind: 'failure', identityId: 'x', error: 'hydra …: HTTP 500' })
  t.equal(written[1], '\r\x1b[2K✖ identity x: hydra …: HTTP 500 (the next run tries it again)\n', 'the bar cleared, the line')
  t.ok(written[2]?.startsWith('\r\x1b[2Kbackfill [██████████░░░░░░░░░░]  50% 1/2 identities · 20.0/s · ETA … ·'), 'the bar again, at once')
  bar.stop()
  t.equal(written.at(-1), '\n')

  const lines: string[] = []
  const json = createProgressDisplay({ mode: 'lines', output: { write: (text: string) => lines.push(text) }, clock: () => now, dryRun: true, total: undefined, intervalMs: 10 })
  json.event({ kind: 'start', resumed: undefined, dryRun: true })
  json.event({ kind: 'progress', counts: { ...emptyCounts(), identities: 1 }, totals: { ...emptyCounts(), identities: 1 } })
  await new Promise((resolve) => setTimeout(resolve, 40))
  json.stop()
  const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  t.match(parsed[0], { event: 'start', dry_run: true, identities_total: null })
  t.ok(parsed.length >= 3, 'a line every interval, and one at the end')
  t.match(parsed.at(-1), { event: 'progress', identities_done: 1, identities_total: null, eta_seconds: null })
})

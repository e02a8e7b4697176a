import type { Clock } from '../clock.js'
import type { BackfillCounts } from '../store/backfill-cursor.js'
import type { BackfillEvent } from '../usecases/backfill.js'

/**
 * How progress is shown: `bar`, a line redrawn in place on a terminal; `lines`, a JSON line every few
 * seconds (for logs and pipes); `none`.
 */
export type ProgressMode = 'bar' | 'lines' | 'none'

/** Where the display writes (stderr). */
export interface ProgressOutput {
  write: (text: string) => unknown
  /** Columns of the terminal, for the bar (a longer line is cut there). */
  columns?: number | undefined
}

export interface ProgressOptions {
  mode: ProgressMode
  output: ProgressOutput
  clock: Clock
  dryRun: boolean
  /** Identities Kratos counts, when it does: for a percentage and an ETA. */
  total: number | undefined
  /** How often a JSON line is written (default 5 s). */
  intervalMs?: number
  /** How often the bar is redrawn at most (default 100 ms). */
  redrawMs?: number
}

/** Where a run stands, computed for display. */
export interface ProgressFigures {
  /** Identities done since the backfill began (earlier runs included). */
  done: number
  /** Done by this run. */
  doneNow: number
  total: number | undefined
  /** This run's identities per second, or undefined before there is anything to measure. */
  rate: number | undefined
  /** Seconds to go at this run's rate: only with a total, and a rate measured over a few seconds. */
  etaSeconds: number | undefined
  elapsedSeconds: number
}

/** `1h02m`, `3m07s`, `45s`. */
export function formatDuration (seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
}

export function formatCount (value: number): string {
  return value.toLocaleString('en-US')
}

/** How long the rate must have been measured before it gives an ETA. */
const ETA_AFTER_SECONDS = 3

/**
 * The figures of a run: the rate is this run's average (the pace is set, so an average is what it
 * runs at), and the ETA is the identities Kratos counts that are not done yet, at that rate. Kratos
 * v1.3.1's identity pages carry no count; the total comes from its older page pagination, when it
 * answers with one — otherwise there is no percentage and no ETA, rather than a guess.
 */
export function figures (counts: BackfillCounts, totals: BackfillCounts, total: number | undefined, elapsedMs: number): ProgressFigures {
  const elapsedSeconds = elapsedMs / 1000
  const doneNow = counts.identities + counts.errors
  const done = totals.identities + totals.errors
  const rate = elapsedSeconds > 0 && doneNow > 0 ? doneNow / elapsedSeconds : undefined
  const remaining = total === undefined ? undefined : total - done
  const etaSeconds = remaining === 0
    ? 0
    : rate !== undefined && remaining !== undefined && remaining > 0 && elapsedSeconds >= ETA_AFTER_SECONDS ? remaining / rate : undefined
  return { done, doneNow, total, rate, etaSeconds, elapsedSeconds }
}

/** The bar's one line: `[████░░░░] 42% 1,080/2,571 identities · 19.8/s · ETA 1m15s · 812 indexed, …`. */
export function barLine (totals: BackfillCounts, f: ProgressFigures, dryRun: boolean, columns = 160): string {
  const rate = f.rate === undefined ? '–/s' : `${f.rate.toFixed(1)}/s`
  const tally = `${formatCount(totals.sidsIndexed)} ${dryRun ? 'to index' : 'indexed'}, ${formatCount(totals.alreadyKnown)} known, ${formatCount(totals.conflicts)} conflicts, ${formatCount(totals.errors)} errors`
  let line: string
  if (f.total !== undefined && f.total > 0) {
    const share = Math.min(1, f.done / f.total)
    const width = 20
    const filled = Math.round(share * width)
    const eta = f.etaSeconds === undefined ? 'ETA …' : `ETA ${formatDuration(f.etaSeconds)}`
    line = `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${String(Math.floor(share * 100)).padStart(3)}% ${formatCount(f.done)}/${formatCount(f.total)} identities · ${rate} · ${eta} · ${tally}`
  } else {
    line = `${formatCount(f.done)} identities read · ${rate} · ${tally} · no ETA: Kratos gives no total`
  }
  const text = `${dryRun ? 'backfill (dry run) ' : 'backfill '}${line}`
  return text.length > columns - 1 ? `${text.slice(0, Math.max(0, columns - 2))}…` : text
}

/** The counts as JSON names them. */
export function countsJson (counts: BackfillCounts): Record<string, number> {
  return {
    identities: counts.identities,
    consent_sessions: counts.consentSessions,
    consent_sessions_unread: counts.consentSessionsUnread,
    sids_indexed: counts.sidsIndexed,
    already_known: counts.alreadyKnown,
    conflicts: counts.conflicts,
    late_logouts: counts.lateLogouts,
    errors: counts.errors
  }
}

/** Shows a run's progress as its events come: call `event` for each, and `stop` at the end. */
export interface ProgressDisplay {
  event: (event: BackfillEvent) => void
  /** Writes the last figures (lines) or clears the bar, and stops the timers. */
  stop: () => void
}

export function createProgressDisplay (options: ProgressOptions): ProgressDisplay {
  const { mode, output, clock, dryRun, total } = options
  const began = clock()
  let counts: BackfillCounts | undefined
  let totals: BackfillCounts | undefined
  let drawn = false
  let lastDraw = Number.NEGATIVE_INFINITY
  let timer: NodeJS.Timeout | undefined

  const current = (): ProgressFigures | undefined =>
    counts === undefined || totals === undefined ? undefined : figures(counts, totals, total, clock() - began)

  const draw = (force = false): void => {
    if (mode !== 'bar' || counts === undefined || totals === undefined) return
    const now = clock()
    if (!force && now - lastDraw < (options.redrawMs ?? 100)) return
    lastDraw = now
    // A terminal without a size (a pty nobody sized, as `docker exec -t` may give) says 0 columns.
    const columns = output.columns !== undefined && output.columns >= 20 ? output.columns : undefined
    output.write(`\r\x1b[2K${barLine(totals, figures(counts, totals, total, now - began), dryRun, columns)}`)
    drawn = true
  }
  /** A line above the bar: the bar is cleared, the line written, the bar drawn again. */
  const say = (text: string): void => {
    if (mode === 'bar') {
      output.write(`${drawn ? '\r\x1b[2K' : ''}${text}\n`)
      drawn = false
      draw(true)
    }
  }
  const line = (record: Record<string, unknown>): void => {
    if (mode === 'lines') output.write(`${JSON.stringify({ time: new Date(clock()).toISOString(), ...record })}\n`)
  }
  const progressLine = (): void => {
    const f = current()
    if (f === undefined || counts === undefined || totals === undefined) return
    line({
      event: 'progress',
      dry_run: dryRun,
      identities_done: f.done,
      identities_done_this_run: f.doneNow,
      identities_total: f.total ?? null,
      rate_per_second: f.rate === undefined ? null : Math.round(f.rate * 10) / 10,
      eta_seconds: f.etaSeconds === undefined ? null : Math.round(f.etaSeconds),
      elapsed_seconds: Math.round(f.elapsedSeconds),
      ...countsJson(totals)
    })
  }

  if (mode === 'lines') {
    timer = setInterval(progressLine, options.intervalMs ?? 5000)
    timer.unref()
  }

  return {
    event (event) {
      switch (event.kind) {
        case 'start': {
          const resumed = event.resumed
          const what = resumed === undefined
            ? undefined
            : `resuming the backfill begun ${new Date(resumed.startedAt).toISOString()}: ${formatCount(resumed.totals.identities)} identities done, ${formatCount(resumed.failed.length)} to try again`
          if (what !== undefined) say(what)
          line({
            event: 'start',
            dry_run: event.dryRun,
            identities_total: total ?? null,
            resumed_from: resumed === undefined ? null : { started_at: new Date(resumed.startedAt).toISOString(), identities: resumed.totals.identities, failed: resumed.failed.length }
          })
          break
        }
        case 'progress':
          counts = event.counts
          totals = event.totals
          draw()
          break
        case 'retry':
          say(`${event.error}: trying again in ${formatDuration(event.delayMs / 1000)}`)
          line({ event: 'retry', service: event.service, attempt: event.attempt, delay_ms: event.delayMs, error: event.error })
          break
        case 'failure':
          say(`✖ identity ${event.identityId}: ${event.error} (the next run tries it again)`)
          line({ event: 'failure', identity_id: event.identityId, error: event.error })
          break
        case 'conflict':
          say(`! sid ${event.sid} of identity ${event.identityId} is indexed for ${event.indexedFor ?? 'another identity'}: left as it is`)
          line({ event: 'conflict', sid: event.sid, identity_id: event.identityId, indexed_for: event.indexedFor ?? null })
          break
      }
    },
    stop () {
      clearInterval(timer)
      if (mode === 'bar') {
        draw(true)
        if (drawn) output.write('\n')
      }
      if (mode === 'lines') progressLine()
    }
  }
}

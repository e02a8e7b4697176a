/**
 * Rows as a plain text table for a terminal: a header, then one line per row, each column as wide as
 * its widest cell and two spaces apart; the last column is not padded.
 */
export function formatTable (headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells.map((cell, i) => i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

/** A time for a table: ISO 8601 to the second, UTC (`2025-06-01T12:00:00Z`). */
export function shortTime (iso: string | undefined): string {
  return iso === undefined ? '-' : iso.replace(/\.\d{3}Z$/, 'Z')
}

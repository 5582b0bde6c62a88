/** Plain aligned text tables for the terminal. */
export function formatTable(header: string[], rows: Array<Array<string | number>>, align?: Array<'l' | 'r'>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) =>
    r.map((cell, c) => ((align?.[c] ?? 'l') === 'r' ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ').trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

export function formatMacs(macs: number): string {
  if (macs >= 1e9) return `${(macs / 1e9).toFixed(2)}G`;
  if (macs >= 1e6) return `${(macs / 1e6).toFixed(2)}M`;
  if (macs >= 1e3) return `${(macs / 1e3).toFixed(1)}K`;
  return String(macs);
}

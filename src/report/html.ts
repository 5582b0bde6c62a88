/**
 * The report page: one self-contained HTML file (inline CSS and SVG, no script, no URL), so it opens the same
 * from a run folder, an e-mail attachment or an air-gapped machine. Its Content-Security-Policy forbids every
 * fetch, which makes "no network" something the browser enforces, not just a habit.
 */
import type { Precision } from '../policy.ts';
import { PRECISIONS } from '../policy.ts';
import { PRECISION_COLORS, formatMacs, formatNumber } from './plots.ts';

/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(text: unknown): string {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A cell is text (escaped here) or `{ html }`, markup this module built from escaped parts. */
export type Cell = string | number | { html: string };

function cell(c: Cell): string {
  if (typeof c === 'number') return escapeHtml(formatNumber(c));
  if (typeof c === 'string') return escapeHtml(c);
  return c.html;
}

export function table(head: readonly string[], rows: readonly (readonly Cell[])[], className = ''): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((c) => `<td>${cell(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table${className ? ` class="${escapeHtml(className)}"` : ''}><thead><tr>${th}</tr></thead>\n<tbody>\n${body}\n</tbody></table>`;
}

/** Two-column facts table (label, value). */
export function factsTable(rows: ReadonlyArray<readonly [string, Cell]>): string {
  return `<table class="facts"><tbody>\n${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${cell(v)}</td></tr>`).join('\n')}\n</tbody></table>`;
}

export function precisionBadge(p: Precision): { html: string } {
  return { html: `<span class="badge" style="background:${PRECISION_COLORS[p]}">${escapeHtml(p)}</span>` };
}

export function macsCell(macs: number): Cell {
  return { html: `<span title="${escapeHtml(`${macs} MACs`)}">${escapeHtml(formatMacs(macs))}</span>` };
}

export interface PlotSection {
  id: string;
  title: string;
  /** The SVG ready for inlining (see plots.inlineSvg). */
  svg: string;
  caption: string;
}

export function plotSection(p: PlotSection): string {
  // The plot draws its own title (so the standalone .svg/.png keep it); the page adds no second heading.
  return `<section class="plot" id="plot-${escapeHtml(p.id)}" aria-label="${escapeHtml(p.title)}">
<figure>${p.svg}<figcaption>${escapeHtml(p.caption)}</figcaption></figure>
</section>`;
}

const CSS = `
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 24px auto; max-width: 1180px; padding: 0 16px; color: #1b1b1b; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e3e3e3; padding-bottom: 4px; }
.sub { color: #555; margin: 0 0 16px; font-size: 13px; word-break: break-all; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #e0e0e0; padding: 4px 8px; text-align: left; vertical-align: top; }
thead th { background: #f4f4f4; position: sticky; top: 0; }
table.facts th { background: #f8f8f8; font-weight: 600; white-space: nowrap; }
td { font-variant-numeric: tabular-nums; }
td:first-child { word-break: break-all; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; color: #111; font-size: 12px; }
figure { margin: 28px 0 0; padding-top: 12px; border-top: 1px solid #e3e3e3; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 12px; margin-top: 4px; }
.good { color: #1a7f37; } .bad { color: #b42318; }
details summary { cursor: pointer; font-weight: 600; margin: 20px 0 6px; }
footer { color: #888; font-size: 11px; margin: 32px 0 8px; }
`;

export function page(title: string, subtitle: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="trtmix">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><p class="sub">${escapeHtml(subtitle)}</p></header>
${body}
<footer>Written by trtmix. Plots are inline SVG; hover a mark for its values. The same plots are in plots/ as .svg (and .png).</footer>
</body>
</html>
`;
}

/** Legend for the precision colours, for tables that use the badges. */
export function precisionLegend(): string {
  return `<p class="sub">${PRECISIONS.map((p) => precisionBadge(p).html).join(' ')}</p>`;
}

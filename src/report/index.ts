/**
 * report.html for `trtmix search` and `trtmix analyze`: four plots (learning curve, score vs latency with the
 * Pareto front and baselines, per-layer precision strip, sensitivity heatmap), a summary and tables, written
 * atomically next to plots/*.svg and, where @napi-rs/canvas is installed, plots/*.png.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../fs.ts';
import type { Precision } from '../policy.ts';
import { PRECISIONS, readsInt8 } from '../policy.ts';
import type { AnalysisInput, ReportFiles, SearchReportInput } from './types.ts';
import { escapeHtml, factsTable, macsCell, page, plotSection, precisionBadge, table, type Cell } from './html.ts';
import {
  type PlotSpec,
  formatNumber,
  inlineSvg,
  learningCurveSpec,
  precisionStripSpec,
  renderSvg,
  scoreLatencySpec,
  sensitivitySpec,
} from './plots.ts';
import { featureColumns, isBetter, precisionCounts, rankBySensitivity, scoreFloor } from './series.ts';
import { loadRasteriser } from './png.ts';

export type { AnalysisInput, SearchReportInput, ReportFiles } from './types.ts';

export interface RenderOptions {
  /** Also write PNG plots (default true; skipped with a reason when no rasteriser is installed). */
  png?: boolean;
}

/** The headline numbers of a search, as the summary table shows them. */
export interface SearchSummary {
  evaluations: number;
  feasible: number;
  episodes: number;
  seconds: number;
  floor?: number;
  /** (best - fp32) / fp32; negative is a drop for higher-is-better metrics. */
  bestRelativeToFp32?: number;
  /** fp16 latency / best latency: above 1 is faster than all-FP16. */
  speedupVsFp16?: number;
  /** best latency / all-INT8 latency: how far from the fastest uniform engine. */
  latencyVsInt8?: number;
  precisions: Record<Precision, number>;
  /** Share of all MACs that run with int8 inputs (int8 + mixed). */
  int8MacShare: number;
}

export function summarise(input: SearchReportInput): SearchSummary {
  const hib = input.higherIsBetter ?? true;
  const totalMacs = input.layers.reduce((s, l) => s + l.macs, 0);
  const int8Macs = input.layers.filter((l) => readsInt8(l.precision)).reduce((s, l) => s + l.macs, 0);
  const best = input.best;
  return {
    evaluations: input.history.length,
    feasible: input.history.filter((p) => p.feasible).length,
    episodes: new Set(input.history.map((p) => p.episode)).size,
    seconds: input.history.reduce((m, p) => Math.max(m, p.seconds), 0),
    floor: scoreFloor(input.fp32Score, input.maxDrop, hib),
    bestRelativeToFp32: best && input.fp32Score !== 0 ? (best.score - input.fp32Score) / Math.abs(input.fp32Score) : undefined,
    speedupVsFp16: best && best.latencyMs > 0 ? input.fp16LatencyMs / best.latencyMs : undefined,
    latencyVsInt8: best && input.int8LatencyMs ? best.latencyMs / input.int8LatencyMs : undefined,
    precisions: precisionCounts(input.layers.map((l) => l.precision)),
    int8MacShare: totalMacs > 0 ? int8Macs / totalMacs : 0,
  };
}

/** `0.987 [0.9812, 0.9917]`: a score and its 95 % interval. */
function withInterval(v: number, ci?: readonly number[]): string {
  return ci ? `${formatNumber(v)} [${formatNumber(ci[0])}, ${formatNumber(ci[1])}]` : formatNumber(v);
}

function percent(v: number): string {
  return `${v >= 0 ? '+' : ''}${formatNumber(v * 100)} %`;
}

function signed(text: string, good: boolean): Cell {
  return { html: `<span class="${good ? 'good' : 'bad'}">${escapeHtml(text)}</span>` };
}

function summaryTable(input: SearchReportInput, s: SearchSummary): string {
  const hib = input.higherIsBetter ?? true;
  const rows: Array<[string, Cell]> = [
    ['model', { html: `<span title="${escapeHtml(`sha256 ${input.model.sha256}`)}">${escapeHtml(input.model.path)}</span> <code>${escapeHtml(input.model.sha256.slice(0, 12))}</code>` }],
    ['target', input.target],
    ['agent / seed', `${input.agent} / ${input.seed}`],
    ['constraints', [
      input.budgetMs !== undefined ? `latency ≤ ${formatNumber(input.budgetMs)} ms` : 'no latency budget',
      s.floor !== undefined ? `score ${hib ? '≥' : '≤'} ${formatNumber(s.floor)} (max drop ${formatNumber((input.maxDrop ?? 0) * 100)} %)` : 'no accuracy floor',
    ].join('; ')],
    [input.metricName ? `FP32 score (${input.metricName}, search split)` : 'FP32 score (search split)', input.fp32Score],
  ];
  if (input.best) {
    const rel = s.bestRelativeToFp32 ?? 0;
    const where = input.best.samples !== undefined ? ` (search split, ${input.best.samples} samples)` : '';
    rows.push([`best score${where}`, signed(`${withInterval(input.best.score, input.best.ci95)} (${percent(rel)} vs FP32)`, hib ? rel >= -(input.maxDrop ?? Infinity) : rel <= (input.maxDrop ?? Infinity))]);
    const t = input.test;
    rows.push(t
      ? [`test score (${t.samples} held-out samples)`, signed(`${withInterval(t.score, t.ci95)}; FP32 ${formatNumber(t.fp32Score)} on the same samples; drop ${formatNumber(100 * t.drop)} % [${formatNumber(100 * t.dropCi95[0])}, ${formatNumber(100 * t.dropCi95[1])}]${t.withinFloor ? '' : ': over the floor'}`, t.withinFloor)]
      : ['test score', 'none: there were no held-out test samples (too little data, or --test-samples 0)']);
    const speed = s.speedupVsFp16 ?? 0;
    rows.push(['best latency', signed(`${formatNumber(input.best.latencyMs)} ms (${formatNumber(speed)}× vs all-FP16 ${formatNumber(input.fp16LatencyMs)} ms)`, speed >= 1)]);
    if (s.latencyVsInt8 !== undefined && input.int8LatencyMs !== undefined) {
      rows.push(['vs all-INT8', `${formatNumber(s.latencyVsInt8)}× the latency of all-INT8 (${formatNumber(input.int8LatencyMs)} ms)`]);
    }
    rows.push(['best reward', input.best.reward]);
  } else {
    rows.push(['best', signed('no feasible policy was found: loosen --budget-ms / --max-drop or search longer', false)]);
    rows.push(['all-FP16 latency', `${formatNumber(input.fp16LatencyMs)} ms`]);
    if (input.int8LatencyMs !== undefined) rows.push(['all-INT8 latency', `${formatNumber(input.int8LatencyMs)} ms`]);
  }
  rows.push(['evaluations', `${s.evaluations} (${s.feasible} feasible) over ${s.episodes} episodes in ${formatNumber(s.seconds)} s`]);
  const tp = input.throughput;
  if (tp && tp.wallSeconds > 0) {
    const perMinute = (60 * tp.evaluations) / tp.wallSeconds;
    const busy = tp.workerSeconds / tp.wallSeconds;
    rows.push(['evaluation throughput', `${formatNumber(perMinute)} evaluations/min (+ ${formatNumber((60 * tp.screeningRuns) / tp.wallSeconds)} screening runs/min); ${tp.proposals} proposed per round on ${tp.workers}; ${formatNumber(busy)} jobs running on average`]);
  }
  rows.push(['precisions (best policy)', {
    html: PRECISIONS.map((p) => `${precisionBadge(p).html} ${s.precisions[p]}`).join(' &nbsp; ') +
      ` &nbsp; of ${input.layers.length} layers; ${escapeHtml(formatNumber(s.int8MacShare * 100))} % of MACs read int8`,
  }]);
  return factsTable(rows);
}

function baselinesTable(input: SearchReportInput): string {
  const hib = input.higherIsBetter ?? true;
  const rows: Cell[][] = input.baselines.map((b) => [b.agent, b.score, b.latencyMs, b.reward, b.feasible ? 'yes' : 'no']);
  if (input.best) rows.unshift([`${input.agent} (best)`, input.best.score, input.best.latencyMs, input.best.reward, 'yes']);
  rows.sort((a, b) => (b[3] as number) - (a[3] as number));
  const bestBaseline = input.baselines.filter((b) => b.feasible).sort((a, b) => b.reward - a.reward)[0];
  const note = input.best && bestBaseline
    ? `<p class="sub">Best feasible baseline: ${escapeHtml(bestBaseline.agent)} (reward ${escapeHtml(formatNumber(bestBaseline.reward))}); ${escapeHtml(input.agent)} ${input.best.reward >= bestBaseline.reward ? 'matches or beats it' : 'is below it'}${isBetter(input.best.score, bestBaseline.score, hib) ? ' with a better score' : ''}.</p>`
    : '';
  return `<section><h2>Agent and baselines</h2>${note}${table(['agent', 'score', 'latency (ms)', 'reward', 'feasible'], rows)}</section>`;
}

/** Links to pareto/: each step's policy and the files to build its engine from. */
function ladderTable(input: SearchReportInput): string {
  if (!input.ladder || input.ladder.length === 0) return '';
  const link = (dir: string, file: string) => `<a href="${escapeHtml(`pareto/${dir}/${file}`)}">${escapeHtml(file)}</a>`;
  const rows: Cell[][] = input.ladder.map((s, i) => [
    String(i + 1),
    { html: `<a href="${escapeHtml(`pareto/${s.dir}/`)}">${escapeHtml(s.dir)}</a>${s.chosen ? ' (chosen)' : ''}${s.allFp16 ? ' (all FP16)' : ''}${s.feasible ? '' : ' <span class="bad">breaks a constraint</span>'}` },
    s.score,
    s.latencyMs,
    `${formatNumber(s.latencyMs / input.fp16LatencyMs)}×`,
    `${formatNumber(100 * s.int8MacsShare)} %`,
    { html: ['policy.json', 'trtexec.txt', 'build_engine.py', 'model.qdq.onnx'].map((f) => link(s.dir, f)).join(' · ') },
  ]);
  return `<section id="ladder"><h2>Ladder of policies (pareto/)</h2><p class="sub">The Pareto front of the measured feasible policies, fastest first, ending at all-FP16; each step has its policy and every export in its folder (<a href="pareto/index.json">pareto/index.json</a> lists them). For a latency budget, take the slowest step within it; to switch at run time, keep the engines of neighbouring steps. <code>trtmix replay pareto/index.json</code> scores every step on new data.</p>${table(['#', 'step', 'score', 'latency (ms)', 'vs all-FP16', 'int8 MACs', 'files'], rows)}</section>`;
}

function layersTable(input: SearchReportInput): string {
  const rows: Cell[][] = input.layers.map((l, i) => [String(i + 1), l.name, l.op, macsCell(l.macs), precisionBadge(l.precision)]);
  return `<details><summary>Layers of the best policy (${input.layers.length})</summary>${table(['#', 'layer', 'op', 'MACs', 'precision'], rows)}</details>`;
}

const CAPTIONS: Record<PlotSpec['id'], string> = {
  'learning-curve': 'Top: end-of-episode reward of every evaluated policy with its moving average. Bottom: the best score among feasible policies so far, against FP32 and the accuracy floor.',
  'score-latency': 'Every evaluated policy (grey = infeasible), the Pareto front of feasible policies (max score, min latency), the baselines as labelled diamonds and the best policy as a star with its 95 % interval; the hollow circle below or above it is the same policy on the held-out test samples, with its interval. Dashed lines: the latency budget and the accuracy floor.',
  'precision-strip': 'The best policy, one bar per quantizable layer in topological order; height is log10 of the layer\'s MACs, colour its precision.',
  sensitivity: 'Per-layer sensitivity features from the analyzer; each column is min-max normalised over the layers so that red = most sensitive (histogram overlap is inverted). Hover a cell for the raw value; grey = not measured.',
};

interface RenderedPlot {
  plot: PlotSpec;
  svg: string;
}

async function renderPlots(plots: PlotSpec[]): Promise<RenderedPlot[]> {
  const out: RenderedPlot[] = [];
  // One at a time: vega views are CPU-bound and the machine may have two cores shared with a search.
  for (const plot of plots) out.push({ plot, svg: await renderSvg(plot) });
  return out;
}

async function writePlots(rendered: RenderedPlot[], outDir: string, options: RenderOptions, files: ReportFiles): Promise<void> {
  for (const { plot, svg } of rendered) {
    const path = join(outDir, 'plots', `${plot.id}.svg`);
    writeFileAtomic(path, svg);
    files.svg.push(path);
  }
  if (options.png === false) {
    files.pngSkipped = 'PNG plots not requested';
    return;
  }
  const rasterise = await loadRasteriser();
  if (typeof rasterise === 'string') {
    files.pngSkipped = rasterise;
    return;
  }
  for (const { plot, svg } of rendered) {
    const path = join(outDir, 'plots', `${plot.id}.png`);
    writeFileAtomic(path, await rasterise(svg));
    files.png.push(path);
  }
}

function sections(rendered: RenderedPlot[]): string {
  return rendered.map(({ plot, svg }) => plotSection({ id: plot.id, title: plot.title, svg: inlineSvg(svg, plot.id), caption: CAPTIONS[plot.id] })).join('\n');
}

/** Writes report.html and plots/ for a search into outDir; returns the paths written. */
export async function renderSearchReport(input: SearchReportInput, outDir: string, options: RenderOptions = {}): Promise<ReportFiles> {
  const files: ReportFiles = { html: join(outDir, 'report.html'), svg: [], png: [] };
  const rendered = await renderPlots([
    learningCurveSpec(input),
    scoreLatencySpec(input),
    precisionStripSpec(input),
    sensitivitySpec(input.sensitivity),
  ]);
  await writePlots(rendered, outDir, options, files);
  const summary = summarise(input);
  const body = [
    `<section><h2>Summary</h2>${summaryTable(input, summary)}</section>`,
    sections(rendered),
    baselinesTable(input),
    ladderTable(input),
    layersTable(input),
  ].join('\n');
  const subtitle = `${input.model.path} · target ${input.target} · agent ${input.agent} · seed ${input.seed}`;
  writeFileAtomic(files.html, page(input.title, subtitle, body));
  return files;
}

function rankedTable(analysis: AnalysisInput): string {
  const columns = featureColumns(analysis);
  const head = ['rank', '#', 'layer', 'op', 'MACs', ...columns.map((c) => c.key)];
  const rows: Cell[][] = rankBySensitivity(analysis.layers).map((l, rank) => [
    String(rank + 1),
    String(l.index + 1),
    l.name,
    l.op,
    macsCell(l.macs),
    ...columns.map((c) => {
      const v = l[c.key];
      return typeof v === 'number' ? v : 'n/a';
    }),
  ]);
  return `<section><h2>Layers ranked by INT8 drop</h2><p class="sub">Most sensitive first: the relative ${escapeHtml(analysis.metricName)} drop with only that layer in INT8.</p>${table(head, rows, 'ranked')}</section>`;
}

/** Writes report.html and plots/sensitivity.* for `trtmix analyze` into outDir. */
export async function renderAnalysisReport(analysis: AnalysisInput, outDir: string, options: RenderOptions & { title?: string } = {}): Promise<ReportFiles> {
  const files: ReportFiles = { html: join(outDir, 'report.html'), svg: [], png: [] };
  const rendered = await renderPlots([sensitivitySpec(analysis)]);
  await writePlots(rendered, outDir, options, files);
  const facts: Array<[string, Cell]> = [];
  if (analysis.model) facts.push(['model', `${analysis.model.path}${analysis.model.sha256 ? ` (sha256 ${analysis.model.sha256.slice(0, 12)})` : ''}`]);
  facts.push(['metric', analysis.metricName]);
  if (analysis.fp32Score !== undefined) facts.push(['FP32 score', analysis.fp32Score]);
  facts.push(['quantizable layers', String(analysis.layers.length)]);
  const body = [`<section><h2>Summary</h2>${factsTable(facts)}</section>`, sections(rendered), rankedTable(analysis)].join('\n');
  const title = options.title ?? 'trtmix analyze: per-layer INT8 sensitivity';
  writeFileAtomic(files.html, page(title, analysis.model?.path ?? analysis.metricName, body));
  return files;
}

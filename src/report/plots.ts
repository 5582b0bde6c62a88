/**
 * The report's four plots as vega-lite specs, rendered to SVG in Node (vega's headless 'none' renderer:
 * no DOM, no canvas; text widths are estimated, which only nudges label placement).
 *
 * Every data mark carries a `description`, which vega writes as the mark's aria-label; `renderSvg` turns
 * that into an SVG <title>, so hovering a point in the browser shows its raw values without any script.
 * Mark groups have fixed names (the `name` of each layer) so tests and the browser check can count marks.
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { Precision } from '../policy.ts';
import { PRECISIONS } from '../policy.ts';
import type { AnalysisInput, SearchReportInput } from './types.ts';
import {
  bestByEpisode,
  featureColumns,
  movingAverage,
  normaliseFeatures,
  paretoFront,
  scoreFloor,
  smoothingWindow,
} from './series.ts';

/** Fixed so the same precision has the same colour in every report (and in the legend even when unused). */
export const PRECISION_COLORS: Record<Precision, string> = {
  int8: '#2a9d8f',
  mixed: '#8ab17d',
  fp16: '#e9c46a',
  fp32: '#e76f51',
};

const WIDTH = 900;

const CONFIG = {
  font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif',
  view: { stroke: '#d0d0d0' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#ececec' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  title: { fontSize: 15, anchor: 'start' as const, offset: 10 },
};

/** Short, exact-enough numbers for hover text and labels. */
export function formatNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

/** MACs with an SI prefix: 1.23 GMAC, 456 kMAC. */
export function formatMacs(macs: number): string {
  const units: Array<[number, string]> = [[1e12, 'TMAC'], [1e9, 'GMAC'], [1e6, 'MMAC'], [1e3, 'kMAC']];
  for (const [scale, unit] of units) if (macs >= scale) return `${Number((macs / scale).toPrecision(3))} ${unit}`;
  return `${macs} MAC`;
}

export interface PlotSpec {
  /** File stem and the prefix that keeps this plot's SVG ids apart from the other plots on the page. */
  id: 'learning-curve' | 'score-latency' | 'precision-strip' | 'sensitivity';
  title: string;
  spec: TopLevelSpec;
}

function emptyPlot(id: PlotSpec['id'], title: string, message: string): PlotSpec {
  return {
    id,
    title,
    spec: {
      config: CONFIG,
      title,
      width: WIDTH,
      height: 80,
      data: { values: [{ message }] },
      name: 'empty',
      mark: { type: 'text', fontSize: 14, color: '#777' },
      encoding: { text: { field: 'message' } },
    } as TopLevelSpec,
  };
}

/** (a) Reward per episode with its trend, above the best feasible score so far. */
export function learningCurveSpec(input: SearchReportInput): PlotSpec {
  const title = 'Learning curve';
  const hib = input.higherIsBetter ?? true;
  if (input.history.length === 0) return emptyPlot('learning-curve', title, 'no policy was evaluated');
  const ordered = [...input.history].sort((a, b) => a.episode - b.episode || a.evaluation - b.evaluation);
  const trend = movingAverage(ordered.map((p) => p.reward), smoothingWindow(ordered.length));
  const points = ordered.map((p, i) => ({
    episode: p.episode,
    reward: p.reward,
    trend: trend[i],
    agent: p.agent,
    tip: `episode ${p.episode} (evaluation ${p.evaluation}, ${p.agent}): reward ${formatNumber(p.reward)}, score ${formatNumber(p.score)}, ${formatNumber(p.latencyMs)} ms${p.feasible ? '' : ', infeasible'}`,
  }));
  const best = bestByEpisode(input.history, hib).map((b) => ({
    ...b,
    tip: `best feasible score after episode ${b.episode}: ${formatNumber(b.best)}`,
  }));
  const floor = scoreFloor(input.fp32Score, input.maxDrop, hib);
  const refs = [{ label: `FP32 ${formatNumber(input.fp32Score)}`, value: input.fp32Score, kind: 'fp32' }];
  if (floor !== undefined) refs.push({ label: `floor ${formatNumber(floor)}`, value: floor, kind: 'floor' });
  const manyAgents = new Set(points.map((p) => p.agent)).size > 1;
  const x = { field: 'episode', type: 'quantitative' as const, title: 'episode', scale: { nice: false }, axis: { tickCount: 12 } };

  const spec = {
    config: CONFIG,
    title,
    resolve: { scale: { x: 'shared' } },
    vconcat: [
      {
        width: WIDTH,
        height: 220,
        data: { values: points },
        layer: [
          {
            name: 'episodes',
            mark: { type: 'point', filled: true, size: 18, opacity: 0.5 },
            encoding: {
              x,
              y: { field: 'reward', type: 'quantitative', title: 'reward', scale: { zero: false } },
              color: manyAgents ? { field: 'agent', type: 'nominal', title: 'agent' } : { value: '#4c78a8' },
              description: { field: 'tip' },
            },
          },
          {
            name: 'reward_trend',
            mark: { type: 'line', color: '#1d3557', strokeWidth: 2 },
            encoding: { x, y: { field: 'trend', type: 'quantitative' }, description: { value: 'reward, moving average' } },
          },
        ],
      },
      {
        width: WIDTH,
        height: 160,
        layer: [
          {
            name: 'best_score',
            data: { values: best },
            mark: { type: 'line', interpolate: 'step-after', color: '#e76f51', strokeWidth: 2, point: false },
            encoding: {
              x,
              y: { field: 'best', type: 'quantitative', title: 'best feasible score', scale: { zero: false } },
              description: { field: 'tip' },
            },
          },
          {
            name: 'score_refs',
            data: { values: refs },
            mark: { type: 'rule', strokeDash: [5, 4] },
            encoding: {
              y: { field: 'value', type: 'quantitative' },
              color: { field: 'kind', type: 'nominal', scale: { domain: ['fp32', 'floor'], range: ['#666666', '#d62828'] }, legend: null },
              description: { field: 'label' },
            },
          },
          {
            name: 'score_ref_labels',
            data: { values: refs },
            mark: { type: 'text', align: 'right', dy: -6, x: WIDTH - 4, fontSize: 11 },
            encoding: { y: { field: 'value', type: 'quantitative' }, text: { field: 'label' }, description: { field: 'label' } },
          },
        ],
      },
    ],
  };
  return { id: 'learning-curve', title, spec: spec as unknown as TopLevelSpec };
}

/** (b) Every evaluated policy, the feasible Pareto front, the baselines, and the two constraints. */
export function scoreLatencySpec(input: SearchReportInput): PlotSpec {
  const title = 'Score vs latency';
  const hib = input.higherIsBetter ?? true;
  if (input.history.length === 0 && input.baselines.length === 0) return emptyPlot('score-latency', title, 'no policy was evaluated');
  const evaluations = input.history.map((p) => ({
    latencyMs: p.latencyMs,
    score: p.score,
    status: p.feasible ? 'feasible' : 'infeasible',
    tip: `evaluation ${p.evaluation} (episode ${p.episode}, ${p.agent}): score ${formatNumber(p.score)}, ${formatNumber(p.latencyMs)} ms, reward ${formatNumber(p.reward)}${p.feasible ? '' : ', infeasible'}`,
  }));
  const front = paretoFront(input.history, hib).map((p) => ({
    latencyMs: p.latencyMs,
    score: p.score,
    tip: `Pareto front: score ${formatNumber(p.score)} at ${formatNumber(p.latencyMs)} ms (evaluation ${p.evaluation})`,
  }));
  const baselines = input.baselines.map((b) => ({
    ...b,
    tip: `baseline ${b.agent}: score ${formatNumber(b.score)}, ${formatNumber(b.latencyMs)} ms, reward ${formatNumber(b.reward)}${b.feasible ? '' : ', infeasible'}`,
  }));
  const floor = scoreFloor(input.fp32Score, input.maxDrop, hib);
  const x = { field: 'latencyMs', type: 'quantitative' as const, title: `latency (ms, ${input.target})`, scale: { zero: false, nice: true }, axis: { tickCount: 12 } };
  const y = { field: 'score', type: 'quantitative' as const, title: input.metricName ? `score (${input.metricName})` : 'score', scale: { zero: false, nice: true } };

  const layer: unknown[] = [
    {
      name: 'evaluations',
      data: { values: evaluations },
      mark: { type: 'point', size: 22, filled: true },
      encoding: {
        x,
        y,
        color: { field: 'status', type: 'nominal', title: 'evaluated policy', scale: { domain: ['feasible', 'infeasible'], range: ['#4c78a8', '#c4c4c4'] } },
        opacity: { value: 0.65 },
        description: { field: 'tip' },
      },
    },
    {
      name: 'pareto',
      data: { values: front },
      mark: { type: 'line', interpolate: hib ? 'step-after' : 'step-before', color: '#e76f51', strokeWidth: 2 },
      encoding: { x, y, description: { value: 'Pareto front of feasible policies' } },
    },
    {
      name: 'pareto_points',
      data: { values: front },
      mark: { type: 'point', filled: true, color: '#e76f51', size: 34, opacity: 1 },
      encoding: { x, y, description: { field: 'tip' } },
    },
  ];
  if (baselines.length > 0) {
    layer.push(
      {
        name: 'baselines',
        data: { values: baselines },
        mark: { type: 'point', shape: 'diamond', size: 160, filled: true, stroke: '#222', strokeWidth: 1 },
        encoding: {
          x,
          y,
          color: { field: 'agent', type: 'nominal', title: 'baseline', scale: { scheme: 'dark2' } },
          description: { field: 'tip' },
        },
      },
      {
        name: 'baseline_labels',
        data: { values: baselines },
        mark: { type: 'text', align: 'left', dx: 9, dy: -8, fontSize: 11, fontWeight: 'bold' },
        encoding: { x, y, text: { field: 'agent' }, color: { field: 'agent', type: 'nominal', scale: { scheme: 'dark2' }, legend: null }, description: { field: 'tip' } },
      },
    );
  }
  if (input.best?.ci95) {
    const [lo, hi] = input.best.ci95;
    layer.push({
      name: 'best_interval',
      data: { values: [{ latencyMs: input.best.latencyMs, score: lo, scoreHigh: hi, tip: `best on the search split: 95 % interval [${formatNumber(lo)}, ${formatNumber(hi)}]` }] },
      mark: { type: 'rule', color: '#9c5a1a', strokeWidth: 2 },
      encoding: { x, y, y2: { field: 'scoreHigh' }, description: { field: 'tip' } },
    });
  }
  if (input.best && input.test) {
    const t = input.test;
    // A hair to the right of the star, so that the two intervals stay apart when they overlap.
    const latencyMs = input.best.latencyMs;
    const tip = `best policy on ${t.samples} held-out test samples: score ${formatNumber(t.score)} [${formatNumber(t.ci95[0])}, ${formatNumber(t.ci95[1])}], FP32 ${formatNumber(t.fp32Score)} on them, drop ${formatNumber(100 * t.drop)} %`;
    layer.push(
      {
        name: 'best_test_interval',
        data: { values: [{ latencyMs, score: t.ci95[0], scoreHigh: t.ci95[1], tip }] },
        mark: { type: 'rule', color: '#264653', strokeWidth: 2, xOffset: 7 },
        encoding: { x, y, y2: { field: 'scoreHigh' }, description: { field: 'tip' } },
      },
      {
        name: 'best_test',
        data: { values: [{ latencyMs, score: t.score, tip }] },
        mark: { type: 'point', shape: 'circle', size: 150, filled: false, color: '#264653', strokeWidth: 2.5, opacity: 1, xOffset: 7 },
        encoding: { x, y, description: { field: 'tip' } },
      },
      {
        name: 'best_test_label',
        data: { values: [{ latencyMs, score: t.score, label: `test ${formatNumber(t.score)}`, tip }] },
        mark: { type: 'text', align: 'left', dx: 16, fontSize: 11, color: '#264653' },
        encoding: { x, y, text: { field: 'label' }, description: { field: 'tip' } },
      },
    );
  }
  if (input.best) {
    layer.push({
      name: 'best',
      data: { values: [{ ...input.best, tip: `best: score ${formatNumber(input.best.score)} (search split), ${formatNumber(input.best.latencyMs)} ms, reward ${formatNumber(input.best.reward)}` }] },
      mark: { type: 'point', shape: 'M0,-1L0.24,-0.31L0.95,-0.31L0.38,0.12L0.59,0.81L0,0.4L-0.59,0.81L-0.38,0.12L-0.95,-0.31L-0.24,-0.31Z', size: 420, filled: true, color: '#f4a261', stroke: '#222', strokeWidth: 1, opacity: 1 },
      encoding: { x, y, description: { field: 'tip' } },
    });
  }
  if (input.budgetMs !== undefined && Number.isFinite(input.budgetMs)) {
    const budget = [{ latencyMs: input.budgetMs, label: `budget ${formatNumber(input.budgetMs)} ms` }];
    layer.push(
      {
        name: 'budget',
        data: { values: budget },
        mark: { type: 'rule', color: '#d62828', strokeDash: [6, 4], strokeWidth: 1.5 },
        encoding: { x, description: { field: 'label' } },
      },
      {
        name: 'budget_label',
        data: { values: budget },
        mark: { type: 'text', align: 'left', baseline: 'top', dx: 4, y: 4, color: '#d62828', fontSize: 11 },
        encoding: { x, text: { field: 'label' }, description: { field: 'label' } },
      },
    );
  }
  if (floor !== undefined) {
    const rule = [{ score: floor, label: `accuracy floor ${formatNumber(floor)} (max drop ${formatNumber((input.maxDrop ?? 0) * 100)} %)` }];
    layer.push(
      {
        name: 'floor',
        data: { values: rule },
        mark: { type: 'rule', color: '#d62828', strokeDash: [2, 3], strokeWidth: 1.5 },
        encoding: { y, description: { field: 'label' } },
      },
      {
        name: 'floor_label',
        data: { values: rule },
        mark: { type: 'text', align: 'right', baseline: 'top', x: WIDTH - 4, dy: 3, color: '#d62828', fontSize: 11 },
        encoding: { y, text: { field: 'label' }, description: { field: 'label' } },
      },
    );
  }
  const spec = {
    title,
    width: WIDTH,
    height: 420,
    layer,
    resolve: { scale: { color: 'independent' } },
    config: { ...CONFIG, legend: { ...CONFIG.legend, orient: 'bottom', direction: 'horizontal' } },
  };
  return { id: 'score-latency', title, spec: spec as unknown as TopLevelSpec };
}

/** (c) The best policy, one bar per layer in topological order, height log10 MACs, colour precision. */
export function precisionStripSpec(input: SearchReportInput): PlotSpec {
  const title = 'Per-layer precision (best policy)';
  if (input.layers.length === 0) return emptyPlot('precision-strip', title, 'the model has no quantizable layers');
  const n = input.layers.length;
  const values = input.layers.map((l, index) => ({
    index,
    row: `${index + 1}. ${l.name}`,
    precision: l.precision,
    logMacs: Math.log10(Math.max(1, l.macs)),
    tip: `${index + 1}. ${l.name} (${l.op}): ${l.precision}, ${formatMacs(l.macs)}`,
  }));
  const showNames = n <= 60;
  const spec = {
    config: CONFIG,
    title,
    width: WIDTH,
    height: 200,
    data: { values },
    mark: { type: 'bar' },
    name: 'layers',
    encoding: {
      x: {
        // Numbered labels keep duplicate names apart and read in model order.
        field: 'row',
        type: 'nominal',
        sort: { field: 'index', op: 'min' },
        title: showNames ? 'layer (topological order)' : `${n} layers in topological order (hover a bar for its name)`,
        axis: showNames ? { labelAngle: -60, labelLimit: 140, labelFontSize: 9 } : { labels: false, ticks: false },
        scale: { paddingInner: n > 150 ? 0 : 0.15 },
      },
      y: { field: 'logMacs', type: 'quantitative', title: 'log10 MACs' },
      color: {
        field: 'precision',
        type: 'nominal',
        title: 'precision',
        scale: { domain: [...PRECISIONS], range: PRECISIONS.map((p) => PRECISION_COLORS[p]) },
      },
      description: { field: 'tip' },
    },
  };
  return { id: 'precision-strip', title, spec: spec as unknown as TopLevelSpec };
}

/** (d) Layers x analyzer features, each column min-max normalised so that 1 = the most sensitive layer. */
export function sensitivitySpec(analysis: AnalysisInput | undefined): PlotSpec {
  const title = 'Sensitivity (per-layer features, normalised per column)';
  if (!analysis || analysis.layers.length === 0) return emptyPlot('sensitivity', title, 'no sensitivity analysis for this run');
  const columns = featureColumns(analysis);
  if (columns.length === 0) return emptyPlot('sensitivity', title, 'the analysis has no finite feature values');
  const cells = normaliseFeatures(analysis).map((c) => ({
    ...c,
    row: `${c.index + 1}. ${c.layer}`,
    tip: `${c.index + 1}. ${c.layer} (${c.op}) ${c.feature}: ${formatNumber(c.raw)}${c.norm === null ? '' : ` (normalised ${formatNumber(c.norm)})`}`,
  }));
  const n = analysis.layers.length;
  const step = Math.max(3, Math.min(14, Math.floor(1600 / n)));
  const spec = {
    config: CONFIG,
    title,
    width: Math.min(WIDTH - 260, columns.length * 90),
    height: { step },
    data: { values: cells },
    mark: { type: 'rect', invalid: 'show', stroke: '#ffffff', strokeWidth: step >= 8 ? 0.5 : 0 },
    name: 'cells',
    encoding: {
      x: {
        field: 'feature',
        type: 'nominal',
        title: null,
        sort: columns.map((c) => c.label),
        axis: { orient: 'top', labelAngle: -30, labelLimit: 240 },
      },
      y: {
        field: 'row',
        type: 'nominal',
        title: step >= 8 ? 'layer (topological order)' : `${n} layers in topological order (hover a cell for its name)`,
        sort: { field: 'index', op: 'min' },
        axis: step >= 8 ? { labelLimit: 240, labelFontSize: Math.min(11, step - 1) } : { labels: false, ticks: false },
      },
      color: {
        condition: { test: 'datum.norm === null', value: '#eeeeee' },
        field: 'norm',
        type: 'quantitative',
        title: 'sensitivity',
        scale: { domain: [0, 1], scheme: 'yelloworangered' },
        legend: { orient: 'right', gradientLength: 160 },
      },
      description: { field: 'tip' },
    },
  };
  return { id: 'sensitivity', title, spec: spec as unknown as TopLevelSpec };
}

/** Marks' aria-labels become <title> children, which browsers show on hover (and screen readers read). */
function addHoverTitles(svg: string): string {
  return svg.replace(/<(\w+)((?:\s+[\w:-]+="[^"]*")*)\s*\/>/g, (whole, tag: string, attrs: string) => {
    if (!attrs.includes('role="graphics-symbol"')) return whole;
    const label = /\saria-label="([^"]*)"/.exec(attrs);
    if (!label) return whole;
    // aria-label is already attribute-escaped (& < > " encoded), which is also valid element text. The <title>
    // names the mark for screen readers too, so the label is not kept twice (it would double the page size).
    return `<${tag}${attrs.replace(label[0], '')}><title>${label[1]}</title></${tag}>`;
  });
}

/**
 * Several SVGs share one page: ids (clip paths, gradients) are renamed `<plot>-<n>` in order of appearance, so
 * plots cannot collide, and a re-render gives the same bytes (vega numbers them with process-wide counters).
 */
function renameIds(svg: string, prefix: string): string {
  const names = new Map<string, string>();
  for (const m of svg.matchAll(/\sid="([^"]+)"/g)) if (!names.has(m[1])) names.set(m[1], `${prefix}-${names.size}`);
  const rename = (id: string) => names.get(id) ?? id;
  return svg
    .replace(/\sid="([^"]+)"/g, (_, id: string) => ` id="${rename(id)}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${rename(id)})`)
    .replace(/href="#([^"]+)"/g, (_, id: string) => `href="#${rename(id)}"`);
}

/** Renders a vega-lite spec to a standalone SVG document (with xmlns, as an .svg file needs). */
export async function renderSvg(plot: PlotSpec): Promise<string> {
  const compiled = vl.compile(plot.spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    const svg = await view.toSVG();
    return renameIds(addHoverTitles(svg), plot.id);
  } finally {
    view.finalize();
  }
}

/**
 * The same SVG for inlining into HTML: the HTML parser puts <svg> in the SVG namespace by itself, so the
 * xmlns declarations (the page's only URLs) are dropped.
 */
export function inlineSvg(svg: string, plotId: string): string {
  return svg
    .replace(/\sxmlns(:xlink)?="[^"]*"/g, '')
    .replace(/^<svg\b/, `<svg data-plot="${plotId}" role="img"`);
}

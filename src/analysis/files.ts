/**
 * What `trtmix analyze` leaves in --out, and reading it back: analysis.json (the full result, reloadable by the
 * search), analysis.md (the ranked table), metrics.prom (Prometheus text format) and report.html with the
 * per-layer heatmap (rendered by src/report).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { writeFileAtomic } from '../fs.ts';
import { renderAnalysisReport } from '../report/index.ts';
import type { AnalysisInput, ReportFiles } from '../report/types.ts';
import { ANALYSIS_VERSION, KL_FLAG, OVERLAP_FLAG, rankLayers, scoreDrop, type Analysis, type LayerAnalysis } from './analyze.ts';
import { formatExposition, type PromFamily } from './prometheus.ts';

/** The report module's view of an analysis (its heatmap and ranked table). */
export function toAnalysisInput(a: Analysis): AnalysisInput {
  return {
    metricName: a.metric.name,
    fp32Score: a.fp32Score,
    ...(a.model.path ? { model: a.model } : {}),
    layers: a.layers.map((l) => ({
      name: l.name, op: l.op, macs: l.macs,
      int8Drop: l.int8Drop, leaveOneOutDrop: l.leaveOneOutDrop,
      mse: l.mse, kl: l.kl, histogramOverlap: l.histogramOverlap,
      outlierFraction: l.outlierFraction, rangeWaste: l.rangeWaste,
    })),
  };
}

function num(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : v.toPrecision(digits).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
}

function pct(v: number): string {
  return `${num(100 * v, 3)} %`;
}

/** A table cell: pipes and line breaks would end the cell or the row. */
function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function dropText(a: Analysis, v: number): string {
  return a.drop === 'relative' ? pct(v) : num(v);
}

export function analysisMarkdown(a: Analysis): string {
  const ranked = rankLayers(a.layers);
  const out: string[] = [];
  out.push('# trtmix analyze: per-layer INT8 sensitivity', '');
  out.push(`- model: ${cell(a.model.path || '(in memory)')}${a.model.sha256 ? ` (sha256 ${a.model.sha256.slice(0, 12)})` : ''}`);
  out.push(`- metric: ${cell(a.metric.name)} (${a.metric.higherIsBetter ? 'higher' : 'lower'} is better) on ${a.samples} evaluation samples; layer outputs compared on the first ${a.statsSamples}`);
  out.push(`- FP32 score ${num(a.fp32Score)}; all layers INT8 ${num(a.int8Score)} (drop ${dropText(a, scoreDrop(a.int8Score, a.fp32Score, a.metric.higherIsBetter))})`);
  out.push(`- calibration: ${a.calibration.method} on ${a.calibration.samples} samples; ${a.layers.length} quantizable layers; analysis took ${num(a.seconds, 3)} s`);
  out.push('');
  out.push('## Layers ranked by sensitivity', '');
  out.push(`Most sensitive first: by the metric drop with only that layer in INT8 (**int8 drop**), then by what taking it out of all-INT8 recovers (**leave-one-out**), then by KL. Drops are ${a.drop === 'relative' ? 'relative to the FP32 score' : 'absolute (the FP32 score is 0)'}; positive is worse.`, '');
  out.push('| rank | # | layer | op | int8 drop | leave-one-out | MSE | SQNR dB | KL | overlap | outliers ±4σ | range waste | flags |');
  out.push('|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const l of ranked) {
    out.push(`| ${l.rank} | ${l.index + 1} | ${cell(l.name)} | ${l.op} | ${dropText(a, l.int8Drop)} | ${dropText(a, l.leaveOneOutDrop)} | ${num(l.mse)} | ${num(l.sqnrDb, 3)} | ${num(l.kl)} | ${num(l.histogramOverlap, 3)} | ${pct(l.outlierFraction)} | ${num(l.rangeWaste, 2)} | ${l.flags.join(', ')} |`);
  }
  const flagged = (f: LayerAnalysis['flags'][number]) => ranked.filter((l) => l.flags.includes(f)).map((l) => cell(l.name));
  out.push('', '## Flags', '');
  out.push(`- KL > ${a.thresholds.kl}: ${flagged('kl').join(', ') || 'none'}`);
  out.push(`- histogram overlap < ${a.thresholds.histogramOverlap}: ${flagged('overlap').join(', ') || 'none'}`);
  out.push(`- range waste >= ${a.thresholds.rangeWaste} (half or more of the symmetric int8 range unused, e.g. ReLU6 / Clip outputs): ${flagged('range').join(', ') || 'none'}`);
  out.push('', '## How the columns are measured', '');
  out.push('- **int8 drop**: the metric with only this layer in INT8 (input, per-channel weights and output quantized), the rest FP32.');
  out.push('- **leave-one-out**: every layer INT8 except this one, minus all-INT8; the share of the all-INT8 loss this layer causes.');
  out.push(`- **MSE**, **SQNR**: the layer's output with only it in INT8 vs FP32. **KL** (KL(P_fp32 || Q_int8), nats, each bin smoothed by ${a.histogram.klEpsilon}) and **overlap** (sum min(h_fp32, h_int8) / sum h_fp32) compare the two value histograms, binned on the output's int8 grid (at most ${a.histogram.maxBins} bins, at most sqrt(n)): rounding to int8 alone leaves them equal, so what they show is clipping and error carried in from the inputs and weights.`);
  out.push('- **outliers ±4σ**: share of the layer input\'s values beyond mean ± 4 std (calibration set). **range waste**: share of the output\'s [-amax, amax] its observed values never reach.');
  out.push('- analysis.json also has, per layer, the input amax under max / percentile 99.99, 99.999 / entropy / mse calibration and the share of input values the default amax clips.');
  return `${out.join('\n')}\n`;
}

/**
 * The per-layer gauges of an analysis, by the field of LayerAnalysis each reads: metrics.prom writes them, and the
 * live /metrics of a running command (src/monitor) serves the same names as the layers are measured.
 */
export const LAYER_GAUGES = [
  { name: 'trtmix_layer_int8_drop', field: 'int8Drop', help: 'Metric drop with only this layer in INT8 (relative to the FP32 score, absolute where that is 0; positive is worse).' },
  { name: 'trtmix_layer_leave_one_out_drop', field: 'leaveOneOutDrop', help: 'Metric recovered by keeping only this layer out of all-INT8 (in the units of trtmix_layer_int8_drop).' },
  { name: 'trtmix_quantization_error', field: 'mse', help: 'Mean squared error of the layer output, INT8 alone vs FP32.' },
  { name: 'trtmix_layer_sqnr_db', field: 'sqnrDb', help: 'Signal-to-quantization-noise ratio of the layer output in dB.' },
  { name: 'trtmix_kl_divergence', field: 'kl', help: `KL divergence (nats) of the FP32 vs INT8 output histograms; flagged above ${KL_FLAG}.` },
  { name: 'trtmix_histogram_overlap', field: 'histogramOverlap', help: `Overlap sum(min(h_fp32, h_int8)) / sum(h_fp32) of the output histograms; flagged below ${OVERLAP_FLAG}.` },
  { name: 'trtmix_outlier_fraction', field: 'outlierFraction', help: 'Share of the layer input beyond mean +- 4 std on the calibration set.' },
  { name: 'trtmix_clipped_fraction', field: 'clippedFraction', help: 'Share of the layer input beyond its amax under the default calibration.' },
  { name: 'trtmix_range_waste', field: 'rangeWaste', help: 'Share of the symmetric int8 range of the layer output that its values never reach.' },
  { name: 'trtmix_layer_sensitivity_rank', field: 'rank', help: 'Rank of the layer by sensitivity, 1 = most sensitive.' },
] as const satisfies ReadonlyArray<{ name: string; field: keyof LayerAnalysis; help: string }>;

/** The labels every per-layer sample carries. */
export function layerLabels(l: Pick<LayerAnalysis, 'name' | 'op' | 'index'>): { layer: string; op: string; index: string } {
  return { layer: l.name, op: l.op, index: String(l.index) };
}

export function analysisMetrics(a: Analysis): string {
  const metric = { metric: a.metric.name };
  return formatExposition([
    { name: 'trtmix_fp32_score', help: 'Metric of the FP32 model on the analysis samples.', type: 'gauge', samples: [{ labels: metric, value: a.fp32Score }] },
    { name: 'trtmix_int8_score', help: 'Metric with every quantizable layer in INT8 on the analysis samples.', type: 'gauge', samples: [{ labels: metric, value: a.int8Score }] },
    ...LAYER_GAUGES.map((g): PromFamily => ({ name: g.name, help: g.help, type: 'gauge', samples: a.layers.map((l) => ({ labels: layerLabels(l), value: l[g.field] })) })),
    {
      name: 'trtmix_layer_input_amax', help: 'amax of the layer input under each calibration method.', type: 'gauge',
      samples: a.layers.flatMap((l) => Object.entries(l.inputAmax).map(([method, value]) => ({ labels: { layer: l.name, index: String(l.index), method }, value }))),
    },
    { name: 'trtmix_analysis_seconds', help: 'Wall time of the analysis.', type: 'gauge', samples: [{ value: a.seconds }] },
  ]);
}

export interface AnalysisFiles {
  json: string;
  markdown: string;
  prometheus: string;
  report: ReportFiles;
}

export function analysisJson(a: Analysis): string {
  return `${JSON.stringify(a, null, 2)}\n`;
}

/** Writes analysis.json, analysis.md, metrics.prom, report.html and plots/ into outDir, each atomically. */
export async function writeAnalysis(a: Analysis, outDir: string, opts: { png?: boolean } = {}): Promise<AnalysisFiles> {
  const files = { json: join(outDir, 'analysis.json'), markdown: join(outDir, 'analysis.md'), prometheus: join(outDir, 'metrics.prom') };
  writeFileAtomic(files.json, analysisJson(a));
  writeFileAtomic(files.markdown, analysisMarkdown(a));
  writeFileAtomic(files.prometheus, analysisMetrics(a));
  const report = await renderAnalysisReport(toAnalysisInput(a), outDir, { png: opts.png });
  return { ...files, report };
}

const NUMERIC_FIELDS = ['index', 'macs', 'int8Score', 'int8Drop', 'leaveOneOutScore', 'leaveOneOutDrop', 'mse', 'sqnrDb', 'kl', 'histogramOverlap', 'outlierFraction', 'rangeWaste', 'rank'] as const;

/** Reads analysis.json (from `trtmix analyze --out`) back; a file that is not one is a UserError naming what is wrong. */
export function loadAnalysis(path: string): Analysis {
  if (!existsSync(path)) throw new UserError(`analysis file ${path} does not exist; run trtmix analyze --out DIR and pass DIR/analysis.json`);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`analysis file ${path} is not JSON (${(e as Error).message}); pass the analysis.json that trtmix analyze wrote`);
  }
  const a = doc as Partial<Analysis>;
  if (!a || typeof a !== 'object' || a.version !== ANALYSIS_VERSION || !Array.isArray(a.layers)) {
    throw new UserError(`${path} is not a trtmix analysis (version ${ANALYSIS_VERSION} with a layers list); re-run trtmix analyze`);
  }
  a.layers.forEach((l, i) => {
    if (!l || typeof l.name !== 'string') throw new UserError(`${path}: layer ${i} has no name; re-run trtmix analyze`);
    for (const k of NUMERIC_FIELDS) {
      if (typeof l[k] !== 'number') throw new UserError(`${path}: layer ${l.name} has no numeric ${k}; re-run trtmix analyze`);
    }
  });
  return a as Analysis;
}

/** The analysis's layers in the order of `layerNames`; a UserError when the analysis is of another model. */
export function layersInOrder(a: Analysis, layerNames: readonly string[]): LayerAnalysis[] {
  const byName = new Map(a.layers.map((l) => [l.name, l]));
  const missing = layerNames.filter((n) => !byName.has(n));
  if (missing.length > 0 || a.layers.length !== layerNames.length) {
    throw new UserError(`the analysis${a.model.path ? ` of ${a.model.path}` : ''} does not match this model's ${layerNames.length} layers (${missing.length ? `missing ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}` : `it has ${a.layers.length}`}); re-run trtmix analyze on this model`);
  }
  return layerNames.map((n) => byName.get(n)!);
}

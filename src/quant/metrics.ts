/**
 * Metrics: built-in ones and plugins. A metric scores a candidate's per-sample outputs against the FP32 reference
 * (and labels where it needs them). Plugin contract (DESIGN.md): an ES module whose default export is
 * `{ name, higherIsBetter?, score({ outputs, reference, labels }) }`, outputs[i] / reference[i] being sample i's
 * outputs by name as { data: Float32Array, dims } without the batch dimension. Optional `statistics` /
 * `fromStatistics` state the metric as a function of per-sample sums, which makes its bootstrap intervals cheap.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../errors.ts';

export interface SampleTensor { data: Float32Array; dims: number[] }
export type SampleOutputs = Record<string, SampleTensor>;

export interface MetricInput {
  outputs: SampleOutputs[];
  reference: SampleOutputs[];
  labels?: unknown[];
}

export interface Metric {
  name: string;
  higherIsBetter: boolean;
  /** Whether the metric needs --labels. */
  needsLabels?: boolean;
  score(input: MetricInput): number | Promise<number>;
  /**
   * Optional: per-sample statistics (one row of k numbers per sample) whose column sums determine the score:
   * `fromStatistics(sums, count)` must equal `score` on the same samples. A mean of per-sample values has k = 1;
   * corpus character accuracy has (edit errors, characters). Bootstrap intervals then cost a sum per resample
   * instead of a call of `score`.
   */
  statistics?(input: MetricInput): number[][] | Promise<number[][]>;
  fromStatistics?(sums: number[], count: number): number;
}

function firstOutput(o: SampleOutputs): SampleTensor {
  const k = Object.keys(o)[0];
  return o[k];
}

function argmax(data: Float32Array, start: number, length: number): number {
  let best = start;
  for (let i = start + 1; i < start + length; i++) if (data[i] > data[best]) best = i;
  return best - start;
}

/** Argmax over the last axis, for every row of a sample's first output. */
function rowArgmax(t: SampleTensor): number[] {
  const classes = t.dims.length > 0 ? t.dims[t.dims.length - 1] : t.data.length;
  const rows = Math.max(1, Math.floor(t.data.length / Math.max(1, classes)));
  return Array.from({ length: rows }, (_, r) => argmax(t.data, r * classes, classes));
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

/** A metric that is the mean over samples of one per-sample value; that value is its statistic. */
function sampleMean(
  m: { name: string; higherIsBetter: boolean; needsLabels?: boolean },
  value: (output: SampleOutputs, reference: SampleOutputs, label: unknown) => number,
): Metric {
  const values = ({ outputs, reference, labels }: MetricInput) => outputs.map((o, i) => value(o, reference[i], labels?.[i]));
  return {
    ...m,
    score: (input) => mean(values(input)),
    statistics: (input) => values(input).map((v) => [v]),
    fromStatistics: ([sum], count) => (count ? sum / count : 0),
  };
}

function concatAll(o: SampleOutputs): Float32Array[] {
  return Object.keys(o).sort().map((k) => o[k].data);
}

export const top1: Metric = sampleMean(
  { name: 'top1', higherIsBetter: true, needsLabels: true },
  (o, _ref, label) => (rowArgmax(firstOutput(o))[0] === Number(label) ? 1 : 0),
);

/** Share of rows (positions) whose top-1 class matches FP32's; sequence models compare every timestep. */
export const agreement: Metric = sampleMean({ name: 'agreement', higherIsBetter: true }, (o, ref) => {
  const a = rowArgmax(firstOutput(o));
  const b = rowArgmax(firstOutput(ref));
  return mean(a.map((x, j) => (x === b[j] ? 1 : 0)));
});

export const cosine: Metric = sampleMean({ name: 'cosine', higherIsBetter: true }, (o, ref) => {
  let dot = 0; let na = 0; let nb = 0;
  const xs = concatAll(o); const ys = concatAll(ref);
  xs.forEach((x, k) => { const y = ys[k]; for (let j = 0; j < x.length; j++) { dot += x[j] * y[j]; na += x[j] * x[j]; nb += y[j] * y[j]; } });
  return na === 0 && nb === 0 ? 1 : dot / (Math.sqrt(na) * Math.sqrt(nb) || 1);
});

/** Signal-to-quantization-noise ratio in dB, mean over samples (capped at 100 dB for exact matches). */
export const sqnr: Metric = sampleMean({ name: 'sqnr', higherIsBetter: true }, (o, ref) => {
  let sig = 0; let noise = 0;
  const xs = concatAll(o); const ys = concatAll(ref);
  xs.forEach((x, k) => { const y = ys[k]; for (let j = 0; j < x.length; j++) { sig += y[j] * y[j]; noise += (x[j] - y[j]) ** 2; } });
  return noise === 0 ? 100 : Math.min(100, 10 * Math.log10(sig / noise));
});

export const mse: Metric = sampleMean({ name: 'mse', higherIsBetter: false }, (o, ref) => {
  let s = 0; let n = 0;
  const xs = concatAll(o); const ys = concatAll(ref);
  xs.forEach((x, k) => { const y = ys[k]; for (let j = 0; j < x.length; j++) s += (x[j] - y[j]) ** 2; n += x.length; });
  return n ? s / n : 0;
});

/** IoU of the thresholded first output against FP32's (segmentation / detection maps such as DB's). */
export function iouMetric(threshold = 0.5): Metric {
  return sampleMean({ name: 'iou', higherIsBetter: true }, (o, ref) => {
    const a = firstOutput(o).data; const b = firstOutput(ref).data;
    let inter = 0; let uni = 0;
    for (let j = 0; j < a.length; j++) { const x = a[j] > threshold; const y = b[j] > threshold; if (x && y) inter++; if (x || y) uni++; }
    return uni === 0 ? 1 : inter / uni;
  });
}

export const BUILTIN_METRICS = ['top1', 'agreement', 'cosine', 'sqnr', 'mse', 'iou'] as const;

export function isPluginPath(spec: string): boolean {
  return /\.(mjs|js|ts|mts)$/.test(spec) || spec.includes('/') || spec.includes('\\');
}

/** Resolves --metric: a built-in name or a path to a plugin module. */
export async function loadMetric(spec: string, opts: { iouThreshold?: number } = {}): Promise<Metric> {
  switch (spec) {
    case 'top1': return top1;
    case 'agreement': return agreement;
    case 'cosine': return cosine;
    case 'sqnr': return sqnr;
    case 'mse': return mse;
    case 'iou': return iouMetric(opts.iouThreshold ?? 0.5);
  }
  if (!isPluginPath(spec)) throw new UserError(`unknown metric ${spec}; use one of ${BUILTIN_METRICS.join(', ')}, or a plugin file such as ./my-metric.mjs`);
  const path = resolve(spec);
  if (!existsSync(path)) throw new UserError(`metric plugin ${spec} does not exist; check the --metric path`);
  let mod: { default?: Partial<Metric> };
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (e) {
    throw new UserError(`metric plugin ${spec} could not be loaded: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const m = mod.default;
  if (!m || typeof m.score !== 'function') throw new UserError(`metric plugin ${spec} must default-export { name, higherIsBetter?, score({ outputs, reference, labels }) }`);
  const name = typeof m.name === 'string' && m.name ? m.name : spec;
  const metric: Metric = { name, higherIsBetter: m.higherIsBetter ?? true, needsLabels: m.needsLabels, score: m.score.bind(m) };
  if ((typeof m.statistics === 'function') !== (typeof m.fromStatistics === 'function')) {
    throw new UserError(`metric plugin ${spec} defines only one of statistics and fromStatistics; give both (per-sample sums and the score from them) or neither`);
  }
  if (typeof m.statistics === 'function' && typeof m.fromStatistics === 'function') {
    metric.statistics = m.statistics.bind(m);
    metric.fromStatistics = m.fromStatistics.bind(m);
  }
  return metric;
}

/** Calls a metric and turns a throw or a non-number into a user error naming the metric. */
export async function scoreWith(metric: Metric, input: MetricInput): Promise<number> {
  let v: unknown;
  try {
    v = await metric.score(input);
  } catch (e) {
    throw new UserError(`metric ${metric.name} threw: ${(e as Error)?.message ?? String(e)}; fix the metric plugin (--verbose shows where)`, { cause: e });
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    // JSON.stringify would print NaN and Infinity as null.
    const shown = typeof v === 'number' ? String(v) : v === undefined ? 'undefined' : JSON.stringify(v);
    throw new UserError(`metric ${metric.name} returned ${shown} instead of a finite number; fix the metric plugin`);
  }
  return v;
}

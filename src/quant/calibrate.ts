/**
 * Calibration: one sweep over the calibration set collects, for every activation tensor an int8 layer may read or
 * write, its range and moments; a second sweep fills a 2048-bin histogram of |x| over [0, max|x|] (the range must be
 * known before binning, as in TensorRT's calibrators). Every amax method is then a function of these statistics,
 * so a policy can choose the method per layer without running the model again.
 */
import type { ModelProto } from '../onnx/model.ts';
import { createSession, floatData, toOrtFeeds, withOutputs, type Feeds } from '../onnx/runtime.ts';
import { dropPadding } from '../data/batches.ts';
import type { Layer } from '../onnx/layer-types.ts';
import type { CalibrationChoice } from '../policy.ts';
import { addToHistogram, emptyHistogram, entropyAmax, mseAmax, percentileAmax, type AbsHistogram } from './amax.ts';

export interface TensorStats {
  count: number;
  min: number;
  max: number;
  absMax: number;
  mean: number;
  std: number;
  /** Share of values beyond mean ± 4 std: heavy tails make per-tensor int8 lose resolution. */
  outlierFraction: number;
  histogram: AbsHistogram;
}

/** The tensors calibration covers: each layer's activation input(s) and its fused output. */
export function calibrationTensors(layers: Layer[]): string[] {
  const names = new Set<string>();
  for (const l of layers) {
    names.add(l.input);
    if (!l.weightIsConstant) names.add(l.weight);
    names.add(l.fusedOutput);
  }
  return [...names];
}

export type BatchSource = (start: number, end: number) => Feeds;

/**
 * One pass over the calibration batches, visiting every tensor's values. A batch padded to a model's fixed batch
 * (more rows than samples) is visited without its padding, so the statistics are those of the real samples.
 */
export async function sweep(model: ModelProto, tensors: string[], ranges: ReadonlyArray<readonly [number, number]>, batchOf: BatchSource, visit: (name: string, data: Float32Array) => void, onBatch?: (done: number) => void): Promise<void> {
  const session = await createSession(withOutputs(model, tensors), { optimization: 'basic' });
  try {
    for (const [start, end] of ranges) {
      const feeds = batchOf(start, end);
      const rows = Object.values(feeds)[0]?.dims[0] ?? end - start;
      const result = await session.run(toOrtFeeds(feeds));
      for (const name of tensors) visit(name, dropPadding(floatData(result[name]), result[name].dims, rows, end - start));
      onBatch?.(end);
    }
  } finally {
    await session.release();
  }
}

export interface CalibrateOptions {
  batchSize?: number;
  /** The batches, [start, end) each (default: consecutive batches of batchSize); see src/data/batches.ts. */
  ranges?: ReadonlyArray<readonly [number, number]>;
  onProgress?: (phase: 'range' | 'histogram', done: number, total: number) => void;
}

export async function collectStatistics(model: ModelProto, tensors: string[], count: number, batchOf: BatchSource, opts: CalibrateOptions = {}): Promise<Record<string, TensorStats>> {
  const batchSize = opts.batchSize ?? 8;
  const ranges = opts.ranges ?? Array.from({ length: Math.ceil(count / batchSize) }, (_, i) => [i * batchSize, Math.min(count, (i + 1) * batchSize)] as const);
  const acc = new Map<string, { n: number; min: number; max: number; sum: number; sumSq: number }>();
  for (const t of tensors) acc.set(t, { n: 0, min: Infinity, max: -Infinity, sum: 0, sumSq: 0 });
  await sweep(model, tensors, ranges, batchOf, (name, data) => {
    const a = acc.get(name)!;
    let { min, max, sum, sumSq } = a;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      sumSq += v * v;
    }
    Object.assign(a, { n: a.n + data.length, min, max, sum, sumSq });
  }, (done) => opts.onProgress?.('range', done, count));

  const stats: Record<string, TensorStats> = {};
  const outliers = new Map<string, number>();
  for (const [name, a] of acc) {
    const mean = a.n ? a.sum / a.n : 0;
    const std = a.n ? Math.sqrt(Math.max(0, a.sumSq / a.n - mean * mean)) : 0;
    stats[name] = {
      count: a.n, min: a.min, max: a.max, absMax: Math.max(Math.abs(a.min), Math.abs(a.max)), mean, std,
      outlierFraction: 0, histogram: emptyHistogram(Math.max(Math.abs(a.min), Math.abs(a.max))),
    };
    outliers.set(name, 0);
  }
  await sweep(model, tensors, ranges, batchOf, (name, data) => {
    const s = stats[name];
    addToHistogram(s.histogram, data);
    const lo = s.mean - 4 * s.std;
    const hi = s.mean + 4 * s.std;
    let n = 0;
    for (let i = 0; i < data.length; i++) if (data[i] < lo || data[i] > hi) n++;
    outliers.set(name, outliers.get(name)! + n);
  }, (done) => opts.onProgress?.('histogram', done, count));
  for (const [name, n] of outliers) stats[name].outlierFraction = stats[name].count ? n / stats[name].count : 0;
  return stats;
}

export const DEFAULT_CALIBRATION: CalibrationChoice = { method: 'entropy' };

export function choiceLabel(c: CalibrationChoice): string {
  return c.method === 'percentile' ? `percentile-${c.percentile ?? 99.99}` : c.method;
}

/** choiceLabel's inverse (also `percentile:P`; a bare `percentile` is 99.99); undefined for anything else. */
export function parseChoiceLabel(text: string): CalibrationChoice | undefined {
  const m = /^\s*(max|mse|entropy|percentile)(?:[:-](\d+(?:\.\d+)?))?\s*$/.exec(text);
  if (!m || (m[2] !== undefined && m[1] !== 'percentile')) return undefined;
  return m[1] === 'percentile' ? { method: 'percentile', percentile: m[2] === undefined ? 99.99 : Number(m[2]) } : { method: m[1] as CalibrationChoice['method'] };
}

/** Calibrated statistics plus memoised amax per (tensor, method). */
export class CalibrationTable {
  private readonly memo = new Map<string, number>();
  constructor(readonly stats: Record<string, TensorStats>, readonly samples: number) {}

  has(tensor: string): boolean {
    return tensor in this.stats;
  }

  /** amax of a tensor under a method; `bound` is a known output bound (ReLU6's 6), used where it is tighter. */
  amax(tensor: string, choice: CalibrationChoice, bound?: number): number {
    const s = this.stats[tensor];
    if (!s) throw new Error(`no calibration statistics for tensor ${tensor}`);
    const key = `${tensor}\u0000${choiceLabel(choice)}`;
    let a = this.memo.get(key);
    if (a === undefined) {
      switch (choice.method) {
        case 'max': a = s.absMax; break;
        case 'percentile': a = Math.min(s.absMax, percentileAmax(s.histogram, choice.percentile ?? 99.99)); break;
        case 'entropy': a = Math.min(s.absMax, entropyAmax(s.histogram)); break;
        case 'mse': a = Math.min(s.absMax, mseAmax(s.histogram)); break;
        default: throw new Error(`unknown calibration method ${(choice as CalibrationChoice).method}`);
      }
      this.memo.set(key, a);
    }
    return bound !== undefined && bound > 0 ? Math.min(a, bound) : a;
  }

  toJSON(): { samples: number; tensors: Record<string, { min: number; max: number; absMax: number; mean: number; std: number; outlierFraction: number }> } {
    const tensors: Record<string, { min: number; max: number; absMax: number; mean: number; std: number; outlierFraction: number }> = {};
    for (const [k, s] of Object.entries(this.stats)) tensors[k] = { min: s.min, max: s.max, absMax: s.absMax, mean: s.mean, std: s.std, outlierFraction: s.outlierFraction };
    return { samples: this.samples, tensors };
  }
}

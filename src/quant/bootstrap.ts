/**
 * Bootstrap intervals of a metric over samples (Efron's percentile bootstrap), seeded.
 *
 * A metric is a function of the whole sample set (corpus character accuracy, F1, ...), so an interval is found by
 * drawing the sample indices with replacement, scoring the drawn set, and taking percentiles of those scores. That
 * works for a per-sample mean and for a whole-set metric alike. A metric that can say which per-sample sums it is
 * computed from (`statistics` / `fromStatistics`, as sacreBLEU does for BLEU) is rescored from sums in microseconds;
 * any other is rescored by calling `score` on each drawn set.
 *
 * A drop against FP32 is bootstrapped *paired*: the candidate and FP32 are scored on the same drawn indices, so the
 * interval reflects how differently the two behave on the samples, not how hard the samples happen to be.
 */
import seedrandom from 'seedrandom';
import { UserError } from '../errors.ts';
import { scoreWith, type Metric, type MetricInput } from './metrics.ts';

/** Resamples per interval: enough that the 2.5 % and 97.5 % points rest on 25 draws each. */
export const DEFAULT_RESAMPLES = 1000;

export type Interval = [number, number];

/** The score of the sample set made of the given indices (repeats allowed), by any means. */
export type SubsetScorer = (indices: Uint32Array) => number | Promise<number>;

export interface BootstrapOptions {
  /** Seed of the index draws; the same seed, count and resamples give the same draws. */
  seed: number | string;
  resamples?: number;
}

/**
 * One draw of `n` indices with replacement. Alea (from seedrandom) because a bootstrap draws hundreds of thousands
 * of numbers and ARC4, seedrandom's default, is several times slower at it.
 */
export function drawIndices(n: number, rng: () => number, out = new Uint32Array(n)): Uint32Array {
  for (let i = 0; i < n; i++) out[i] = Math.floor(rng() * n);
  return out;
}

/** The random stream of a bootstrap: the same seed and sample count give the same draws, in the same order. */
export function bootstrapRng(seed: number | string, n: number): () => number {
  return seedrandom.alea(`bootstrap:${seed}:${n}`);
}

/** Quantile with linear interpolation between order statistics (R's type 7, NumPy's default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

function checkConfidence(confidence: number): void {
  if (!(confidence > 0 && confidence < 1)) throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
}

/** The two-sided percentile interval at `confidence` (0.95: the 2.5 % and 97.5 % points). */
export function percentileInterval(values: ArrayLike<number>, confidence = 0.95): Interval {
  checkConfidence(confidence);
  const sorted = Float64Array.from(values).sort();
  const tail = (1 - confidence) / 2;
  return [quantile(sorted, tail), quantile(sorted, 1 - tail)];
}

/**
 * Bootstrap replicates: the score of each of `resamples` seeded draws of `n` indices. Scorers given the same seed
 * and n see the same draws, which is what pairs a candidate's replicates with FP32's.
 */
export async function replicates(scorer: SubsetScorer, n: number, options: BootstrapOptions): Promise<Float64Array> {
  return (await sharedReplicates([scorer], n, options))[0];
}

/** Replicates of several scorers on the same draws, drawn once. */
export async function sharedReplicates(scorers: readonly SubsetScorer[], n: number, options: BootstrapOptions): Promise<Float64Array[]> {
  const resamples = options.resamples ?? DEFAULT_RESAMPLES;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`a bootstrap needs at least one sample, got ${n}`);
  if (!Number.isInteger(resamples) || resamples < 2) throw new RangeError(`resamples must be a whole number >= 2, got ${resamples}`);
  const out = scorers.map(() => new Float64Array(resamples));
  const indices = new Uint32Array(n);
  const rng = bootstrapRng(options.seed, n);
  for (let b = 0; b < resamples; b++) {
    drawIndices(n, rng, indices);
    for (let s = 0; s < scorers.length; s++) {
      const v = scorers[s](indices);
      out[s][b] = typeof v === 'number' ? v : await v;
    }
  }
  return out;
}

/** The percentile interval of statistic(candidate[b], reference[b]) over paired replicates, e.g. of the drop. */
export function pairedInterval(
  candidate: ArrayLike<number>,
  reference: ArrayLike<number>,
  statistic: (candidate: number, reference: number) => number,
  confidence = 0.95,
): Interval {
  if (candidate.length !== reference.length) throw new RangeError(`paired replicates differ in number: ${candidate.length} vs ${reference.length}`);
  return percentileInterval(Array.from(candidate, (c, b) => statistic(c, reference[b])), confidence);
}

/**
 * A SubsetScorer for a metric on one set of outputs. With `statistics` / `fromStatistics` the per-sample sums are
 * taken once and every drawn set costs a sum; the sums must give `fullScore` back (a plugin whose two definitions
 * disagree is refused: its intervals would describe another metric). Otherwise each drawn set is scored afresh.
 */
export async function metricScorer(metric: Metric, input: MetricInput, fullScore: number): Promise<SubsetScorer> {
  const n = input.outputs.length;
  if (metric.statistics && metric.fromStatistics) {
    const rows = await metric.statistics(input);
    const k = checkStatistics(metric.name, rows, n);
    const table = new Float64Array(n * k);
    rows.forEach((row, i) => table.set(row, i * k));
    const fromSums = metric.fromStatistics.bind(metric);
    const sums = new Float64Array(k);
    const scoreOf = (indices: ArrayLike<number>): number => {
      sums.fill(0);
      for (let j = 0; j < indices.length; j++) {
        const base = indices[j] * k;
        for (let c = 0; c < k; c++) sums[c] += table[base + c];
      }
      return fromSums(Array.from(sums), indices.length);
    };
    const whole = scoreOf(Uint32Array.from({ length: n }, (_, i) => i));
    if (!(Math.abs(whole - fullScore) <= 1e-9 * Math.max(1, Math.abs(fullScore)))) {
      throw new UserError(`metric ${metric.name}: fromStatistics of the summed statistics gives ${whole} but score gives ${fullScore}; make the two agree (or drop statistics/fromStatistics from the plugin)`);
    }
    return scoreOf;
  }
  return (indices) => scoreWith(metric, {
    outputs: Array.from(indices, (i) => input.outputs[i]),
    reference: Array.from(indices, (i) => input.reference[i]),
    ...(input.labels ? { labels: Array.from(indices, (i) => input.labels![i]) } : {}),
  });
}

function checkStatistics(name: string, rows: unknown, n: number): number {
  if (!Array.isArray(rows) || rows.length !== n) {
    throw new UserError(`metric ${name}: statistics must return one row of numbers per sample (${n}), got ${Array.isArray(rows) ? rows.length : typeof rows}; fix the metric plugin`);
  }
  const k = n > 0 && Array.isArray(rows[0]) ? rows[0].length : 0;
  for (const [i, row] of rows.entries()) {
    if (!Array.isArray(row) || row.length !== k || k === 0 || !row.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new UserError(`metric ${name}: statistics row ${i} is not ${k || 'one or more'} finite numbers like the others; fix the metric plugin`);
    }
  }
  return k;
}

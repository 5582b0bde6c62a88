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

/** A metric's per-sample statistics on one set of outputs: n rows of k numbers, and the score of any subset of rows. */
export interface SampleStatistics {
  n: number;
  k: number;
  table: Float64Array;
  scoreOf: (indices: ArrayLike<number>) => number;
  /** The n leave-one-out scores (the jackknife), from the total minus each row. */
  leaveOneOut: () => Float64Array;
}

/**
 * The statistics of a metric that has `statistics` / `fromStatistics`, checked: their sums must give `fullScore`
 * back (a plugin whose two definitions disagree is refused: its intervals would describe another metric).
 * Undefined for a metric without them.
 */
export async function sampleStatistics(metric: Metric, input: MetricInput, fullScore: number): Promise<SampleStatistics | undefined> {
  if (!metric.statistics || !metric.fromStatistics) return undefined;
  const n = input.outputs.length;
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
  const leaveOneOut = (): Float64Array => {
    const total = new Float64Array(k);
    for (let i = 0; i < n * k; i++) total[i % k] += table[i];
    const out = new Float64Array(n);
    const rest = new Array<number>(k);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < k; c++) rest[c] = total[c] - table[i * k + c];
      out[i] = fromSums(rest, n - 1);
    }
    return out;
  };
  return { n, k, table, scoreOf, leaveOneOut };
}

/** The n leave-one-out scores of a scorer (the jackknife): n rescorings of n - 1 samples. */
export async function jackknife(scorer: SubsetScorer, n: number): Promise<Float64Array> {
  const out = new Float64Array(n);
  if (n < 2) return out.fill(NaN);
  const indices = new Uint32Array(n - 1);
  for (let i = 0; i < n; i++) {
    for (let j = 0, w = 0; j < n; j++) if (j !== i) indices[w++] = j;
    const v = scorer(indices);
    out[i] = typeof v === 'number' ? v : await v;
  }
  return out;
}

/**
 * The normal interval estimate ± z · se with the jackknife's standard error of a statistic, from its n
 * leave-one-out values: se² = (n - 1) / n · Σ (θ_i - θ̄)². Undefined below 2 samples or for a non-finite value.
 */
export function jackknifeInterval(estimate: number, leaveOneOut: ArrayLike<number>, confidence = 0.95): Interval | undefined {
  checkConfidence(confidence);
  const n = leaveOneOut.length;
  if (n < 2) return undefined;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += leaveOneOut[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (leaveOneOut[i] - mean) ** 2;
  const se = Math.sqrt(((n - 1) / n) * ss);
  if (!Number.isFinite(se) || !Number.isFinite(estimate)) return undefined;
  const z = normalQuantile(1 - (1 - confidence) / 2);
  return [estimate - z * se, estimate + z * se];
}

/** What the intervals of one policy's score, and of its drop against FP32, are computed from. */
export interface IntervalInputs {
  score: number;
  fp32Score: number;
  /** The relative drop of a score against FP32's (positive = worse). */
  drop: (score: number, fp32Score: number) => number;
  /** Bootstrap replicates of the policy and of FP32 on the same draws. */
  replicates: ArrayLike<number>;
  fp32Replicates: ArrayLike<number>;
  /** Leave-one-out scores of both (the jackknife), when known. */
  jackknife?: ArrayLike<number>;
  fp32Jackknife?: ArrayLike<number>;
  /** Per-sample 0/1 hits of both, for a metric that is a plain proportion. */
  hits?: ArrayLike<number>;
  fp32Hits?: ArrayLike<number>;
  higherIsBetter: boolean;
}

export interface ScoreIntervals {
  ci95: Interval;
  dropCi95: Interval;
  /** The upper end of the drop's two-sided interval at `confidence` (when asked for). */
  dropBound?: number;
}

/**
 * The intervals trtmix reports, composed in one place: the percentile bootstrap, widened to the jackknife's normal
 * interval (the percentile bootstrap is too narrow at a few hundred samples, most of all for a drop made of a few
 * disagreements), and for a proportion to the Wilson / Newcombe score intervals as well (which stay honest where every
 * sample agrees). Each end is the more cautious of the methods.
 */
export function scoreIntervals(x: IntervalInputs, confidence?: number): ScoreIntervals {
  const pointDrop = x.drop(x.score, x.fp32Score);
  const dropInterval = (level: number): Interval => {
    let interval = pairedInterval(x.replicates, x.fp32Replicates, x.drop, level);
    const collapsed = interval[1] - interval[0] <= 1e-12 * Math.max(1, Math.abs(interval[0]));
    if (x.jackknife && x.fp32Jackknife && x.jackknife.length === x.fp32Jackknife.length) {
      const loo = Array.from(x.jackknife, (s, i) => x.drop(s, x.fp32Jackknife![i]));
      const normal = jackknifeInterval(pointDrop, loo, level);
      if (normal) interval = hull(interval, normal);
      // Every resample gives the same drop: the policy and FP32 agree on every sample here, and no resampling can
      // say how often they disagree elsewhere. The rule of three does: at most wilson(0, n)'s upper end of the
      // samples disagree, each moving the score by about one sample's influence on FP32's (the jackknife's).
      if (collapsed) {
        const n = x.fp32Jackknife.length;
        let influence = 0;
        for (let i = 0; i < n; i++) influence = Math.max(influence, Math.abs(x.fp32Score - x.fp32Jackknife[i]) * (n - 1));
        const scale = Math.abs(x.fp32Score) > 1e-12 ? Math.abs(x.fp32Score) : 1;
        const bound = (wilsonInterval(0, n, level)[1] * n * (influence / n)) / scale;
        if (Number.isFinite(bound)) interval = hull(interval, [pointDrop - bound, pointDrop + bound]);
      }
    }
    if (x.hits && x.fp32Hits) interval = hull(interval, relativeDrop(pairedDifferenceInterval(x.hits, x.fp32Hits, level), x.fp32Score, x.higherIsBetter));
    return interval;
  };
  let ci95 = percentileInterval(x.replicates, 0.95);
  const normal = x.jackknife ? jackknifeInterval(x.score, x.jackknife, 0.95) : undefined;
  if (normal) ci95 = hull(ci95, normal);
  if (x.hits) ci95 = hull(ci95, wilsonInterval(Array.from(x.hits).reduce((a, b) => a + b, 0), x.hits.length, 0.95));
  return { ci95, dropCi95: dropInterval(0.95), ...(confidence !== undefined ? { dropBound: dropInterval(confidence)[1] } : {}) };
}

/** An interval of score - fp32Score as one of the relative drop (FP32's own uncertainty is in the difference's). */
function relativeDrop([lo, hi]: Interval, fp32Score: number, higherIsBetter: boolean): Interval {
  const scale = Math.abs(fp32Score) > 1e-12 ? Math.abs(fp32Score) : 1;
  return higherIsBetter ? [-hi / scale, -lo / scale] : [lo / scale, hi / scale];
}

/**
 * A SubsetScorer for a metric on one set of outputs: from its statistics when it has them (every drawn set costs a
 * sum), else by scoring each drawn set afresh.
 */
export async function metricScorer(metric: Metric, input: MetricInput, fullScore: number): Promise<SubsetScorer> {
  const stats = await sampleStatistics(metric, input, fullScore);
  if (stats) return stats.scoreOf;
  return (indices) => scoreWith(metric, {
    outputs: Array.from(indices, (i) => input.outputs[i]),
    reference: Array.from(indices, (i) => input.reference[i]),
    ...(input.labels ? { labels: Array.from(indices, (i) => input.labels![i]) } : {}),
  });
}

/**
 * The per-sample hits of a metric that is a plain proportion (top-1: one 0/1 statistic per sample, score = hits / n),
 * else undefined. For those the percentile bootstrap is known to be too narrow near 0 and 1 (all 128 right gives
 * [1, 1]), so the evaluator widens it to the analytic score intervals below.
 */
export function proportionHits(metric: Metric, stats: SampleStatistics): Uint8Array | undefined {
  if (stats.k !== 1 || !metric.fromStatistics) return undefined;
  const { n, table } = stats;
  if (!table.every((v) => v === 0 || v === 1)) return undefined;
  const half = Math.floor(n / 2);
  const probes: Array<[number, number]> = [[0, 0], [n, 1], [half, half / n]];
  if (!probes.every(([hits, share]) => Math.abs(metric.fromStatistics!([hits], n) - share) <= 1e-12)) return undefined;
  return Uint8Array.from(table);
}

/** The standard normal quantile (Acklam's rational approximation, relative error below 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`normalQuantile needs 0 < p < 1, got ${p}`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

/** Wilson's score interval of a proportion (successes of n), two-sided at `confidence`. */
export function wilsonInterval(successes: number, n: number, confidence = 0.95): Interval {
  checkConfidence(confidence);
  if (!(n > 0)) throw new RangeError(`a proportion needs n > 0, got ${n}`);
  const z = normalQuantile(1 - (1 - confidence) / 2);
  const p = successes / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/**
 * Newcombe's hybrid score interval (1998, method 10) for the difference pA - pB of two proportions measured on the
 * same samples: Wilson intervals of both, combined with their correlation. Unlike a bootstrap it does not collapse
 * to [0, 0] when the two never disagree on the samples at hand.
 */
export function pairedDifferenceInterval(hitsA: ArrayLike<number>, hitsB: ArrayLike<number>, confidence = 0.95): Interval {
  const n = hitsA.length;
  if (n !== hitsB.length || n === 0) throw new RangeError(`paired hits differ in number or are empty: ${n} vs ${hitsB.length}`);
  let both = 0; let onlyA = 0; let onlyB = 0;
  for (let i = 0; i < n; i++) {
    if (hitsA[i] && hitsB[i]) both++;
    else if (hitsA[i]) onlyA++;
    else if (hitsB[i]) onlyB++;
  }
  const neither = n - both - onlyA - onlyB;
  const pA = (both + onlyA) / n;
  const pB = (both + onlyB) / n;
  const [lA, uA] = wilsonInterval(both + onlyA, n, confidence);
  const [lB, uB] = wilsonInterval(both + onlyB, n, confidence);
  const denominator = Math.sqrt((both + onlyA) * (onlyB + neither) * (both + onlyB) * (onlyA + neither));
  const phi = denominator > 0 ? (both * neither - onlyA * onlyB) / denominator : 0;
  const below = Math.sqrt(Math.max(0, (pA - lA) ** 2 - 2 * phi * (pA - lA) * (uB - pB) + (uB - pB) ** 2));
  const above = Math.sqrt(Math.max(0, (uA - pA) ** 2 - 2 * phi * (uA - pA) * (pB - lB) + (pB - lB) ** 2));
  return [pA - pB - below, pA - pB + above];
}

/** The smallest interval holding both. */
export function hull(a: Interval, b: Interval): Interval {
  return [Math.min(a[0], b[0]), Math.max(a[1], b[1])];
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

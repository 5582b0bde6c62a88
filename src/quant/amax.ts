/**
 * Activation amax from a histogram of |x|: max, percentile, entropy (TensorRT's EntropyCalibration2: the threshold
 * minimising the KL divergence between the clipped reference distribution and its 128-level quantized form, over
 * a 2048-bin histogram) and mse (the threshold minimising the expected squared quantization error).
 */
import { fakeQuantize, scaleFromAmax } from './int8.ts';

export const HISTOGRAM_BINS = 2048;
export const QUANTIZED_BINS = 128;

/** Counts of |x| over [0, range], `bins` equal bins. */
export interface AbsHistogram {
  counts: Float64Array;
  range: number;
}

export function emptyHistogram(range: number, bins = HISTOGRAM_BINS): AbsHistogram {
  return { counts: new Float64Array(bins), range };
}

export function addToHistogram(h: AbsHistogram, xs: ArrayLike<number>): void {
  const bins = h.counts.length;
  if (h.range <= 0) { h.counts[0] += xs.length; return; }
  const k = bins / h.range;
  for (let i = 0; i < xs.length; i++) {
    const b = Math.floor(Math.abs(xs[i]) * k);
    h.counts[b >= bins ? bins - 1 : b] += 1;
  }
}

/** amax at the given percentile of |x| (e.g. 99.99): the upper edge of the bin where the CDF reaches it. */
export function percentileAmax(h: AbsHistogram, percentile: number): number {
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (total === 0 || h.range === 0) return 0;
  const target = (percentile / 100) * total;
  let cum = 0;
  const width = h.range / h.counts.length;
  for (let i = 0; i < h.counts.length; i++) {
    cum += h.counts[i];
    if (cum >= target) return (i + 1) * width;
  }
  return h.range;
}

function klDivergence(p: Float64Array, q: Float64Array, n: number): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < n; i++) { sp += p[i]; sq += q[i]; }
  if (sp === 0) return 0;
  let kl = 0;
  for (let i = 0; i < n; i++) {
    if (p[i] === 0) continue;
    if (q[i] === 0) return Infinity;
    const pi = p[i] / sp;
    kl += pi * Math.log(pi / (q[i] / sq));
  }
  return kl;
}

/**
 * EntropyCalibration2: for each candidate threshold bin i >= 128, P = hist[0:i] with the outliers folded into
 * its last bin, Q = hist[0:i] merged into 128 levels and spread back evenly over the non-empty bins of each level;
 * the threshold with the least KL(P || Q) wins (the last of equal minima, i.e. the widest range).
 */
export function entropyAmax(h: AbsHistogram, quantizedBins = QUANTIZED_BINS): number {
  const bins = h.counts.length;
  const width = h.range / bins;
  if (h.range === 0) return 0;
  let last = bins - 1;
  while (last > 0 && h.counts[last] === 0) last--;
  if (last + 1 <= quantizedBins) return (last + 1) * width;
  const suffix = new Float64Array(bins + 1);
  for (let i = bins - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + h.counts[i];
  const p = new Float64Array(bins);
  const q = new Float64Array(bins);
  let best = Infinity;
  let bestI = bins;
  for (let i = quantizedBins; i <= bins; i++) {
    for (let j = 0; j < i; j++) p[j] = h.counts[j];
    p[i - 1] += suffix[i];
    // Merge [0, i) into quantizedBins levels (edges at k * i / quantizedBins), spread each level's mass evenly
    // over its non-empty source bins.
    for (let k = 0; k < quantizedBins; k++) {
      const start = Math.floor((k * i) / quantizedBins);
      const end = k === quantizedBins - 1 ? i : Math.floor(((k + 1) * i) / quantizedBins);
      let sum = 0;
      let nonEmpty = 0;
      for (let j = start; j < end; j++) { sum += h.counts[j]; if (h.counts[j] !== 0) nonEmpty++; }
      const avg = nonEmpty > 0 ? sum / nonEmpty : 0;
      for (let j = start; j < end; j++) q[j] = h.counts[j] !== 0 ? avg : 0;
    }
    const kl = klDivergence(p, q, i);
    if (kl <= best) { best = kl; bestI = i; }
  }
  return bestI * width;
}

/** The threshold (a bin edge >= bin 128) that minimises the histogram-weighted squared error of fake quantization. */
export function mseAmax(h: AbsHistogram, startBin = QUANTIZED_BINS): number {
  const bins = h.counts.length;
  const width = h.range / bins;
  if (h.range === 0) return 0;
  let bestAmax = h.range;
  let bestErr = Infinity;
  for (let i = Math.min(startBin, bins); i <= bins; i++) {
    const amax = i * width;
    const scale = scaleFromAmax(amax);
    let err = 0;
    for (let j = 0; j < bins; j++) {
      const c = h.counts[j];
      if (c === 0) continue;
      const center = (j + 0.5) * width;
      const d = center - fakeQuantize(center, scale);
      err += c * d * d;
    }
    if (err < bestErr) { bestErr = err; bestAmax = amax; }
  }
  return bestAmax;
}

/**
 * How far a layer's int8 output is from its FP32 output: mean squared error, SQNR, and two distances between
 * their value distributions (KL divergence and histogram overlap), plus the share of the symmetric int8 range
 * a tensor never uses.
 *
 * The histograms are binned on the int8 grid of the output: bin edges sit halfway between quantization levels
 * (level k covers [(k - 0.5) * scale, (k + 0.5) * scale)), and a bin holds a whole number of levels. Binning
 * any finer would compare a 256-spike distribution with a continuous one, so every layer would look equally
 * "different" whatever its error; on this grid, rounding the FP32 output to int8 alone leaves the histogram
 * unchanged, and what moves mass between bins is real distortion: clipping beyond amax and the error carried in
 * from quantized inputs and weights. FP32 values beyond amax fall in bins past the int8 range, where the int8
 * output has none, so clipping shows as lost overlap and as KL.
 */

/**
 * Most histogram bins (each holds a whole number of int8 levels). Fewer for small tensors: at most sqrt(count)
 * bins (the square-root rule), so that a bin holds enough values for its count to mean something; with a
 * few hundred values spread over 256 levels, a shift by one level would empty one bin and fill another.
 */
export const COMPARISON_BINS = 256;
const MIN_BINS = 16;
/**
 * Probability mass added to every bin before KL (then renormalised): an FP32 bin the int8 output never reaches
 * would otherwise make KL infinite. With 1e-6, such a bin holding 1 % of the mass adds about 0.1 nats.
 */
export const KL_EPSILON = 1e-6;
/** Levels beyond this many scales from 0 share the last bin (guards against a tiny scale on an all-zero tensor). */
const MAX_LEVEL = 1 << 20;

/** Counts per integer level, growing in both directions as values arrive. */
class LevelCounts {
  counts = new Float64Array(512);
  /** Level of counts[0]. */
  offset = -256;
  lo = Infinity;
  hi = -Infinity;

  add(level: number): void {
    let i = level - this.offset;
    if (i < 0 || i >= this.counts.length) {
      this.grow(level);
      i = level - this.offset;
    }
    this.counts[i] += 1;
    if (level < this.lo) this.lo = level;
    if (level > this.hi) this.hi = level;
  }

  get(level: number): number {
    const i = level - this.offset;
    return i >= 0 && i < this.counts.length ? this.counts[i] : 0;
  }

  private grow(level: number): void {
    const lo = Math.min(this.offset, level);
    const hi = Math.max(this.offset + this.counts.length - 1, level);
    const size = Math.max(2 * this.counts.length, hi - lo + 1 + 256);
    const offset = level < this.offset ? hi - size + 1 : this.offset;
    const next = new Float64Array(size);
    next.set(this.counts, this.offset - offset);
    this.counts = next;
    this.offset = offset;
  }
}

export interface ComparisonResult {
  /** Elements compared. */
  count: number;
  mse: number;
  /** 10 log10(sum ref^2 / sum err^2); 100 when the outputs are identical. */
  sqnrDb: number;
  /** KL(P_fp32 || Q_int8) in nats over the level-aligned bins, epsilon-smoothed. */
  kl: number;
  /** sum(min(h_fp32, h_int8)) / sum(h_fp32): 1 when the distributions coincide. */
  histogramOverlap: number;
  bins: number;
  levelsPerBin: number;
}

/**
 * Streams pairs of (FP32, int8-simulated) outputs of one tensor, batch by batch, and summarises their difference.
 * `scale` is the output's int8 scale (amax / 127).
 */
export class OutputComparison {
  private readonly inverse: number;
  private readonly ref = new LevelCounts();
  private readonly quant = new LevelCounts();
  private n = 0;
  private sumSqErr = 0;
  private sumSqRef = 0;

  constructor(readonly scale: number) {
    if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`output scale must be positive, got ${scale}`);
    this.inverse = 1 / Math.fround(scale);
  }

  private level(x: number): number {
    const l = Math.round(x * this.inverse);
    return l > MAX_LEVEL ? MAX_LEVEL : l < -MAX_LEVEL ? -MAX_LEVEL : Number.isNaN(l) ? 0 : l;
  }

  add(reference: Float32Array, quantized: Float32Array): void {
    if (reference.length !== quantized.length) throw new Error(`compared outputs differ in size: ${reference.length} vs ${quantized.length}`);
    let sse = 0;
    let ssr = 0;
    for (let i = 0; i < reference.length; i++) {
      const r = reference[i];
      const d = quantized[i] - r;
      sse += d * d;
      ssr += r * r;
      this.ref.add(this.level(r));
      this.quant.add(this.level(quantized[i]));
    }
    this.sumSqErr += sse;
    this.sumSqRef += ssr;
    this.n += reference.length;
  }

  result(maxBins = COMPARISON_BINS, epsilon = KL_EPSILON): ComparisonResult {
    if (this.n === 0) return { count: 0, mse: 0, sqnrDb: 100, kl: 0, histogramOverlap: 1, bins: 0, levelsPerBin: 1 };
    const lo = Math.min(this.ref.lo, this.quant.lo);
    const hi = Math.max(this.ref.hi, this.quant.hi);
    const binLimit = Math.max(1, Math.min(maxBins, Math.max(MIN_BINS, Math.floor(Math.sqrt(this.n)))));
    const levelsPerBin = Math.max(1, Math.ceil((hi - lo + 1) / binLimit));
    const bins = Math.ceil((hi - lo + 1) / levelsPerBin);
    const p = new Float64Array(bins);
    const q = new Float64Array(bins);
    for (let level = lo; level <= hi; level++) {
      const b = Math.floor((level - lo) / levelsPerBin);
      p[b] += this.ref.get(level);
      q[b] += this.quant.get(level);
    }
    return {
      count: this.n,
      mse: this.sumSqErr / this.n,
      sqnrDb: this.sumSqErr === 0 ? 100 : Math.min(100, 10 * Math.log10(this.sumSqRef / this.sumSqErr)),
      kl: klDivergence(p, q, epsilon),
      histogramOverlap: histogramOverlap(p, q),
      bins,
      levelsPerBin,
    };
  }
}

/** KL(p || q) in nats of two histograms (counts), each normalised after adding `epsilon` to every probability. */
export function klDivergence(p: ArrayLike<number>, q: ArrayLike<number>, epsilon = KL_EPSILON): number {
  if (p.length !== q.length) throw new Error('histograms differ in length');
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) { sp += p[i]; sq += q[i]; }
  if (sp === 0 || sq === 0) return 0;
  const np = 1 + epsilon * p.length;
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = (p[i] / sp + epsilon) / np;
    const qi = (q[i] / sq + epsilon) / np;
    kl += pi * Math.log(pi / qi);
  }
  return Math.max(0, kl);
}

/** sum(min(p, q)) / sum(p), on counts of the same number of elements. */
export function histogramOverlap(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let common = 0;
  let total = 0;
  for (let i = 0; i < p.length; i++) {
    common += Math.min(p[i], q[i]);
    total += p[i];
  }
  return total > 0 ? common / total : 1;
}

/**
 * Share of the symmetric int8 range [-amax, amax] that the tensor's observed values [min, max] never reach:
 * 0.5 for a ReLU6 output in [0, 6] with amax 6, more when amax also exceeds the observed maximum.
 */
export function rangeWaste(min: number, max: number, amax: number): number {
  if (!(amax > 0) || !Number.isFinite(amax)) return 0;
  const used = Math.max(0, Math.min(max, amax) - Math.max(min, -amax));
  return Math.min(1, Math.max(0, 1 - used / (2 * amax)));
}

/**
 * Samples as onnxruntime is fed them: consecutive batches that never mix two shapes (variable-length data comes
 * in groups of one shape each), and, for a model with a fixed batch dimension N, batches of exactly N rows, the
 * last one padded by repeating its last sample. Whoever reads a batch's results keeps the first `end - start`
 * rows and drops the padding (dropPadding).
 */
import type { Dataset, SampleGroup, TensorData } from './dataset.ts';
import { shapeSize } from './npy.ts';
import type { TypedData } from './dtype.ts';

/** What batching needs of a dataset (the evaluator's SampleSet is one). */
export type SampleSource = Pick<Dataset, 'count' | 'inputs' | 'groups' | 'fixedBatch'>;

export function sampleGroups(set: SampleSource): SampleGroup[] {
  return set.groups ?? [{ start: 0, count: set.count, bucket: '', inputs: set.inputs }];
}

export function inputNames(set: SampleSource): string[] {
  return Object.keys(sampleGroups(set)[0]?.inputs ?? {});
}

/** Batch size a set is fed with: the model's fixed batch if it has one, else `batchSize`. */
export function effectiveBatch(set: SampleSource, batchSize: number): number {
  return set.fixedBatch ?? batchSize;
}

/**
 * [start, end) of every batch over the first `count` samples, in order: at most `batchSize` samples each (the
 * model's fixed batch where it has one), never across the boundary of two shape groups.
 */
export function batchRanges(set: SampleSource, batchSize: number, count = set.count): Array<[number, number]> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be >= 1, got ${batchSize}`);
  const size = effectiveBatch(set, batchSize);
  const ranges: Array<[number, number]> = [];
  for (const g of sampleGroups(set)) {
    const end = Math.min(count, g.start + g.count);
    for (let s = g.start; s < end; s += size) ranges.push([s, Math.min(end, s + size)]);
  }
  return ranges;
}

function groupOf(set: SampleSource, start: number, end: number): SampleGroup {
  const g = sampleGroups(set).find((x) => start >= x.start && start < x.start + x.count);
  if (!g || end > g.start + g.count || end <= start) throw new RangeError(`batch [${start}, ${end}) is not within one group of samples`);
  return g;
}

/**
 * Samples [start, end) of every input as one batch, samples first: views into the data where no padding is needed,
 * else a copy padded to the fixed batch by repeating the last sample (which keeps the padding's values in range).
 */
export function batchInputs(set: SampleSource, start: number, end: number): Record<string, TensorData> {
  const g = groupOf(set, start, end);
  const rows = Math.max(end - start, set.fixedBatch ?? 0);
  const out: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(g.inputs)) {
    const per = shapeSize(t.dims.slice(1));
    const from = (start - g.start) * per;
    const real = t.data.subarray(from, from + (end - start) * per) as TypedData;
    let data = real;
    if (rows > end - start) {
      data = new (t.data.constructor as new (n: number) => TypedData)(rows * per);
      (data as Float32Array).set(real as Float32Array);
      const last = real.subarray(real.length - per) as Float32Array;
      for (let r = end - start; r < rows; r++) (data as Float32Array).set(last, r * per);
    }
    out[name] = { data, dims: [rows, ...t.dims.slice(1)], ...(t.dtype ? { dtype: t.dtype } : {}) };
  }
  return out;
}

/**
 * The values of a batch result that belong to its first `real` of `rows` samples. Tensors laid out batch first
 * ([N, ...], also [N * heads, ...]) lose their padded rows; a tensor without the batch leading (a rare transposed
 * layout) is returned whole, where the padding repeats a real sample and so cannot widen a range.
 */
export function dropPadding<T extends { length: number; subarray(a: number, b: number): T }>(data: T, dims: readonly number[], rows: number, real: number): T {
  if (real >= rows || dims.length === 0 || dims[0] % rows !== 0) return data;
  return data.subarray(0, (data.length / rows) * real);
}

/** The per-sample shape (batch dim left out) of every input, for each group of samples. */
export function groupShapes(set: SampleSource): Array<{ bucket: string; count: number; shapes: Record<string, number[]> }> {
  return sampleGroups(set).map((g) => ({
    bucket: g.bucket,
    count: g.count,
    shapes: Object.fromEntries(Object.entries(g.inputs).map(([name, t]) => [name, t.dims.slice(1)])),
  }));
}

/**
 * The user's samples, checked against the model's inputs: `--data` (.npy for a single-input model,
 * .npz with one array per input name) and optional `--labels`. Every array holds the samples along the
 * first axis, in the dtype the model input takes (float32, float16, int64 / int32 token ids and masks,
 * bool, ...: fed as it is, never converted); the other axes must equal the model's fixed dimensions.
 */
import { basename, extname } from 'node:path';
import seedrandom from 'seedrandom';
import { UserError } from '../errors.ts';
import { loadLabels, type Label } from './labels.ts';
import { formatShape, readNpy, shapeSize, type NpyArray } from './npy.ts';
import { readNpz } from './npz.ts';
import { DTYPE_OF_ONNX, isFloatDtype, onnxTypeName, typedArray, type TensorDtype, type TypedData } from './dtype.ts';
import { batchInputs, batchRanges, sampleGroups } from './batches.ts';

/** A model input dimension as ONNX / onnxruntime report it: a number, or a name / -1 / null when dynamic. */
export type ModelDim = number | string | null | undefined;

export interface ModelInputSpec {
  name: string;
  dims: readonly ModelDim[];
  /** ONNX element type the input takes (TensorProto.DataType); absent or 0: not checked. */
  elemType?: number;
}

export interface TensorData<D extends TypedData = TypedData> {
  data: D;
  /** Full shape, samples first. */
  dims: number[];
  /** Element type of `data` (float16 as raw bits in a Uint16Array); absent means float32. */
  dtype?: TensorDtype;
}

export interface Dataset {
  count: number;
  /** Every input's samples, samples first, when they all have one shape; {} for variable-shape data (`groups`). */
  inputs: Record<string, TensorData>;
  labels?: Label[];
  /**
   * Variable-shape data (`.npz` arrays `<input>@<bucket>`): runs of consecutive samples of one shape, in sample
   * order. Batches never mix two groups. Absent when every sample has one shape.
   */
  groups?: SampleGroup[];
  /** The model's fixed batch dimension N: samples go in groups of exactly N, the last one padded (see batches.ts). */
  fixedBatch?: number;
}

/** Samples [start, start + count) of a dataset, all of one shape. */
export interface SampleGroup {
  start: number;
  count: number;
  /** The bucket name the data gave (`x@48x320` -> `48x320`); '' for plain arrays. */
  bucket: string;
  inputs: Record<string, TensorData>;
}

export interface LoadDatasetOptions {
  dataPath: string;
  labelsPath?: string;
  inputs: readonly ModelInputSpec[];
}

const isFixed = (d: ModelDim): d is number => typeof d === 'number' && Number.isInteger(d) && d > 0;

export function loadDataset(options: LoadDatasetOptions): Dataset {
  const { dataPath, labelsPath, inputs } = options;
  if (inputs.length === 0) throw new Error('loadDataset: the model has no inputs');
  const groups: SampleGroup[] = [];
  let count = 0;
  for (const [bucket, arrays] of readDataArrays(dataPath, inputs)) {
    const tensors: Record<string, TensorData> = {};
    let n = -1;
    let nFrom = '';
    for (const spec of inputs) {
      const where = arrayLabel(dataPath, spec.name, bucket);
      const tensor = checkInput(arrays.get(spec.name)!, spec, where);
      if (n >= 0 && tensor.dims[0] !== n) {
        throw new UserError(
          `${basename(dataPath)}: input '${spec.name}'${bucket ? ` of bucket ${bucket}` : ''} has ${tensor.dims[0]} samples but '${nFrom}' has ${n}; every array needs the same first dimension`,
        );
      }
      n = tensor.dims[0];
      nFrom = spec.name;
      checkFinite(tensor, `${basename(dataPath)}: input '${spec.name}'${bucket ? ` (bucket ${bucket})` : ''}`);
      tensors[spec.name] = tensor;
    }
    checkSharedDims(tensors, inputs, dataPath, bucket);
    if (n > 0) groups.push({ start: count, count: n, bucket, inputs: tensors });
    count += n;
  }
  if (count === 0) throw new UserError(`${basename(dataPath)} holds 0 samples; the first dimension counts samples`);
  const ds: Dataset = groups.length === 1 ? { count, inputs: groups[0].inputs } : { count, inputs: {}, groups };
  const fixedBatch = fixedBatchOf(inputs);
  if (fixedBatch !== undefined) ds.fixedBatch = fixedBatch;
  if (labelsPath !== undefined) {
    const labels = loadLabels(labelsPath);
    if (labels.length !== count) {
      throw new UserError(
        `${basename(labelsPath)} has ${labels.length} labels but ${basename(dataPath)} has ${count} samples; give exactly one label per sample, in the same order`,
      );
    }
    ds.labels = labels;
  }
  return ds;
}

/** How messages name one array of the data: x.npy, data.npz['input_ids'], data.npz['input_ids@128']. */
function arrayLabel(dataPath: string, input: string, bucket: string): string {
  return `${basename(dataPath)}${extname(dataPath).toLowerCase() === '.npz' ? `['${input}${bucket ? `@${bucket}` : ''}']` : ''}`;
}

/**
 * The model's fixed batch dimension, where its inputs declare one (TensorRT throughput exports: 8, 32; ONNX test
 * models: 2); undefined when the batch is dynamic. Inputs that fix different batches cannot be fed together.
 */
export function fixedBatchOf(inputs: readonly ModelInputSpec[]): number | undefined {
  const fixed = inputs.filter((i) => i.dims.length > 0 && isFixed(i.dims[0]));
  const sizes = [...new Set(fixed.map((i) => i.dims[0] as number))];
  if (sizes.length > 1) {
    throw new UserError(`the model's inputs fix different batch sizes (${fixed.map((i) => `${i.name}: ${i.dims[0]}`).join(', ')}); trtmix feeds all inputs one batch of samples at a time, so re-export the model with one batch size`);
  }
  return sizes[0];
}

/**
 * Dims the model names alike (input_ids and attention_mask both [batch, sequence]) must agree within a group of
 * samples, as onnxruntime requires: a mismatch would otherwise surface as an internal error in the first run.
 */
function checkSharedDims(tensors: Record<string, TensorData>, inputs: readonly ModelInputSpec[], dataPath: string, bucket: string): void {
  const seen = new Map<string, { input: string; size: number }>();
  for (const spec of inputs) {
    spec.dims.forEach((d, axis) => {
      if (axis === 0 || typeof d !== 'string' || d === '') return;
      const size = tensors[spec.name].dims[axis];
      const first = seen.get(d);
      if (!first) seen.set(d, { input: spec.name, size });
      else if (first.size !== size) {
        throw new UserError(
          `${basename(dataPath)}${bucket ? ` (bucket ${bucket})` : ''}: '${spec.name}' has ${d} = ${size} but '${first.input}' has ${d} = ${first.size}; the model gives both the same dimension '${d}', so their arrays must agree (pad them to one length)`,
        );
      }
    });
  }
}

/**
 * The arrays of each input, by shape bucket, in the order the archive holds them: plain `name` arrays form the
 * bucket '', arrays `name@<bucket>` (e.g. `input_ids@128`, `x@48x320`) the named buckets, one per shape, for
 * variable-length data. Every bucket needs an array for every model input.
 */
function readDataArrays(dataPath: string, inputs: readonly ModelInputSpec[]): Map<string, Map<string, NpyArray>> {
  const ext = extname(dataPath).toLowerCase();
  const names = inputs.map((i) => `'${i.name}'`).join(', ');
  if (ext === '.npy') {
    if (inputs.length > 1) {
      throw new UserError(
        `${basename(dataPath)} holds one array but the model has ${inputs.length} inputs (${names}); save them together with np.savez('data.npz', ${inputs.map((i) => savezArg(i.name, '...')).join(', ')})`,
      );
    }
    return new Map([['', new Map([[inputs[0].name, readNpy(dataPath)]])]]);
  }
  if (ext === '.npz') {
    const arrays = readNpz(dataPath);
    const known = new Set(inputs.map((i) => i.name));
    const buckets = new Map<string, Map<string, NpyArray>>();
    for (const [key, array] of arrays) {
      const at = key.lastIndexOf('@');
      const [input, bucket] = known.has(key) || at < 0 ? [key, ''] : [key.slice(0, at), key.slice(at + 1)];
      if (!known.has(input)) continue;
      if (!buckets.has(bucket)) buckets.set(bucket, new Map());
      buckets.get(bucket)!.set(input, array);
    }
    const found = arrays.size ? [...arrays.keys()].map((k) => `'${k}'`).join(', ') : 'none';
    if (buckets.size === 0) buckets.set('', new Map());
    for (const [bucket, group] of buckets) {
      for (const spec of inputs) {
        if (group.has(spec.name)) continue;
        throw new UserError(
          bucket
            ? `${basename(dataPath)} has arrays of bucket ${bucket} but none for model input '${spec.name}' (arrays found: ${found}); every bucket needs one array per input: '${spec.name}@${bucket}'`
            : `${basename(dataPath)} has no array for model input '${spec.name}' (arrays found: ${found}); name each array after its input: np.savez(path, ${savezArg(spec.name, 'x')})`,
        );
      }
    }
    return buckets;
  }
  throw new UserError(
    `--data ${basename(dataPath)} must be a .npy (one array, samples first) or a .npz (one array per input name); save with np.save / np.savez`,
  );
}

/** The np.savez argument for an input: keyword form for a Python identifier, else the dict form. */
function savezArg(name: string, value: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? `${name}=${value}` : `**{'${name}': ${value}}`;
}

/** The dtype the data for a model input must have; a type NumPy cannot hold is the user's to know about. */
function expectedDtype(spec: ModelInputSpec): TensorDtype | undefined {
  if (!spec.elemType) return undefined;
  const dtype = DTYPE_OF_ONNX[spec.elemType];
  if (!dtype) {
    throw new UserError(`model input '${spec.name}' takes ${onnxTypeName(spec.elemType)}, which trtmix cannot feed from NumPy data; export the model with a float32, float16 or integer input`);
  }
  return dtype;
}

function checkInput(array: NpyArray, spec: ModelInputSpec, where: string): TensorData {
  const expected = expectedDtype(spec) ?? 'float32';
  if (array.dtype !== expected) {
    const got = array.dtype === 'unicode' ? 'a string array' : array.dtype;
    throw new UserError(
      `${where} is ${got}, but model input '${spec.name}' takes ${expected}; ${array.dtype === 'unicode' ? 'tokenize or encode it as numbers' : `convert with x.astype(np.${expected === 'bool' ? 'bool_' : expected})`} before saving`,
    );
  }
  const shape = spec.dims.map((d, i) => (i === 0 ? 'N' : isFixed(d) ? d : '?'));
  const got = array.shape;
  const fits = got.length === spec.dims.length && spec.dims.every((d, i) => i === 0 || !isFixed(d) || got[i] === d);
  if (!fits) {
    const hint =
      got.length === spec.dims.length - 1
        ? ' (a sample axis is missing: add one with x[None] or stack samples along axis 0)'
        : '';
    throw new UserError(
      `${where} has shape ${formatShape(got)} but model input '${spec.name}' expects ${formatShape(shape)} (N = samples, ? = any size)${hint}`,
    );
  }
  return { data: array.data as TypedData, dims: [...got], dtype: expected };
}

/** NaN or Inf (a float16 with all exponent bits set) in float data; integer and boolean data cannot hold them. */
/** `where` names the input in messages: `x.npy: input 'x'`. */
function checkFinite(tensor: TensorData, where: string): void {
  const dtype = tensor.dtype ?? 'float32';
  if (!isFloatDtype(dtype)) return;
  const { dims } = tensor;
  const half = dtype === 'float16' ? (tensor.data as Uint16Array) : undefined;
  const data = half ? { length: half.length } as unknown as Float64Array : (tensor.data as Float32Array | Float64Array);
  const per = dims[0] > 0 ? data.length / dims[0] : 0;
  let first = -1;
  let firstValue = 0;
  let bad = 0;
  for (let s = 0; s < dims[0]; s++) {
    const start = s * per;
    const end = start + per;
    for (let i = start; i < end; i++) {
      const v = half ? ((half[i] & 0x7c00) === 0x7c00 ? ((half[i] & 0x3ff) ? NaN : half[i] & 0x8000 ? -Infinity : Infinity) : 0) : data[i];
      if (v - v !== 0) {
        if (first < 0) {
          first = s;
          firstValue = v;
        }
        bad++;
        break;
      }
    }
  }
  if (first >= 0) {
    const what = Number.isNaN(firstValue) ? 'NaN' : firstValue > 0 ? 'Inf' : '-Inf';
    throw new UserError(
      `${where} has ${what} in sample ${first}${bad > 1 ? ` (${bad} samples have NaN/Inf)` : ''}; fix or drop those samples (np.isfinite(x).all(axis=...))`,
    );
  }
}

export interface SplitOptions {
  calibSamples: number;
  evalSamples: number;
  seed: number | string;
  /** When false, asking for more samples than the data has is a UserError instead of an overlap. */
  allowOverlap?: boolean;
}

export interface DatasetSplit {
  calib: Dataset;
  eval: Dataset;
  /** Indices into the original dataset, ascending. */
  calibIndices: number[];
  evalIndices: number[];
  /** Samples used for both calibration and evaluation (0 when the data has enough for both). */
  overlap: number;
}

/**
 * Deterministic calibration / evaluation split.
 *
 * The samples are shuffled once with seedrandom(seed). Evaluation takes the first
 * min(evalSamples, count) of that order and calibration the last min(calibSamples, count), so the
 * two are disjoint whenever calibSamples + evalSamples <= count. When the data is smaller (a user
 * with 300 samples asking for 256 + 128) both still get their full size and they share only the
 * `overlap` = calib + eval - count samples in the middle of the order: calibration only estimates
 * per-tensor ranges (amax), so a partial overlap flatters INT8 accuracy far less than a too-small
 * evaluation set would blur it. Callers should tell the user when `overlap` > 0.
 */
export function splitDataset(ds: Dataset, options: SplitOptions): DatasetSplit {
  const { calibSamples, evalSamples, seed, allowOverlap = true } = options;
  for (const [key, v] of [['calibSamples', calibSamples], ['evalSamples', evalSamples]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new UserError(`${key} must be a whole number >= 1, got ${v}`);
  }
  const n = ds.count;
  const nCalib = Math.min(calibSamples, n);
  const nEval = Math.min(evalSamples, n);
  const overlap = Math.max(0, nCalib + nEval - n);
  if (overlap > 0 && !allowOverlap) {
    throw new UserError(
      `the data has ${n} samples, fewer than ${calibSamples} for calibration + ${evalSamples} for evaluation; ask for fewer samples or bring more data`,
    );
  }
  const order = shuffledIndices(n, seed);
  const evalIndices = order.slice(0, nEval).sort((a, b) => a - b);
  const calibIndices = order.slice(n - nCalib).sort((a, b) => a - b);
  return {
    calib: takeSamples(ds, calibIndices),
    eval: takeSamples(ds, evalIndices),
    calibIndices,
    evalIndices,
    overlap,
  };
}

/** Fisher–Yates shuffle of 0..n-1 driven by seedrandom. */
export function shuffledIndices(n: number, seed: number | string): number[] {
  const rng = seedrandom(String(seed));
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx;
}

/**
 * A new dataset holding the given samples, in the given order (data copied, contiguous). Consecutive samples of
 * one shape group stay one group; the fixed batch and labels go with them.
 */
export function takeSamples(ds: Dataset, indices: readonly number[]): Dataset {
  const groups = sampleGroups(ds);
  const runs: Array<{ group: SampleGroup; picks: number[] }> = [];
  for (const s of indices) {
    if (!Number.isInteger(s) || s < 0 || s >= ds.count) throw new RangeError(`sample index ${s} outside [0, ${ds.count})`);
    const group = groups.find((g) => s >= g.start && s < g.start + g.count)!;
    const last = runs.at(-1);
    if (last && last.group === group) last.picks.push(s);
    else runs.push({ group, picks: [s] });
  }
  if (runs.length === 0) runs.push({ group: groups[0], picks: [] });
  let start = 0;
  const out: SampleGroup[] = runs.map(({ group, picks }) => {
    const inputs: Record<string, TensorData> = {};
    for (const [name, t] of Object.entries(group.inputs)) {
      const per = sampleSize(t);
      const data = typedArray(t.dtype ?? 'float32', picks.length * per);
      picks.forEach((s, k) => (data as Float32Array).set((t.data as Float32Array).subarray((s - group.start) * per, (s - group.start + 1) * per), k * per));
      inputs[name] = { data, dims: [picks.length, ...t.dims.slice(1)], ...(t.dtype ? { dtype: t.dtype } : {}) };
    }
    const g: SampleGroup = { start, count: picks.length, bucket: group.bucket, inputs };
    start += picks.length;
    return g;
  });
  const result: Dataset = out.length === 1 ? { count: indices.length, inputs: out[0].inputs } : { count: indices.length, inputs: {}, groups: out };
  if (ds.fixedBatch !== undefined) result.fixedBatch = ds.fixedBatch;
  if (ds.labels) result.labels = indices.map((s) => ds.labels![s]);
  return result;
}

function sampleSize(t: TensorData): number {
  return shapeSize(t.dims.slice(1));
}

/**
 * Samples [start, end) of every input as one batch, samples first. The arrays are views into the
 * dataset (samples are contiguous), so no copy is made.
 */
export function sliceBatch<D extends TypedData = TypedData>(ds: { count: number; inputs: Record<string, TensorData<D>> }, start: number, end: number): Record<string, TensorData<D>> {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > ds.count || start >= end) {
    throw new RangeError(`batch [${start}, ${end}) outside the ${ds.count} samples`);
  }
  const batch: Record<string, TensorData<D>> = {};
  for (const [name, t] of Object.entries(ds.inputs)) {
    const per = sampleSize(t);
    batch[name] = { data: t.data.subarray(start * per, end * per) as D, dims: [end - start, ...t.dims.slice(1)], ...(t.dtype ? { dtype: t.dtype } : {}) };
  }
  return batch;
}

/**
 * Consecutive batches of at most `batchSize` samples, in order, as the model is fed them: never across two shape
 * groups, padded to the model's fixed batch (see batches.ts).
 */
export function* batches(
  ds: Dataset,
  batchSize: number,
): Generator<{ start: number; end: number; inputs: Record<string, TensorData> }> {
  for (const [start, end] of batchRanges(ds, batchSize)) yield { start, end, inputs: batchInputs(ds, start, end) };
}

/**
 * The user's samples, checked against the model's inputs: `--data` (.npy for a single-input model,
 * .npz with one array per input name) and optional `--labels`. Every array is float32 with the
 * samples along the first axis; the other axes must equal the model's fixed dimensions.
 */
import { basename, extname } from 'node:path';
import seedrandom from 'seedrandom';
import { UserError } from '../errors.ts';
import { loadLabels, type Label } from './labels.ts';
import { formatShape, readNpy, shapeSize, type NpyArray } from './npy.ts';
import { readNpz } from './npz.ts';

/** A model input dimension as ONNX / onnxruntime report it: a number, or a name / -1 / null when dynamic. */
export type ModelDim = number | string | null | undefined;

export interface ModelInputSpec {
  name: string;
  dims: readonly ModelDim[];
}

export interface TensorData {
  data: Float32Array;
  /** Full shape, samples first. */
  dims: number[];
}

export interface Dataset {
  count: number;
  inputs: Record<string, TensorData>;
  labels?: Label[];
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
  const arrays = readDataArrays(dataPath, inputs);
  const tensors: Record<string, TensorData> = {};
  let count = -1;
  let countFrom = '';
  for (const spec of inputs) {
    const array = arrays.get(spec.name)!;
    const tensor = checkInput(array, spec, dataPath);
    const n = tensor.dims[0];
    if (count >= 0 && n !== count) {
      throw new UserError(
        `${basename(dataPath)}: input '${spec.name}' has ${n} samples but '${countFrom}' has ${count}; every array needs the same first dimension`,
      );
    }
    count = n;
    countFrom = spec.name;
    tensors[spec.name] = tensor;
  }
  if (count === 0) throw new UserError(`${basename(dataPath)} holds 0 samples; the first dimension counts samples`);
  for (const spec of inputs) checkFinite(tensors[spec.name], spec.name, dataPath);
  const ds: Dataset = { count, inputs: tensors };
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

function readDataArrays(dataPath: string, inputs: readonly ModelInputSpec[]): Map<string, NpyArray> {
  const ext = extname(dataPath).toLowerCase();
  const names = inputs.map((i) => `'${i.name}'`).join(', ');
  if (ext === '.npy') {
    if (inputs.length > 1) {
      throw new UserError(
        `${basename(dataPath)} holds one array but the model has ${inputs.length} inputs (${names}); save them together with np.savez('data.npz', ${inputs.map((i) => savezArg(i.name, '...')).join(', ')})`,
      );
    }
    return new Map([[inputs[0].name, readNpy(dataPath)]]);
  }
  if (ext === '.npz') {
    const arrays = readNpz(dataPath);
    for (const spec of inputs) {
      if (!arrays.has(spec.name)) {
        const found = arrays.size ? [...arrays.keys()].map((k) => `'${k}'`).join(', ') : 'none';
        throw new UserError(
          `${basename(dataPath)} has no array for model input '${spec.name}' (arrays found: ${found}); name each array after its input: np.savez(path, ${savezArg(spec.name, 'x')})`,
        );
      }
    }
    return arrays;
  }
  throw new UserError(
    `--data ${basename(dataPath)} must be a .npy (one float32 array, samples first) or a .npz (one array per input name); save with np.save / np.savez`,
  );
}

/** The np.savez argument for an input: keyword form for a Python identifier, else the dict form. */
function savezArg(name: string, value: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? `${name}=${value}` : `**{'${name}': ${value}}`;
}

function checkInput(array: NpyArray, spec: ModelInputSpec, dataPath: string): TensorData {
  const where = `${basename(dataPath)}${extname(dataPath).toLowerCase() === '.npz' ? `['${spec.name}']` : ''}`;
  if (array.dtype !== 'float32') {
    throw new UserError(
      `${where} is ${array.dtype === 'unicode' ? 'a string array' : array.dtype}, expected float32; convert with x.astype(np.float32) before saving`,
    );
  }
  const expected = spec.dims.map((d, i) => (i === 0 ? 'N' : isFixed(d) ? d : '?'));
  const got = array.shape;
  const fits = got.length === spec.dims.length && spec.dims.every((d, i) => i === 0 || !isFixed(d) || got[i] === d);
  if (!fits) {
    const hint =
      got.length === spec.dims.length - 1
        ? ' (a sample axis is missing: add one with x[None] or stack samples along axis 0)'
        : '';
    throw new UserError(
      `${where} has shape ${formatShape(got)} but model input '${spec.name}' expects ${formatShape(expected)} (N = samples, ? = any size)${hint}`,
    );
  }
  return { data: array.data as Float32Array, dims: [...got] };
}

function checkFinite(tensor: TensorData, name: string, dataPath: string): void {
  const { data, dims } = tensor;
  const per = dims[0] > 0 ? data.length / dims[0] : 0;
  let first = -1;
  let firstValue = 0;
  let bad = 0;
  for (let s = 0; s < dims[0]; s++) {
    const start = s * per;
    const end = start + per;
    for (let i = start; i < end; i++) {
      const v = data[i];
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
      `${basename(dataPath)}: input '${name}' has ${what} in sample ${first}${bad > 1 ? ` (${bad} samples have NaN/Inf)` : ''}; fix or drop those samples (np.isfinite(x).all(axis=...))`,
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

/** A new dataset holding the given samples, in the given order (data copied, contiguous). */
export function takeSamples(ds: Dataset, indices: readonly number[]): Dataset {
  const inputs: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(ds.inputs)) {
    const per = sampleSize(t);
    const data = new Float32Array(indices.length * per);
    indices.forEach((s, k) => {
      if (!Number.isInteger(s) || s < 0 || s >= ds.count) throw new RangeError(`sample index ${s} outside [0, ${ds.count})`);
      data.set(t.data.subarray(s * per, (s + 1) * per), k * per);
    });
    inputs[name] = { data, dims: [indices.length, ...t.dims.slice(1)] };
  }
  const out: Dataset = { count: indices.length, inputs };
  if (ds.labels) out.labels = indices.map((s) => ds.labels![s]);
  return out;
}

function sampleSize(t: TensorData): number {
  return shapeSize(t.dims.slice(1));
}

/**
 * Samples [start, end) of every input as one batch, samples first. The arrays are views into the
 * dataset (samples are contiguous), so no copy is made.
 */
export function sliceBatch(ds: Dataset, start: number, end: number): Record<string, TensorData> {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > ds.count || start >= end) {
    throw new RangeError(`batch [${start}, ${end}) outside the ${ds.count} samples`);
  }
  const batch: Record<string, TensorData> = {};
  for (const [name, t] of Object.entries(ds.inputs)) {
    const per = sampleSize(t);
    batch[name] = { data: t.data.subarray(start * per, end * per), dims: [end - start, ...t.dims.slice(1)] };
  }
  return batch;
}

/** Consecutive batches of at most `batchSize` samples, in order. */
export function* batches(
  ds: Dataset,
  batchSize: number,
): Generator<{ start: number; end: number; inputs: Record<string, TensorData> }> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batch size must be >= 1, got ${batchSize}`);
  for (let start = 0; start < ds.count; start += batchSize) {
    const end = Math.min(ds.count, start + batchSize);
    yield { start, end, inputs: sliceBatch(ds, start, end) };
  }
}

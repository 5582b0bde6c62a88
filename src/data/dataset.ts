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

/** The defaults of --calib-samples and --eval-samples; they shrink to fit data that is too small for them. */
export const DEFAULT_CALIB_SAMPLES = 128;
export const DEFAULT_EVAL_SAMPLES = 256;
/** The least share of the data a default test split keeps, when the explicit sizes leave room for it. */
export const TEST_SHARE = 0.2;
/**
 * The smallest default test split: below it a percentile bootstrap has too few distinct resamples to give an
 * interval that means anything, so there is no test score rather than a misleading one.
 */
export const MIN_TEST_SAMPLES = 10;

export interface SplitOptions {
  /** Samples asked for; undefined = the default, which shrinks to fit small data (an explicit size never does). */
  calibSamples?: number;
  evalSamples?: number;
  /** Undefined = what is left after the other two, at least TEST_SHARE of the data; 0 = no test split. */
  testSamples?: number;
  /** The test samples come from another file (--test-data): this data holds calibration and search only. */
  separateTest?: boolean;
  seed: number | string;
}

export interface SplitSizes {
  calib: number;
  eval: number;
  /** 0 when there is no test split in this data. */
  test: number;
  /** One line each, for the user: defaults that shrank, a test split that could not be kept. */
  notes: string[];
}

export interface DatasetSplit {
  /** Calibration samples: they set the INT8 ranges (amax) and nothing else. */
  calib: Dataset;
  /** The search split: every policy is scored, and the accuracy floor checked, on these. */
  eval: Dataset;
  /** Held-out samples no choice ever sees; absent when there is no test split in this data. */
  test?: Dataset;
  /** Indices into the original dataset; calibration and test ascending, search in the seeded order it is scored in. */
  calibIndices: number[];
  evalIndices: number[];
  testIndices: number[];
  notes: string[];
}

function checkCount(name: string, v: number | undefined, min: number): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new UserError(`${name} must be a whole number >= ${min}, got ${v}`);
}

/** Shares `room` between the parts in proportion to their targets, each at least 1 (room >= parts). */
function shrinkToFit(targets: number[], room: number): number[] {
  const total = targets.reduce((a, b) => a + b, 0);
  const out = targets.map((t) => Math.max(1, Math.floor((t * room) / total)));
  out[out.length - 1] = room - out.slice(0, -1).reduce((a, b) => a + b, 0);
  return out;
}

/**
 * How many samples calibration, search and test get out of `n`. Explicit sizes are kept or refused; defaults shrink
 * (in proportion) so that the three stay disjoint, and a default test split keeps TEST_SHARE of the data unless the
 * explicit sizes leave less. A default test split smaller than MIN_TEST_SAMPLES is dropped, with a note.
 */
export function splitSizes(n: number, options: Omit<SplitOptions, 'seed'>): SplitSizes {
  checkCount('--calib-samples', options.calibSamples, 1);
  checkCount('--eval-samples', options.evalSamples, 1);
  checkCount('--test-samples', options.testSamples, 0);
  const notes: string[] = [];
  const explicitTest = options.separateTest ? 0 : options.testSamples;
  const fixed = (options.calibSamples ?? 0) + (options.evalSamples ?? 0) + (explicitTest ?? 0);
  if (fixed > n) {
    const asked = [
      options.calibSamples !== undefined ? `${options.calibSamples} calibration` : '',
      options.evalSamples !== undefined ? `${options.evalSamples} search` : '',
      explicitTest ? `${explicitTest} test` : '',
    ].filter(Boolean).join(' + ');
    throw new UserError(`the data has ${n} samples, fewer than the ${asked} samples asked for; the splits never share samples, so ask for fewer (--calib-samples, --eval-samples, --test-samples) or bring more data`);
  }
  const soft = [
    ...(options.calibSamples === undefined ? [{ part: 'calib' as const, target: DEFAULT_CALIB_SAMPLES }] : []),
    ...(options.evalSamples === undefined ? [{ part: 'eval' as const, target: DEFAULT_EVAL_SAMPLES }] : []),
  ];
  const fit = (room: number): number[] => {
    if (room < soft.length) {
      throw new UserError(`the data has ${n} samples: too few for calibration and search samples apart; bring more data or ask for fewer samples`);
    }
    const want = soft.reduce((a, s) => a + s.target, 0);
    return want <= room ? soft.map((s) => s.target) : shrinkToFit(soft.map((s) => s.target), room);
  };
  let available = n - fixed;
  let test = explicitTest ?? 0;
  if (explicitTest === undefined) {
    const reserve = Math.min(Math.ceil(TEST_SHARE * n), Math.max(0, available - soft.length));
    const softSizes = fit(available - reserve);
    test = available - softSizes.reduce((a, b) => a + b, 0);
    if (test < MIN_TEST_SAMPLES) {
      notes.push(`the data has ${n} samples: too few for a test split beside calibration and search (it would hold ${test}, fewer than ${MIN_TEST_SAMPLES}), so no test score is reported; bring more data or pass --test-data`);
      test = 0;
    }
    available -= test;
  } else if (explicitTest === 0 && !options.separateTest) {
    notes.push('--test-samples 0: no test split, so no test score is reported');
  }
  const softSizes = fit(available);
  const size = (part: 'calib' | 'eval', given: number | undefined) => given ?? softSizes[soft.findIndex((s) => s.part === part)];
  const sizes = { calib: size('calib', options.calibSamples), eval: size('eval', options.evalSamples), test };
  const shrunk = soft.filter((s, i) => softSizes[i] < s.target);
  if (shrunk.length > 0) {
    notes.push(`the data has ${n} samples: calibration ${sizes.calib}, search ${sizes.eval}${test ? `, test ${test}` : ''} (the default sizes shrink so that no sample is in two splits)`);
  }
  return { ...sizes, notes };
}

/**
 * Deterministic calibration / search / test split, disjoint by construction: the samples are shuffled once with
 * seedrandom(seed); search takes the first of that order, test the next, calibration the last.
 */
export function splitDataset(ds: Dataset, options: SplitOptions): DatasetSplit {
  const sizes = splitSizes(ds.count, options);
  const order = shuffledIndices(ds.count, options.seed);
  const ascending = (xs: number[]) => xs.sort((a, b) => a - b);
  const evalIndices = order.slice(0, sizes.eval);
  const testIndices = ascending(order.slice(sizes.eval, sizes.eval + sizes.test));
  const calibIndices = ascending(order.slice(ds.count - sizes.calib));
  return {
    calib: takeSamples(ds, calibIndices),
    eval: takeSamples(ds, evalIndices),
    ...(sizes.test > 0 ? { test: takeSamples(ds, testIndices) } : {}),
    calibIndices,
    evalIndices,
    testIndices,
    notes: sizes.notes,
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

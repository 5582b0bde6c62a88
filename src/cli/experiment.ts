/**
 * From command-line options to a ready evaluator: model and layers, data split into calibration, search and test
 * samples (disjoint), calibration statistics, the metric, and the policy evaluator with its FP32 reference. Every
 * command that scores policies (analyze, search, compare, replay) starts here. With no --model and no --data it is
 * the built-in PP-OCRv4 recognition example.
 */
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { loadDataset, splitDataset, DEFAULT_CALIB_SAMPLES, DEFAULT_EVAL_SAMPLES, TEST_SHARE, type Dataset, type DatasetSplit } from '../data/dataset.ts';
import { modelInputs } from '../onnx/layers.ts';
import { collectStatistics, CalibrationTable, type TensorStats } from '../quant/calibrate.ts';
import { quantizableTensors, DEFAULT_OTHER_OPS, OTHER_OPS_PRECISIONS } from '../quant/placement.ts';
import { autocastTensors, classifyOtherOps, collectRanges, type TensorRange } from '../quant/autocast.ts';
import { PolicyEvaluator, sliceFeeds } from '../quant/evaluator.ts';
import { batchRanges } from '../data/batches.ts';
import { loadMetric, type Metric } from '../quant/metrics.ts';
import { buildSimulatedModel, type SimulationBase } from '../quant/simulate.ts';
import { BiasCorrector, DEFAULT_BIAS_PASSES, DEFAULT_BIAS_SAMPLES } from '../quant/bias-correction.ts';
import type { LayerPolicy, CalibrationChoice, CalibrationMethod, OtherOpsPrecision } from '../policy.ts';
import { UserError } from '../errors.ts';
import { discoverModelLayers, loadModelFile, withModelOptions, type LoadedModel, type ModelArgs } from './model-options.ts';
import { loadRecExample, CHAR_ACCURACY_PLUGIN } from '../../experiments/ppocr/dataset.ts';
import { progress as startProgress } from './progress.ts';

export interface ExperimentArgs extends ModelArgs {
  data?: string;
  labels?: string;
  metric?: string;
  'calib-samples'?: number;
  'eval-samples'?: number;
  'test-samples'?: number;
  'test-data'?: string;
  'test-labels'?: string;
  calibration?: string;
  percentile?: number;
  'iou-threshold'?: number;
  'batch-size'?: number;
  seed?: number;
  'other-ops'?: OtherOpsPrecision;
  'bias-correction'?: boolean;
  'bias-passes'?: number;
}

export { DEFAULT_CALIB_SAMPLES, DEFAULT_EVAL_SAMPLES } from '../data/dataset.ts';

export function withExperimentOptions<T>(y: Argv<T>): Argv<T & ExperimentArgs> {
  return withModelOptions(y)
    .option('data', { type: 'string', describe: 'Inputs: .npy (samples first) for one input, .npz with one array per input name (arrays name@bucket for several shapes), each in the dtype the input takes' })
    .option('labels', { type: 'string', describe: 'Labels: .txt (one per line), .json (array) or .npy' })
    .option('metric', { type: 'string', describe: 'top1 | agreement | cosine | sqnr | mse | iou | ./plugin.mjs (default: agreement; char accuracy for the built-in example)' })
    // No yargs defaults: an explicit size is kept or refused, a default one shrinks to fit small data.
    .option('calib-samples', { type: 'number', describe: `Calibration samples (default ${DEFAULT_CALIB_SAMPLES}, fewer on small data)` })
    .option('eval-samples', { type: 'number', describe: `Search samples: each policy is scored and the floor checked on them (default ${DEFAULT_EVAL_SAMPLES}, fewer on small data)` })
    .option('test-samples', { type: 'number', describe: `Held-out test samples, never used for a choice (default: the rest, at least ${100 * TEST_SHARE} % of the data; 0 = none)` })
    .option('test-data', { type: 'string', describe: 'Held-out test inputs in a separate file (.npy/.npz as --data) instead of a test split of --data' })
    .option('test-labels', { type: 'string', describe: 'Labels of --test-data (as --labels)' })
    .option('calibration', { type: 'string', choices: ['max', 'percentile', 'entropy', 'mse'], default: 'percentile', describe: 'Default activation calibration (a policy may choose per layer)' })
    .option('percentile', { type: 'number', default: 99.99, describe: 'Percentile for --calibration percentile' })
    .option('iou-threshold', { type: 'number', default: 0.5, describe: 'Threshold of the iou metric' })
    .option('batch-size', { type: 'number', default: 16, describe: 'Samples per onnxruntime run' })
    .option('other-ops', { choices: OTHER_OPS_PRECISIONS, default: DEFAULT_OTHER_OPS, describe: 'Precision of the ops outside the quantizable layers (TensorRT 11: model.qdq.onnx casts them); fp16 keeps in FP32 what would overflow (AutoCast: |x| > 512, initializers > 65504)' })
    .option('bias-correction', { type: 'boolean', default: false, describe: `Correct the biases of INT8/mixed layers by their per-channel mean output error on calibration samples (NNCF's bias correction); the simulation scores and the exports carry the corrected model` })
    .option('bias-passes', { type: 'number', default: DEFAULT_BIAS_PASSES, describe: 'Passes of the sequential bias correction (1: every layer measured on the uncorrected model; each further pass refines the layers after corrected ones)' })
    .option('seed', { type: 'number', default: 0, describe: 'Seed for the data split and every random choice' }) as Argv<T & ExperimentArgs>;
}

export interface Experiment {
  /** The options it was prepared from (an evaluation worker rebuilds it from them). */
  args: ExperimentArgs;
  loaded: LoadedModel;
  /** Where the data came from: a file path, or `builtin:ppocr-rec`. */
  dataSource: string;
  labelsSource?: string;
  metricSpec: string;
  data: Dataset;
  split: DatasetSplit;
  /** The held-out samples (a split of --data, or --test-data); absent when there are too few. */
  test?: TestSet;
  /** The evaluator on the test samples, made on first use (its FP32 pass costs time the search need not wait for). */
  testEvaluator(): Promise<PolicyEvaluator | undefined>;
  metric: Metric;
  calibration: CalibrationTable;
  /** AutoCast's ranges (max |x| of the tensors the other ops touch) on the calibration samples; {} under --other-ops fp32. */
  ranges: Record<string, TensorRange>;
  defaultCalibration: CalibrationChoice;
  base: SimulationBase;
  /** --bias-correction: measures each policy's corrections (the evaluators score the corrected models). */
  biasCorrector?: BiasCorrector;
  evaluator: PolicyEvaluator;
  batchSize: number;
  seed: number;
}

export interface TestSet {
  data: Dataset;
  /** `split` of --data (indices in `split.testIndices`), or the --test-data path. */
  source: 'split' | string;
  labelsSource?: string;
}

export { BUILTIN_DATA } from '../examples.ts';
import { BUILTIN_DATA } from '../examples.ts';

function positiveInt(name: string, v: number | undefined, fallback: number): number {
  const n = v ?? fallback;
  if (!Number.isInteger(n) || n < 1) throw new UserError(`--${name} must be a whole number >= 1, got ${v}`);
  return n;
}

export interface ExperimentUi {
  quiet?: boolean;
  log(message: string): void;
}

/** What a caller already has: an evaluation worker gets the producer's calibration instead of collecting its own. */
export interface PreparedParts {
  calibration?: { stats: Record<string, TensorStats>; samples: number; ranges: Record<string, TensorRange> };
}

export async function prepareExperiment(args: ExperimentArgs, ui: ExperimentUi = { quiet: true, log: () => {} }, given: PreparedParts = {}): Promise<Experiment> {
  if (args.model && !args.data) throw new UserError('--data is required with --model: pass a .npy or .npz of real inputs (a few hundred samples)');
  if (!args.model && args.data) throw new UserError('--data was given without --model; pass the ONNX model the data is for');
  const file = loadModelFile(args);
  let data: Dataset;
  let dataSource: string;
  let metricSpec = args.metric;
  if (file.builtIn) {
    data = loadRecExample();
    dataSource = BUILTIN_DATA;
    metricSpec ??= CHAR_ACCURACY_PLUGIN;
  } else {
    if (!existsSync(args.data!)) throw new UserError(`data file ${args.data} does not exist; check the --data path`);
    data = loadDataset({ dataPath: args.data!, labelsPath: args.labels, inputs: modelInputs(file.graph) });
    dataSource = args.data!;
    metricSpec ??= 'agreement';
  }
  // Dynamic dims (image size, sequence length) are the data's; --input-shape overrides them for the layer table.
  const loaded = await discoverModelLayers(file, args, { data: file.builtIn ? undefined : data });
  const metric = await loadMetric(metricSpec, { iouThreshold: args['iou-threshold'] });
  if (metric.needsLabels && !data.labels) throw new UserError(`metric ${metric.name} needs labels; pass --labels (or choose a metric that compares with FP32, e.g. agreement)`);
  const seed = args.seed ?? 0;
  const testFile = loadTestData(args, loaded, metric, data);
  const split = splitDataset(data, {
    calibSamples: args['calib-samples'],
    evalSamples: args['eval-samples'],
    testSamples: args['test-samples'],
    separateTest: testFile !== undefined,
    seed,
  });
  for (const note of split.notes) ui.log(`note: ${note}`);
  const test: TestSet | undefined = testFile ?? (split.test ? { data: split.test, source: 'split' } : undefined);
  const batchSize = positiveInt('batch-size', args['batch-size'], 16);
  const tensors = quantizableTensors(loaded.graph, loaded.layers);
  const otherOps = args['other-ops'] ?? DEFAULT_OTHER_OPS;
  const { stats, ranges } = given.calibration ?? await calibrate(loaded, split.calib, tensors, otherOps, batchSize, ui);
  if (given.calibration && given.calibration.samples !== split.calib.count) {
    throw new UserError(`the given calibration is of ${given.calibration.samples} samples, but this split has ${split.calib.count}; the data or --calib-samples differ`);
  }
  const calibration = new CalibrationTable(stats, split.calib.count);
  const defaultCalibration: CalibrationChoice = args.calibration === 'percentile' || args.calibration === undefined
    ? { method: 'percentile', percentile: args.percentile ?? 99.99 }
    : { method: args.calibration as CalibrationMethod };
  const base: SimulationBase = {
    model: loaded.model, graph: loaded.graph, layers: loaded.layers, calibration, defaultCalibration,
    otherOps: classifyOtherOps(otherOps, loaded.graph, loaded.layers, ranges),
  };
  const bootstrap = { seed };
  const biasCorrector = args['bias-correction'] ? await createBiasCorrector(base, split.calib, args['bias-passes'], batchSize) : undefined;
  const evaluatorOptions = { batchSize, bootstrap, ...(biasCorrector ? { biasCorrection: (p: LayerPolicy) => biasCorrector.corrections(p) } : {}) };
  const evaluator = await PolicyEvaluator.create(base, split.eval, metric, evaluatorOptions);
  let testEvaluator: Promise<PolicyEvaluator | undefined> | undefined;
  return {
    args, loaded, dataSource, labelsSource: args.labels, metricSpec, data, split, test, metric, calibration, ranges, defaultCalibration, base, evaluator, batchSize, seed,
    ...(biasCorrector ? { biasCorrector } : {}),
    testEvaluator: () => (testEvaluator ??= test ? PolicyEvaluator.create(base, test.data, metric, evaluatorOptions) : Promise.resolve(undefined)),
  };
}

/** Calibration statistics of every quantizable tensor, and AutoCast's ranges under --other-ops fp16. */
async function calibrate(loaded: LoadedModel, calib: Dataset, tensors: string[], otherOps: OtherOpsPrecision, batchSize: number, ui: ExperimentUi) {
  const bar = startProgress('calibration', { total: (otherOps === 'fp16' ? 3 : 2) * calib.count, quiet: ui.quiet });
  const stats = await collectStatistics(loaded.model, tensors, calib.count, (s, e) => sliceFeeds(calib, s, e), {
    ranges: batchRanges(calib, Math.min(batchSize, 8)),
    onProgress: (phase, done) => bar.update(phase === 'range' ? done : calib.count + done, phase),
  });
  // AutoCast's ranges: max |x| of every tensor the other ops read or write, on the same samples.
  const ranges = otherOps === 'fp16'
    ? await collectRanges(loaded.model, autocastTensors(loaded.graph, loaded.layers), calib.count, (s, e) => sliceFeeds(calib, s, e), {
      ranges: batchRanges(calib, 2),
      onBatch: (done) => bar.update(2 * calib.count + done, 'ranges'),
    })
    : {};
  bar.finish(`${tensors.length} tensors, ${calib.count} samples`);
  return { stats, ranges };
}

/** The bias corrector of --bias-correction, on the first calibration samples (at most DEFAULT_BIAS_SAMPLES). */
async function createBiasCorrector(base: SimulationBase, calib: Dataset, passes: number | undefined, batchSize: number): Promise<BiasCorrector> {
  const n = positiveInt('bias-passes', passes, DEFAULT_BIAS_PASSES);
  const samples = { ...calib, count: Math.min(calib.count, DEFAULT_BIAS_SAMPLES) };
  return BiasCorrector.create(base.model, base.graph, base.layers, samples, {
    passes: n,
    batchSize: Math.min(batchSize, 8),
    simulate: (policy, bias, extraOutputs) => buildSimulatedModel(base, policy, { extraOutputs, bias }),
  });
}

/** --test-data / --test-labels, checked like --data / --labels. */
function loadTestData(args: ExperimentArgs, loaded: LoadedModel, metric: Metric, data: Dataset): TestSet | undefined {
  const path = args['test-data'];
  if (path === undefined) {
    if (args['test-labels'] !== undefined) throw new UserError('--test-labels was given without --test-data; pass the held-out inputs they label');
    return undefined;
  }
  if (loaded.builtIn) throw new UserError('--test-data was given without --model; pass the ONNX model the test data is for (the built-in example keeps a test split of its own lines)');
  if (args['test-samples'] !== undefined) throw new UserError('give either --test-samples (a test split of --data) or --test-data (a separate file), not both');
  if (!existsSync(path)) throw new UserError(`test data file ${path} does not exist; check the --test-data path`);
  const test = loadDataset({
    dataPath: path,
    labelsPath: args['test-labels'],
    inputs: modelInputs(loaded.graph).map((i) => ({ name: i.name, dims: i.dims })),
  });
  // A plugin need not say that it reads labels; that --data has them is reason enough to want them for the test too.
  if ((metric.needsLabels || data.labels) && !test.labels) throw new UserError(`the test data needs labels like --data${metric.needsLabels ? ` (metric ${metric.name} reads them)` : ''}; pass --test-labels`);
  return { data: test, source: path, ...(args['test-labels'] !== undefined ? { labelsSource: args['test-labels'] } : {}) };
}

/**
 * From command-line options to a ready evaluator: model and layers, data split into calibration and evaluation
 * samples, calibration statistics, the metric, and the policy evaluator with its FP32 reference. Every command that
 * scores policies (analyze, search, compare, replay) starts here. With no --model and no --data it is the built-in
 * PP-OCRv4 recognition example.
 */
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { loadDataset, splitDataset, type Dataset, type DatasetSplit } from '../data/dataset.ts';
import { modelInputs } from '../onnx/layers.ts';
import { collectStatistics, CalibrationTable } from '../quant/calibrate.ts';
import { quantizableTensors, DEFAULT_OTHER_OPS, OTHER_OPS_PRECISIONS } from '../quant/placement.ts';
import { autocastTensors, classifyOtherOps, collectRanges } from '../quant/autocast.ts';
import { PolicyEvaluator, sliceFeeds } from '../quant/evaluator.ts';
import { loadMetric, type Metric } from '../quant/metrics.ts';
import type { SimulationBase } from '../quant/simulate.ts';
import type { CalibrationChoice, CalibrationMethod, OtherOpsPrecision } from '../policy.ts';
import { UserError } from '../errors.ts';
import { loadModelAndLayers, withModelOptions, type LoadedModel, type ModelArgs } from './model-options.ts';
import { loadRecExample, CHAR_ACCURACY_PLUGIN } from '../../experiments/ppocr/dataset.ts';
import { progress as startProgress } from './progress.ts';

export interface ExperimentArgs extends ModelArgs {
  data?: string;
  labels?: string;
  metric?: string;
  'calib-samples'?: number;
  'eval-samples'?: number;
  calibration?: string;
  percentile?: number;
  'iou-threshold'?: number;
  'batch-size'?: number;
  seed?: number;
  'other-ops'?: OtherOpsPrecision;
}

export const DEFAULT_CALIB_SAMPLES = 128;
export const DEFAULT_EVAL_SAMPLES = 256;

export function withExperimentOptions<T>(y: Argv<T>): Argv<T & ExperimentArgs> {
  return withModelOptions(y)
    .option('data', { type: 'string', describe: 'Inputs: .npy (float32, samples first) for one input, .npz with one array per input name' })
    .option('labels', { type: 'string', describe: 'Labels: .txt (one per line), .json (array) or .npy' })
    .option('metric', { type: 'string', describe: 'top1 | agreement | cosine | sqnr | mse | iou | ./plugin.mjs (default: agreement; char accuracy for the built-in example)' })
    .option('calib-samples', { type: 'number', default: DEFAULT_CALIB_SAMPLES, describe: 'Samples used for calibration' })
    .option('eval-samples', { type: 'number', default: DEFAULT_EVAL_SAMPLES, describe: 'Samples each policy is scored on' })
    .option('calibration', { type: 'string', choices: ['max', 'percentile', 'entropy', 'mse'], default: 'percentile', describe: 'Default activation calibration (a policy may choose per layer)' })
    .option('percentile', { type: 'number', default: 99.99, describe: 'Percentile for --calibration percentile' })
    .option('iou-threshold', { type: 'number', default: 0.5, describe: 'Threshold of the iou metric' })
    .option('batch-size', { type: 'number', default: 16, describe: 'Samples per onnxruntime run' })
    .option('other-ops', { choices: OTHER_OPS_PRECISIONS, default: DEFAULT_OTHER_OPS, describe: 'Precision of the ops outside the quantizable layers (TensorRT 11: model.qdq.onnx casts them); fp16 keeps in FP32 what would overflow (AutoCast: |x| > 512, initializers > 65504)' })
    .option('seed', { type: 'number', default: 0, describe: 'Seed for the data split and every random choice' }) as Argv<T & ExperimentArgs>;
}

export interface Experiment {
  loaded: LoadedModel;
  /** Where the data came from: a file path, or `builtin:ppocr-rec`. */
  dataSource: string;
  labelsSource?: string;
  metricSpec: string;
  data: Dataset;
  split: DatasetSplit;
  metric: Metric;
  calibration: CalibrationTable;
  defaultCalibration: CalibrationChoice;
  base: SimulationBase;
  evaluator: PolicyEvaluator;
  batchSize: number;
  seed: number;
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

export async function prepareExperiment(args: ExperimentArgs, ui: ExperimentUi = { quiet: true, log: () => {} }): Promise<Experiment> {
  if (args.model && !args.data) throw new UserError('--data is required with --model: pass a .npy or .npz of real inputs (a few hundred samples)');
  if (!args.model && args.data) throw new UserError('--data was given without --model; pass the ONNX model the data is for');
  const loaded = await loadModelAndLayers(args);
  let data: Dataset;
  let dataSource: string;
  let metricSpec = args.metric;
  if (loaded.builtIn) {
    data = loadRecExample();
    dataSource = BUILTIN_DATA;
    metricSpec ??= CHAR_ACCURACY_PLUGIN;
  } else {
    if (!existsSync(args.data!)) throw new UserError(`data file ${args.data} does not exist; check the --data path`);
    data = loadDataset({
      dataPath: args.data!,
      labelsPath: args.labels,
      inputs: modelInputs(loaded.graph).map((i) => ({ name: i.name, dims: i.dims })),
    });
    dataSource = args.data!;
    metricSpec ??= 'agreement';
  }
  const metric = await loadMetric(metricSpec, { iouThreshold: args['iou-threshold'] });
  if (metric.needsLabels && !data.labels) throw new UserError(`metric ${metric.name} needs labels; pass --labels (or choose a metric that compares with FP32, e.g. agreement)`);
  const seed = args.seed ?? 0;
  const split = splitDataset(data, {
    calibSamples: positiveInt('calib-samples', args['calib-samples'], DEFAULT_CALIB_SAMPLES),
    evalSamples: positiveInt('eval-samples', args['eval-samples'], DEFAULT_EVAL_SAMPLES),
    seed,
  });
  if (split.overlap > 0) {
    ui.log(`note: the data has ${data.count} samples; calibration and evaluation share ${split.overlap} of them`);
  }
  const batchSize = positiveInt('batch-size', args['batch-size'], 16);
  const tensors = quantizableTensors(loaded.graph, loaded.layers);
  const otherOps = args['other-ops'] ?? DEFAULT_OTHER_OPS;
  const bar = startProgress('calibration', { total: (otherOps === 'fp16' ? 3 : 2) * split.calib.count, quiet: ui.quiet });
  const stats = await collectStatistics(loaded.model, tensors, split.calib.count, (s, e) => sliceFeeds(split.calib, s, e), {
    batchSize: Math.min(batchSize, 8),
    onProgress: (phase, done) => bar.update(phase === 'range' ? done : split.calib.count + done, phase),
  });
  // AutoCast's ranges: max |x| of every tensor the other ops read or write, on the same samples.
  const ranges = otherOps === 'fp16'
    ? await collectRanges(loaded.model, autocastTensors(loaded.graph, loaded.layers), split.calib.count, (s, e) => sliceFeeds(split.calib, s, e), {
      onBatch: (done) => bar.update(2 * split.calib.count + done, 'ranges'),
    })
    : {};
  bar.finish(`${tensors.length} tensors, ${split.calib.count} samples`);
  const calibration = new CalibrationTable(stats, split.calib.count);
  const defaultCalibration: CalibrationChoice = args.calibration === 'percentile' || args.calibration === undefined
    ? { method: 'percentile', percentile: args.percentile ?? 99.99 }
    : { method: args.calibration as CalibrationMethod };
  const base: SimulationBase = {
    model: loaded.model, graph: loaded.graph, layers: loaded.layers, calibration, defaultCalibration,
    otherOps: classifyOtherOps(otherOps, loaded.graph, loaded.layers, ranges),
  };
  const evaluator = await PolicyEvaluator.create(base, split.eval, metric, { batchSize });
  return { loaded, dataSource, labelsSource: args.labels, metricSpec, data, split, metric, calibration, defaultCalibration, base, evaluator, batchSize, seed };
}

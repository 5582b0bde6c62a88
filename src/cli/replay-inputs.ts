/**
 * What `trtmix replay` needs besides the policy, from its options: the model (checked against the policy's sha256),
 * the data and labels with their hashes (so that the search's own data is recognised), the metric, and per policy
 * the latency model. A ladder replay (pareto/index.json) loads these once and scores every step with them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { GlobalOptions } from './main.ts';
import { discoverModelLayers, loadModelFile, type LoadedModel } from './model-options.ts';
import { PPOCR_MODELS } from '../examples.ts';
import { UserError } from '../errors.ts';
import { loadDataset, type Dataset } from '../data/dataset.ts';
import { modelInputs } from '../onnx/layers.ts';
import { loadMetric, type Metric } from '../quant/metrics.ts';
import { createLatencyModel } from '../latency/index.ts';
import type { PolicyFile } from '../policy.ts';
import { checkPolicyModel, sha256Hex } from '../export/policy-file.ts';
import { BUILTIN_DATA, dataFiles, recordedSearchData, recordedSimulation, replayPolicy, type ReplayResult } from '../export/replay.ts';
import { loadRecExample, CHAR_ACCURACY_PLUGIN } from '../../experiments/ppocr/dataset.ts';

export interface ReplayArgs extends GlobalOptions {
  policy: string;
  model?: string;
  'input-shape'?: string[];
  data?: string;
  labels?: string;
  metric?: string;
  target?: string;
  force?: boolean;
}

export interface ReplaySubject {
  modelPath: string;
  check: { sha256: string; matches: boolean };
  m: LoadedModel;
  /** --data as given, or the built-in example's name. */
  source: string;
  data: Dataset;
  dataSha256: string;
  labelsSha256?: string;
  metricSpec: string;
  metric: Metric;
}

/** Model, data and metric for replaying `policy` (the first step's, for a ladder: they share model and data). */
export async function loadReplaySubject(args: ReplayArgs, policy: PolicyFile): Promise<ReplaySubject> {
  const modelPath = args.model ?? policy.model.path;
  if (!existsSync(modelPath)) throw new UserError(`model ${modelPath} does not exist; pass it with --model`);
  const check = checkPolicyModel(policy, modelPath, args.force);
  const builtIn = resolve(modelPath) === resolve(PPOCR_MODELS.rec.path);
  if (!args.data && !builtIn) throw new UserError('--data is required: pass the .npy or .npz to score the policy on (the search\'s own data gives its recorded score back)');
  const modelArgs = { model: builtIn && !args['input-shape'] ? undefined : modelPath, 'input-shape': args['input-shape'] };
  const file = loadModelFile(modelArgs);
  const source = args.data ?? BUILTIN_DATA;
  const files = dataFiles(source, args.labels);
  if (!existsSync(files.data)) throw new UserError(`data file ${files.data} does not exist; check the --data path`);
  const data = source === BUILTIN_DATA
    ? loadRecExample()
    : loadDataset({ dataPath: files.data, labelsPath: files.labels, inputs: modelInputs(file.graph) });
  // Layers are discovered at the data's own shapes (dynamic dims come from --data).
  const m = await discoverModelLayers(file, modelArgs, source === BUILTIN_DATA ? {} : { data });
  const dataSha256 = sha256Hex(readFileSync(files.data));
  const labelsSha256 = files.labels ? sha256Hex(readFileSync(files.labels)) : undefined;
  const record = recordedSearchData(policy);
  const metricSpec = args.metric ?? record?.metric ?? (source === BUILTIN_DATA ? CHAR_ACCURACY_PLUGIN : 'agreement');
  const metric = await loadMetric(metricSpec);
  if (metric.needsLabels && !data.labels) throw new UserError(`metric ${metric.name} needs labels; pass --labels`);
  return { modelPath, check, m, source, data, dataSha256, labelsSha256, metricSpec, metric };
}

/** Scores and prices one policy on the subject, on --target or the target the search priced it on. */
export async function replayOn(subject: ReplaySubject, policy: PolicyFile, args: Pick<ReplayArgs, 'target'>): Promise<ReplayResult> {
  const { m } = subject;
  const target = args.target ?? policy.metrics.target ?? 't4';
  const latency = await createLatencyModel(target, m.layers, {
    model: m.model, graph: m.graph, inputShapes: m.inputShapes, simulation: recordedSimulation(m.model, m.graph, m.layers, policy),
  });
  const result = await replayPolicy({
    policy, model: m.model, graph: m.graph, layers: m.layers, data: subject.data, dataSha256: subject.dataSha256,
    labelsSha256: subject.labelsSha256, metric: subject.metric, metricSpec: subject.metricSpec, latency,
  });
  if (!subject.check.matches) result.warnings.unshift(`replayed on ${subject.modelPath}, whose sha256 differs from the policy's model (--force)`);
  return result;
}

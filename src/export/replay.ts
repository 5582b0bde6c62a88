/**
 * Replaying a saved policy: the simulated model is rebuilt from policy.json alone (its precisions and the amax it
 * recorded, so no recalibration and no drift), scored with the metric, and priced on the latency target.
 *
 * On the data the search scored (same file and labels by sha256, as recorded in `search.data`), the same samples
 * in the same batches give the recorded score back; replay says whether it did (within 1e-6) and whether the
 * latency estimate matches, and does the same for the held-out test split of that data. On the --test-data file of
 * the search it gives the recorded test score back. On other data it scores every sample and reports score, FP32
 * score, drop, latency and the per-layer precisions. Every score comes with its 95 % bootstrap interval (seeded
 * with the search's seed, so the recorded intervals come back too).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import type { ModelProto } from '../onnx/model.ts';
import { takeSamples, type Dataset } from '../data/dataset.ts';
import { CalibrationTable, parseChoiceLabel } from '../quant/calibrate.ts';
import { PolicyEvaluator, type ScoreFigures } from '../quant/evaluator.ts';
import type { Metric } from '../quant/metrics.ts';
import type { SimulationBase } from '../quant/simulate.ts';
import { ALL_FP32_OTHER_OPS } from '../quant/placement.ts';
import type { LatencyModel } from '../latency/types.ts';
import { correctionsOf } from '../quant/bias-correction.ts';
import { uniformPolicy, type CalibrationChoice, type LayerPolicy, type PolicyFile, type Precision } from '../policy.ts';
import { UserError } from '../errors.ts';
import { policyPrecisions } from './plan.ts';
import { sha256Hex } from './policy-file.ts';
import { DATA_DIR } from '../../experiments/ppocr/dataset.ts';

/** How closely a replay on the search's own data must give the recorded score back. */
export const REPRODUCE_TOLERANCE = 1e-6;

/** The built-in example's data source name and its files. */
export { BUILTIN_DATA } from '../examples.ts';
import { BUILTIN_DATA } from '../examples.ts';
export const BUILTIN_DATA_FILES = { data: join(DATA_DIR, 'rec.npz'), labels: join(DATA_DIR, 'rec.labels.txt') };

/**
 * What a search records about its data in policy.json (`search.data`), so that a replay can tell the same data
 * from other data and score the same samples the same way.
 */
export interface SearchDataRecord {
  /** --data as given, or `builtin:ppocr-rec`. */
  source: string;
  /** sha256 of the data file (for the built-in example: its rec.npz). */
  sha256: string;
  labels?: { source: string; sha256: string };
  /** Indices (into the data) of the search split, in the order scored (screening used the first --screen-samples). */
  evalIndices: number[];
  calibSamples: number;
  /** Indices of the calibration samples, ascending (disjoint from the other two splits). */
  calibIndices?: number[];
  /** Indices of the test split of this data, ascending; empty with --test-data or without a test split. */
  testIndices?: number[];
  /** With --test-data: the held-out file instead of a test split. */
  test?: { source: string; sha256: string; labels?: { source: string; sha256: string } };
  seed: number;
  /** Samples per onnxruntime batch during evaluation. */
  batchSize: number;
  /** The metric as given to the search (built-in name or plugin path). */
  metric: string;
}

/** The files behind a data source: the built-in example's, or the paths as given. */
export function dataFiles(source: string, labels?: string): { data: string; labels?: string } {
  if (source === BUILTIN_DATA) return BUILTIN_DATA_FILES;
  return { data: source, ...(labels ? { labels } : {}) };
}

/**
 * The record a search writes into policy.json's `search.data`. Takes the parts of the experiment
 * (src/cli/experiment.ts `Experiment`) that decide how a policy was scored.
 */
export function searchDataRecord(exp: {
  dataSource: string; labelsSource?: string; metricSpec: string; batchSize: number; seed: number;
  split: { evalIndices: readonly number[]; calibIndices?: readonly number[]; testIndices?: readonly number[]; calib: { count: number } };
  test?: { source: string; labelsSource?: string };
}): SearchDataRecord {
  const files = dataFiles(exp.dataSource, exp.labelsSource);
  const testFile = exp.test && exp.test.source !== 'split' ? exp.test : undefined;
  return {
    source: exp.dataSource,
    sha256: sha256Hex(readFileSync(files.data)),
    ...(files.labels ? { labels: { source: exp.labelsSource ?? files.labels, sha256: sha256Hex(readFileSync(files.labels)) } } : {}),
    evalIndices: [...exp.split.evalIndices],
    calibSamples: exp.split.calib.count,
    ...(exp.split.calibIndices ? { calibIndices: [...exp.split.calibIndices] } : {}),
    ...(exp.split.testIndices ? { testIndices: [...exp.split.testIndices] } : {}),
    ...(testFile ? { test: fileRecord(testFile.source, testFile.labelsSource) } : {}),
    seed: exp.seed,
    batchSize: exp.batchSize,
    metric: exp.metricSpec,
  };
}

function fileRecord(source: string, labels?: string): NonNullable<SearchDataRecord['test']> {
  return {
    source,
    sha256: sha256Hex(readFileSync(source)),
    ...(labels ? { labels: { source: labels, sha256: sha256Hex(readFileSync(labels)) } } : {}),
  };
}

export function recordedSearchData(policy: PolicyFile): SearchDataRecord | undefined {
  const d = policy.search?.data as Partial<SearchDataRecord> | undefined;
  if (!d || typeof d.sha256 !== 'string' || !Array.isArray(d.evalIndices) || typeof d.batchSize !== 'number') return undefined;
  return d as SearchDataRecord;
}

/** Calibration that answers with the amax policy.json recorded, whatever method a layer names. */
class RecordedCalibration extends CalibrationTable {
  constructor(private readonly recorded: Record<string, number>) {
    super({}, 0);
  }

  override has(tensor: string): boolean {
    return tensor in this.recorded;
  }

  override amax(tensor: string): number {
    const a = this.recorded[tensor];
    if (a === undefined) throw new UserError(`policy.json has no calibration amax for tensor ${tensor}; re-run trtmix search to regenerate the policy`);
    return a;
  }
}

/** The policy as the simulator takes it: precision and calibration choice per layer. */
export function layerPolicyOf(policy: PolicyFile, layers: readonly Layer[], warnings: string[] = []): LayerPolicy {
  const { precisions, calibration } = policyPrecisions(policy, layers, warnings);
  const out: LayerPolicy = {};
  for (const [name, precision] of precisions) {
    const c = calibration.get(name);
    out[name] = c ? { precision, calibration: c } : { precision };
  }
  return out;
}

export function recordedSimulation(model: ModelProto, graph: Graph, layers: Layer[], policy: PolicyFile): SimulationBase {
  // policy.json writes the method as choiceLabel does: max, entropy, mse, percentile-99.99. The amax values are the
  // recorded ones whatever it says; the choice only labels the layers of the report.
  const defaultCalibration: CalibrationChoice = parseChoiceLabel(policy.calibration.method) ?? { method: 'max' };
  return { model, graph, layers, calibration: new RecordedCalibration(policy.calibration.amax), defaultCalibration, otherOps: policy.otherOps ?? ALL_FP32_OTHER_OPS };
}

export interface ReplayInputs {
  policy: PolicyFile;
  model: ModelProto;
  graph: Graph;
  layers: Layer[];
  data: Dataset;
  dataSha256: string;
  labelsSha256?: string;
  metric: Metric;
  metricSpec: string;
  latency: LatencyModel;
  /** Samples per batch when the data is not the search's (default 16, the evaluator's). */
  batchSize?: number;
}

export interface ReplayLayerRow {
  name: string;
  op: string;
  precision: Precision;
  calibration?: string;
  latencyMs: number;
}

/** The test split of the search's data replayed, in the terms of policy.json's metrics.test (a relative drop). */
export interface ReplayTest extends Omit<ScoreFigures, 'dropBound'> {
  /** `split`: the indices policy.json records. */
  source: string;
  /** policy.json's metrics.test.score, and whether it came back. */
  recorded?: number;
  reproduced?: boolean;
}

export interface ReplayResult {
  /** True when the data (and labels) are the ones the search scored. */
  searchData: boolean;
  /** True when the data is the search's --test-data file: the replay is its test score. */
  testData: boolean;
  samples: number;
  metric: string;
  score: number;
  fp32Score: number;
  /** How much worse than FP32, in the metric's units (positive = worse). */
  drop: number;
  /** drop / |fp32Score|; null when the FP32 score is 0. */
  relativeDrop: number | null;
  /** 95 % bootstrap interval of `score`, and the paired one of the relative drop. */
  ci95: [number, number];
  relativeDropCi95: [number, number];
  /** On the search's data: its test split (when it had one). */
  test?: ReplayTest;
  latencyMs: number;
  fp16LatencyMs: number;
  target: string;
  /** On the search's data: the recorded values and whether they came back. */
  recorded?: { score: number; latencyMs: number; target: string };
  reproduced?: { score: boolean; scoreDiff: number; latency: boolean | null; latencyDiff: number | null };
  layers: ReplayLayerRow[];
  warnings: string[];
}

function sameFile(file: { sha256: string; labels?: { sha256: string } } | undefined, inputs: ReplayInputs): boolean {
  if (!file || file.sha256 !== inputs.dataSha256) return false;
  return (file.labels?.sha256 ?? undefined) === inputs.labelsSha256;
}

/** policy.json's recorded test score, when the search had test samples. */
function recordedTestScore(policy: PolicyFile): number | undefined {
  const t = policy.metrics.test as { score?: unknown } | undefined;
  return typeof t?.score === 'number' ? t.score : undefined;
}

function testOf(source: string, f: ScoreFigures, recorded: number | undefined): ReplayTest {
  const { dropBound: _, ...figures } = f;
  return { source, ...figures, ...(recorded !== undefined ? { recorded, reproduced: Math.abs(f.score - recorded) <= REPRODUCE_TOLERANCE } : {}) };
}

export async function replayPolicy(inputs: ReplayInputs): Promise<ReplayResult> {
  const { policy, layers } = inputs;
  const warnings: string[] = [];
  const layerPolicy = layerPolicyOf(policy, layers, warnings);
  const record = recordedSearchData(policy);
  const searchData = sameFile(record, inputs);
  const testData = !searchData && sameFile(record?.test, inputs);
  if ((searchData || testData) && record!.metric !== inputs.metricSpec) {
    warnings.push(`the search scored with --metric ${record!.metric}, this replay with ${inputs.metricSpec}; the recorded score is not comparable`);
  }
  const data = searchData ? takeSamples(inputs.data, record!.evalIndices) : inputs.data;
  const batchSize = searchData || testData ? record!.batchSize : inputs.batchSize ?? 16;
  const base = recordedSimulation(inputs.model, inputs.graph, layers, policy);
  // Bias corrections as policy.json records them: the values the search scored and the exports carry.
  const recordedBias = correctionsOf(policy.biasCorrection);
  const biasCorrection = recordedBias ? async () => recordedBias : undefined;
  const scoreOn = async (set: Dataset) =>
    (await PolicyEvaluator.create(base, set, inputs.metric, { batchSize, bootstrap: { seed: record?.seed ?? 0 }, ...(biasCorrection ? { biasCorrection } : {}) })).figures(layerPolicy);
  const figures = await scoreOn(data);
  const { score, fp32Score } = figures;
  const drop = inputs.metric.higherIsBetter ? fp32Score - score : score - fp32Score;
  const testIndices = searchData ? record!.testIndices ?? [] : [];
  const test = testIndices.length > 0 ? testOf('split', await scoreOn(takeSamples(inputs.data, testIndices)), recordedTestScore(policy)) : undefined;

  const estimate = await inputs.latency.estimate(layerPolicy);
  const fp16 = await inputs.latency.estimate(uniformPolicy(layers.map((l) => l.name), 'fp16'));
  const perLayer = new Map(estimate.perLayer.map((p) => [p.name, p]));
  const rows: ReplayLayerRow[] = layers.map((l) => {
    const d = layerPolicy[l.name];
    const c = d.calibration ?? (d.precision === 'int8' || d.precision === 'mixed' ? base.defaultCalibration : undefined);
    const p = perLayer.get(l.name);
    return {
      name: l.name, op: l.op, precision: d.precision,
      ...(c && (d.precision === 'int8' || d.precision === 'mixed') ? { calibration: c.method === 'percentile' ? `percentile ${c.percentile ?? 99.99}` : c.method } : {}),
      latencyMs: p ? p.ms + p.reformatMs : 0,
    };
  });

  const result: ReplayResult = {
    searchData,
    testData,
    samples: data.count,
    metric: inputs.metric.name,
    score,
    fp32Score,
    drop,
    relativeDrop: fp32Score !== 0 ? drop / Math.abs(fp32Score) : null,
    ci95: figures.ci95,
    relativeDropCi95: figures.dropCi95,
    ...(test ? { test } : {}),
    latencyMs: estimate.totalMs,
    fp16LatencyMs: fp16.totalMs,
    target: inputs.latency.target,
    layers: rows,
    warnings,
  };
  if (searchData || testData) {
    const m = policy.metrics;
    const recordedScore = testData ? recordedTestScore(policy) ?? NaN : m.score;
    const scoreDiff = Math.abs(score - recordedScore);
    const sameTarget = m.target === inputs.latency.target;
    // ort-cpu measures wall time, which varies run to run; model-based targets give the same number back.
    const checkable = sameTarget && inputs.latency.target !== 'ort-cpu';
    const latencyDiff = sameTarget ? Math.abs(estimate.totalMs - m.latencyMs) : null;
    result.recorded = { score: recordedScore, latencyMs: m.latencyMs, target: m.target };
    result.reproduced = {
      score: scoreDiff <= REPRODUCE_TOLERANCE,
      scoreDiff,
      latency: checkable ? latencyDiff! <= REPRODUCE_TOLERANCE * Math.max(1, m.latencyMs) : null,
      latencyDiff,
    };
    if (!sameTarget) warnings.push(`the search priced latency on ${m.target}, this replay on ${inputs.latency.target}`);
    if (searchData && record!.test) warnings.push(`the search's test samples are in ${record!.test.source}: replay on it (--data) for the test score`);
  } else if (record) {
    warnings.push(`this is not the data the search scored (${record.source}); scored all ${data.count} samples instead`);
  }
  return result;
}

/**
 * Per-layer INT8 sensitivity. For each quantizable layer:
 *   - int8 alone: the metric with only that layer in INT8 (the rest FP32), and how far its output moves from FP32
 *     (MSE, SQNR, KL divergence and overlap of the value histograms; see compare.ts);
 *   - leave-one-out: the metric with every layer in INT8 except that one, i.e. how much of the all-INT8 loss
 *     this layer is responsible for;
 *   - from calibration: the input's outliers beyond mean ± 4 std, the share clipped by the default amax, the amax
 *     under every calibration method, and the share of the output's symmetric int8 range left unused.
 * The result is what `trtmix analyze` writes and what the search uses as per-layer features (in-process through
 * analyzeLayers, or from analysis.json through loadAnalysis).
 *
 * Cost: 2 x layers policy runs on the analysis samples. Each runs from the cut just before its layer (see
 * segments.ts), so a run costs the part of the model after the layer, not the whole model.
 */
import type { Layer } from '../onnx/layer-types.ts';
import type { ModelProto } from '../onnx/model.ts';
import type { CalibrationTable } from '../quant/calibrate.ts';
import { choiceLabel } from '../quant/calibrate.ts';
import type { AbsHistogram } from '../quant/amax.ts';
import type { PolicyEvaluator } from '../quant/evaluator.ts';
import type { SampleOutputs } from '../quant/metrics.ts';
import { scoreWith } from '../quant/metrics.ts';
import { scaleFromAmax } from '../quant/int8.ts';
import { buildSimulatedModel, resolveAmax, type SimulationBase } from '../quant/simulate.ts';
import { uniformPolicy, type CalibrationChoice, type LayerPolicy } from '../policy.ts';
import { cutBefore, CutWalker, type TensorBatch } from './segments.ts';
import { floatData } from '../onnx/runtime.ts';
import { dropPadding } from '../data/batches.ts';
import { COMPARISON_BINS, KL_EPSILON, OutputComparison, rangeWaste, type ComparisonResult } from './compare.ts';

export const ANALYSIS_VERSION = 1;
export const DEFAULT_ANALYSIS_SAMPLES = 128;
export const DEFAULT_STATS_SAMPLES = 32;
/** The source method's flags: KL above, or histogram overlap below, marks a layer as sensitive. */
export const KL_FLAG = 0.3;
export const OVERLAP_FLAG = 0.8;
/** A layer whose output leaves at least half of the symmetric int8 range unused (ReLU6 / Clip(0, x) outputs). */
export const RANGE_WASTE_FLAG = 0.5;

/** Calibration methods whose input amax is recorded per layer (for the search and the report). */
export const AMAX_METHODS: readonly CalibrationChoice[] = [
  { method: 'max' },
  { method: 'percentile', percentile: 99.99 },
  { method: 'percentile', percentile: 99.999 },
  { method: 'entropy' },
  { method: 'mse' },
];

export type LayerFlag = 'kl' | 'overlap' | 'range';

export interface LayerAnalysis {
  name: string;
  /** Position among quantizable layers, topological order. */
  index: number;
  op: string;
  macs: number;
  activation?: string;
  /** The activation tensor int8 quantizes per tensor, and the output after the fused activation. */
  input: string;
  output: string;
  /** Metric with only this layer in INT8, the rest FP32. */
  int8Score: number;
  /** Drop of that score from FP32 (relative to |FP32| unless the analysis says `drop: 'absolute'`); > 0 is worse. */
  int8Drop: number;
  /** Metric with every layer in INT8 except this one. */
  leaveOneOutScore: number;
  /** What taking this layer out of INT8 recovers: leave-one-out score minus all-INT8 score, in drop units; > 0 = sensitive. */
  leaveOneOutDrop: number;
  /** Layer output, int8 alone vs FP32, on the statistics samples. */
  mse: number;
  sqnrDb: number;
  kl: number;
  histogramOverlap: number;
  /** Share of the layer input's values beyond mean ± 4 std (calibration set). */
  outlierFraction: number;
  /** The same for the layer output. */
  outputOutlierFraction: number;
  /** Share of the input's |values| beyond its amax under the default calibration (what int8 clips). */
  clippedFraction: number;
  /** Share of the output's symmetric int8 range [-amax, amax] its observed values never reach. */
  rangeWaste: number;
  /** Known output bound of the fused activation (ReLU6: [0, 6]). */
  activationRange?: [number, number];
  /** Input amax under each calibration method (label as in choiceLabel: max, percentile-99.99, entropy, mse, ...). */
  inputAmax: Record<string, number>;
  /** The amax of the input and output under the default calibration (what the int8 runs used). */
  amax: { input: number; output: number };
  flags: LayerFlag[];
  /** 1 = most sensitive (see rankLayers). */
  rank: number;
}

export interface Analysis {
  version: typeof ANALYSIS_VERSION;
  model: { path: string; sha256?: string };
  metric: { name: string; higherIsBetter: boolean };
  /** Default calibration (label) and the number of calibration samples. */
  calibration: { method: string; samples: number };
  /** Evaluation samples every metric run used, and the first ones whose layer outputs were compared. */
  samples: number;
  statsSamples: number;
  fp32Score: number;
  /** All layers INT8 (default calibration) on the same samples. */
  int8Score: number;
  /** Drops are divided by |FP32 score|, unless it is 0 (e.g. the mse metric), where they are absolute. */
  drop: 'relative' | 'absolute';
  thresholds: { kl: number; histogramOverlap: number; rangeWaste: number };
  histogram: { binning: 'int8-levels'; maxBins: number; klEpsilon: number };
  seconds: number;
  layers: LayerAnalysis[];
}

export interface AnalysisSubject {
  base: SimulationBase;
  evaluator: PolicyEvaluator;
  /** Where the model came from, for the record (an Experiment has it). */
  loaded?: { path: string };
  /** Samples per onnxruntime run; the evaluator's, so that scores match its own (an Experiment has it). */
  batchSize?: number;
}

export interface AnalyzeProgress {
  phase: 'int8' | 'leave-one-out';
  /** Layer runs finished (of 2 x layers). */
  done: number;
  total: number;
  layer: string;
  /** What the run just finished measured of that layer (for live metrics before the analysis is complete). */
  measured: Partial<Pick<LayerAnalysis, 'int8Score' | 'int8Drop' | 'leaveOneOutScore' | 'leaveOneOutDrop' | 'mse' | 'sqnrDb' | 'kl' | 'histogramOverlap'>>;
}

export interface AnalyzeOptions {
  /** Evaluation samples per metric run (the first ones of the evaluation set). */
  samples?: number;
  /** Of those, how many feed the layer-output statistics. */
  statsSamples?: number;
  batchSize?: number;
  /** Run each layer's policy from the cut before it (default); false runs whole models (slower, same numbers). */
  cuts?: boolean;
  model?: { path: string; sha256?: string };
  onProgress?: (p: AnalyzeProgress) => void;
}

/** Drop of `score` from `fp32` in the metric's direction; relative to |fp32| unless fp32 is 0. */
export function scoreDrop(score: number, fp32: number, higherIsBetter: boolean): number {
  const d = higherIsBetter ? fp32 - score : score - fp32;
  return Math.abs(fp32) > 1e-12 ? d / Math.abs(fp32) : d;
}

/** Share of a |x| histogram at or beyond amax (bins whose lower edge reaches it). */
export function fractionBeyond(h: AbsHistogram, amax: number): number {
  let total = 0;
  let beyond = 0;
  const width = h.range / h.counts.length;
  for (let i = 0; i < h.counts.length; i++) {
    total += h.counts[i];
    if (width > 0 && i * width >= amax) beyond += h.counts[i];
  }
  return total > 0 ? beyond / total : 0;
}

/**
 * Most sensitive first: by the layer's own INT8 drop, then by what leaving it out of all-INT8 recovers, then by
 * KL; model order breaks exact ties. Returns the layers in rank order (it does not modify them).
 */
export function rankLayers<T extends Pick<LayerAnalysis, 'int8Drop' | 'leaveOneOutDrop' | 'kl' | 'index'>>(layers: readonly T[]): T[] {
  const key = (v: number) => (Number.isFinite(v) ? v : -Infinity);
  return [...layers].sort((a, b) => key(b.int8Drop) - key(a.int8Drop) || key(b.leaveOneOutDrop) - key(a.leaveOneOutDrop) || key(b.kl) - key(a.kl) || a.index - b.index);
}

export function layerFlags(l: Pick<LayerAnalysis, 'kl' | 'histogramOverlap' | 'rangeWaste'>): LayerFlag[] {
  const flags: LayerFlag[] = [];
  if (l.kl > KL_FLAG) flags.push('kl');
  if (l.histogramOverlap < OVERLAP_FLAG) flags.push('overlap');
  if (l.rangeWaste >= RANGE_WASTE_FLAG) flags.push('range');
  return flags;
}

function hasSubgraphs(model: ModelProto): boolean {
  return (model.graph?.node ?? []).some((n) => (n.attribute ?? []).some((a) => a.g || (a.graphs && a.graphs.length > 0)));
}

/** Per-sample outputs (batch dimension removed) of the named tensors of one batch result of `rows` rows (padding after `count`). */
function splitSamples(result: TensorBatch, names: readonly string[], count: number, rows = count): SampleOutputs[] {
  const out: SampleOutputs[] = Array.from({ length: count }, () => ({}));
  for (const name of names) {
    const t = result[name];
    const data = floatData(t);
    const per = data.length / rows;
    for (let i = 0; i < count; i++) out[i][name] = { data: data.slice(i * per, (i + 1) * per), dims: [...t.dims.slice(1)] };
  }
  return out;
}

/** The first `keep` samples of a batch tensor's data, of a batch of `rows` rows (see dropPadding). */
function leadingSamples(t: TensorBatch[string], keep: number, rows: number): Float32Array {
  return dropPadding(floatData(t), t.dims, rows, keep);
}

function boundOf(layers: readonly Layer[], tensor: string): number | undefined {
  const range = layers.find((l) => l.fusedOutput === tensor)?.activationRange;
  if (!range) return undefined;
  const b = Math.max(Math.abs(range[0]), Math.abs(range[1]));
  return Number.isFinite(b) ? b : undefined;
}

interface LayerRun {
  score: number;
  comparison?: ComparisonResult;
}

interface SweepContext {
  subject: AnalysisSubject;
  samples: number;
  statsSamples: number;
  batchSize: number;
  cuts: boolean;
  reference: SampleOutputs[];
  labels?: unknown[];
  outputNames: string[];
  onLayerDone: (layer: Layer, run: LayerRun) => void;
}

/**
 * Runs `policyFor(layer)` for every layer, each from the cut before the layer through `fixed` (the policy all
 * per-layer policies agree with upstream of their layer). With `compare`, also compares each layer's output
 * (int8 run) with the fixed model's (FP32) on the statistics samples.
 */
async function sweep(ctx: SweepContext, fixed: LayerPolicy, policyFor: (l: Layer) => LayerPolicy, compare: boolean): Promise<Map<string, LayerRun>> {
  const { base, evaluator } = ctx.subject;
  const fixedModel = await evaluator.simulatedModel(fixed);
  const walker = CutWalker.start(fixedModel, evaluator.data, ctx.samples, ctx.batchSize);
  const byNode = [...base.layers].sort((a, b) => a.nodeIndex - b.nodeIndex);
  const runs = new Map<string, LayerRun>();
  for (let k = 0; k < byNode.length; k++) {
    const l = byNode[k];
    if (ctx.cuts) await walker.advance(cutBefore(base.graph, l.nodeIndex));
    const extra = compare && !ctx.outputNames.includes(l.fusedOutput) ? [l.fusedOutput] : [];
    const sim = await evaluator.simulatedModel(policyFor(l), { extraOutputs: extra });
    const part = walker.subgraph(sim, [...ctx.outputNames, ...extra]);
    const outputs: SampleOutputs[] = [];
    const quantized: Float32Array[] = [];
    await walker.runEach(part, (_, result, [start, end], rows) => {
      outputs.push(...splitSamples(result, ctx.outputNames, end - start, rows));
      if (compare && start < ctx.statsSamples) quantized.push(leadingSamples(result[l.fusedOutput], Math.min(end, ctx.statsSamples) - start, rows).slice());
    });
    const score = await scoreWith(evaluator.metric, { outputs, reference: ctx.reference, labels: ctx.labels });
    const run: LayerRun = { score };
    if (compare) {
      // The FP32 output comes from the fixed (all-FP32) model, computed while moving on to the next cut.
      const next = ctx.cuts && k + 1 < byNode.length ? cutBefore(base.graph, byNode[k + 1].nodeIndex) : [...walker.cut];
      const kept = await walker.advance(next, [l.fusedOutput], ctx.statsSamples);
      const amax = resolveAmax(base, policyFor(l))[l.fusedOutput];
      const comparison = new OutputComparison(scaleFromAmax(amax));
      quantized.forEach((q, b) => {
        const [start, end] = walker.ranges[b];
        const ref = leadingSamples(kept[b][l.fusedOutput], Math.min(end, ctx.statsSamples) - start, walker.rows[b]);
        comparison.add(ref, q);
      });
      run.comparison = comparison.result();
    }
    runs.set(l.name, run);
    ctx.onLayerDone(l, run);
  }
  return runs;
}

function calibrationFeatures(base: SimulationBase, l: Layer) {
  const table: CalibrationTable = base.calibration;
  const inputBound = boundOf(base.layers, l.input);
  const inputAmax: Record<string, number> = {};
  for (const c of AMAX_METHODS) inputAmax[choiceLabel(c)] = table.amax(l.input, c, inputBound);
  const amax = resolveAmax(base, { [l.name]: { precision: 'int8' } });
  const inStats = table.stats[l.input];
  const outStats = table.stats[l.fusedOutput];
  return {
    inputAmax,
    amax: { input: amax[l.input], output: amax[l.fusedOutput] },
    outlierFraction: inStats.outlierFraction,
    outputOutlierFraction: outStats.outlierFraction,
    clippedFraction: fractionBeyond(inStats.histogram, amax[l.input]),
    rangeWaste: rangeWaste(outStats.min, outStats.max, amax[l.fusedOutput]),
  };
}

/** Measures every layer's sensitivity (see the file comment). */
export async function analyzeLayers(subject: AnalysisSubject, opts: AnalyzeOptions = {}): Promise<Analysis> {
  const t0 = performance.now();
  const { base, evaluator } = subject;
  const samples = Math.max(1, Math.min(evaluator.data.count, Math.floor(opts.samples ?? DEFAULT_ANALYSIS_SAMPLES)));
  const statsSamples = Math.max(1, Math.min(samples, Math.floor(opts.statsSamples ?? DEFAULT_STATS_SAMPLES)));
  const names = base.layers.map((l) => l.name);
  const metric = evaluator.metric;
  const reference = evaluator.referenceOutputs.slice(0, samples);
  const labels = evaluator.data.labels?.slice(0, samples);
  const fp32Score = await scoreWith(metric, { outputs: reference, reference, labels });
  const allInt8 = uniformPolicy(names, 'int8');
  const int8Score = (await evaluator.evaluate(allInt8, { samples })).score;

  let done = 0;
  const total = 2 * base.layers.length;
  let phase: AnalyzeProgress['phase'] = 'int8';
  const hib = metric.higherIsBetter;
  const leaveOneOutDrop = (score: number) => scoreDrop(int8Score, fp32Score, hib) - scoreDrop(score, fp32Score, hib);
  const measured = (run: LayerRun): AnalyzeProgress['measured'] => {
    if (phase === 'leave-one-out') return { leaveOneOutScore: run.score, leaveOneOutDrop: leaveOneOutDrop(run.score) };
    const c = run.comparison;
    return { int8Score: run.score, int8Drop: scoreDrop(run.score, fp32Score, hib), ...(c ? { mse: c.mse, sqnrDb: c.sqnrDb, kl: c.kl, histogramOverlap: c.histogramOverlap } : {}) };
  };
  const ctx: SweepContext = {
    subject, samples, statsSamples, labels, reference,
    batchSize: opts.batchSize ?? subject.batchSize ?? 16,
    cuts: (opts.cuts ?? true) && !hasSubgraphs(base.model),
    outputNames: (base.model.graph!.output ?? []).map((o) => o.name!),
    onLayerDone: (l, run) => opts.onProgress?.({ phase, done: ++done, total, layer: l.name, measured: measured(run) }),
  };
  const alone = await sweep(ctx, {}, (l) => ({ [l.name]: { precision: 'int8' } }), true);
  phase = 'leave-one-out';
  const leaveOut = await sweep(ctx, allInt8, (l) => ({ ...allInt8, [l.name]: { precision: 'fp32' } }), false);

  const layers: LayerAnalysis[] = base.layers.map((l) => {
    const a = alone.get(l.name)!;
    const c = a.comparison!;
    const loo = leaveOut.get(l.name)!.score;
    const features = calibrationFeatures(base, l);
    const entry: LayerAnalysis = {
      name: l.name, index: l.index, op: l.op, macs: l.macs,
      ...(l.activation ? { activation: l.activation } : {}),
      input: l.input, output: l.fusedOutput,
      int8Score: a.score,
      int8Drop: scoreDrop(a.score, fp32Score, hib),
      leaveOneOutScore: loo,
      leaveOneOutDrop: leaveOneOutDrop(loo),
      mse: c.mse, sqnrDb: c.sqnrDb, kl: c.kl, histogramOverlap: c.histogramOverlap,
      outlierFraction: features.outlierFraction,
      outputOutlierFraction: features.outputOutlierFraction,
      clippedFraction: features.clippedFraction,
      rangeWaste: features.rangeWaste,
      ...(l.activationRange ? { activationRange: l.activationRange } : {}),
      inputAmax: features.inputAmax,
      amax: features.amax,
      flags: [],
      rank: 0,
    };
    entry.flags = layerFlags(entry);
    return entry;
  });
  rankLayers(layers).forEach((l, i) => { l.rank = i + 1; });
  return {
    version: ANALYSIS_VERSION,
    model: opts.model ?? { path: subject.loaded?.path ?? '' },
    metric: { name: metric.name, higherIsBetter: hib },
    calibration: { method: choiceLabel(base.defaultCalibration), samples: base.calibration.samples },
    samples,
    statsSamples,
    fp32Score,
    int8Score,
    drop: Math.abs(fp32Score) > 1e-12 ? 'relative' : 'absolute',
    thresholds: { kl: KL_FLAG, histogramOverlap: OVERLAP_FLAG, rangeWaste: RANGE_WASTE_FLAG },
    histogram: { binning: 'int8-levels', maxBins: COMPARISON_BINS, klEpsilon: KL_EPSILON },
    seconds: (performance.now() - t0) / 1000,
    layers,
  };
}

const memo = new WeakMap<PolicyEvaluator, Map<string, Promise<Analysis>>>();

/**
 * analyzeLayers, once per evaluator and options: the search asks for features from several places (environment
 * observations, rule and knapsack baselines) and must not pay for the analysis twice.
 */
export function cachedAnalysis(subject: AnalysisSubject, opts: Omit<AnalyzeOptions, 'onProgress'> & { onProgress?: AnalyzeOptions['onProgress'] } = {}): Promise<Analysis> {
  let byOptions = memo.get(subject.evaluator);
  if (!byOptions) { byOptions = new Map(); memo.set(subject.evaluator, byOptions); }
  const key = JSON.stringify([opts.samples ?? DEFAULT_ANALYSIS_SAMPLES, opts.statsSamples ?? DEFAULT_STATS_SAMPLES, opts.batchSize ?? subject.batchSize ?? 16, opts.cuts ?? true]);
  let p = byOptions.get(key);
  if (!p) {
    p = analyzeLayers(subject, opts);
    byOptions.set(key, p);
    p.catch(() => byOptions!.delete(key));
  }
  return p;
}

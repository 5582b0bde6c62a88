/**
 * The policy evaluator: builds the simulated model of a policy, runs it over the evaluation samples in batches
 * (sample order preserved) and scores it with the metric against the FP32 reference outputs, which are computed
 * once. Scores are cached by policy key; sessions are not kept (a new policy rarely repeats). On all samples it also
 * gives seeded bootstrap intervals: of the score, and of the drop against FP32, paired on the same resamples.
 */
import type { Feeds } from '../onnx/runtime.ts';
import { batchInputs, batchRanges, type SampleSource } from '../data/batches.ts';
import { createSession, floatData, toOrtFeeds } from '../onnx/runtime.ts';
import type { ModelProto } from '../onnx/model.ts';
import type { LayerPolicy } from '../policy.ts';
import { policyKey } from '../policy.ts';
import type { Metric, SampleOutputs } from './metrics.ts';
import { scoreWith } from './metrics.ts';
import {
  jackknife, metricScorer, proportionHits, replicates, sampleStatistics, scoreIntervals,
  type Interval,
} from './bootstrap.ts';
import { accuracyChange } from '../../envs/reward.ts';
import { buildSimulatedModel, type SimulateOptions, type SimulationBase } from './simulate.ts';
import type { BiasCorrections } from './bias-correction.ts';

export interface SampleSet extends SampleSource {
  labels?: unknown[];
}

/** Samples [start, end) of every input, as feeds with the batch dimension (padded to a fixed batch; see batches.ts). */
export function sliceFeeds(set: SampleSet, start: number, end: number): Feeds {
  return batchInputs(set, start, end);
}

/** Runs a model over the sample set; returns each sample's outputs (batch dimension removed, padding dropped). */
export async function runModel(model: ModelProto | Uint8Array, set: SampleSet, batchSize: number, count = set.count): Promise<SampleOutputs[]> {
  const session = await createSession(model);
  const out: SampleOutputs[] = [];
  try {
    for (const [start, end] of batchRanges(set, batchSize, count)) {
      const feeds = sliceFeeds(set, start, end);
      const rows = Object.values(feeds)[0]?.dims[0] ?? end - start;
      const result = await session.run(toOrtFeeds(feeds));
      const values = Object.fromEntries(Object.entries(result).map(([name, t]) => [name, { data: floatData(t), dims: t.dims }]));
      for (let i = 0; i < end - start; i++) {
        const sample: SampleOutputs = {};
        for (const [name, t] of Object.entries(values)) {
          const per = t.data.length / rows;
          sample[name] = { data: t.data.slice(i * per, (i + 1) * per), dims: [...t.dims.slice(1)] };
        }
        out.push(sample);
      }
    }
  } finally {
    await session.release();
  }
  return out;
}

export interface EvaluationResult {
  score: number;
  cached: boolean;
  seconds: number;
  samples: number;
}

export interface EvaluatorOptions {
  batchSize?: number;
  /** Seed of the bootstrap resamples (the search's --seed); resamples per interval. */
  bootstrap?: { seed: number | string; resamples?: number };
  /** Bias corrections of a policy (--bias-correction: measured on calibration samples, or as policy.json records them). */
  biasCorrection?: (policy: LayerPolicy) => Promise<BiasCorrections | undefined>;
}

/** A policy's score on every sample of the set, beside FP32's on the same samples, with 95 % intervals. */
export interface ScoreFigures {
  score: number;
  fp32Score: number;
  /** Relative drop against FP32 (positive = worse), as --max-drop counts it. */
  drop: number;
  samples: number;
  /** Percentile bootstrap interval of `score`. */
  ci95: Interval;
  /** Paired interval of `drop`: the policy and FP32 scored on the same resamples. */
  dropCi95: Interval;
  /** With a confidence asked for: the pessimistic (largest) end of the paired drop interval at that level. */
  dropBound?: number;
}

interface CachedScore {
  score: number;
  /** Bootstrap replicates of the score (all samples only). */
  replicates?: Float64Array;
  /** Per-sample 0/1 hits, for a metric that is a plain proportion (top-1). */
  hits?: Uint8Array;
  /** Leave-one-out scores (all samples only). */
  jackknife?: Float64Array;
}

export class PolicyEvaluator {
  readonly metric: Metric;
  readonly higherIsBetter: boolean;
  fp32Score = NaN;
  evaluations = 0;
  cacheHits = 0;
  private reference: SampleOutputs[] = [];
  private readonly cache = new Map<string, CachedScore>();
  private readonly layerNames: string[];
  private readonly batchSize: number;
  private readonly bootstrap: { seed: number | string; resamples?: number };
  private fp32Replicates?: CachedScore;
  private readonly biasCorrection?: (policy: LayerPolicy) => Promise<BiasCorrections | undefined>;

  private constructor(readonly base: SimulationBase, readonly data: SampleSet, metric: Metric, opts: EvaluatorOptions) {
    this.metric = metric;
    this.higherIsBetter = metric.higherIsBetter;
    this.layerNames = base.layers.map((l) => l.name);
    this.batchSize = opts.batchSize ?? 16;
    this.bootstrap = opts.bootstrap ?? { seed: 0 };
    this.biasCorrection = opts.biasCorrection;
  }

  /** The simulated model of a policy, with its bias corrections where the evaluator has them. */
  async simulatedModel(policy: LayerPolicy, opts: Omit<SimulateOptions, 'bias'> = {}): Promise<ModelProto> {
    const bias = await this.biasCorrection?.(policy);
    return buildSimulatedModel(this.base, policy, bias ? { ...opts, bias } : opts);
  }

  /** Whether the evaluator scores bias-corrected models. */
  get corrects(): boolean {
    return this.biasCorrection !== undefined;
  }

  static async create(base: SimulationBase, data: SampleSet, metric: Metric, opts: EvaluatorOptions = {}): Promise<PolicyEvaluator> {
    const e = new PolicyEvaluator(base, data, metric, opts);
    e.reference = await runModel(base.model, data, e.batchSize);
    e.fp32Score = await scoreWith(metric, { outputs: e.reference, reference: e.reference, labels: data.labels });
    return e;
  }

  get referenceOutputs(): SampleOutputs[] {
    return this.reference;
  }

  /** Score of a policy on the first `samples` samples (all by default). */
  async evaluate(policy: LayerPolicy, opts: { samples?: number } = {}): Promise<EvaluationResult> {
    const samples = Math.min(this.data.count, opts.samples ?? this.data.count);
    const key = this.keyOf(policy, samples);
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.cacheHits++;
      return { score: hit.score, cached: true, seconds: 0, samples };
    }
    const t0 = performance.now();
    const entry = await this.measure(policy, samples, Boolean(this.metric.statistics));
    this.evaluations++;
    this.cache.set(key, entry);
    return { score: entry.score, cached: false, seconds: (performance.now() - t0) / 1000, samples };
  }

  /**
   * The policy's score on all samples with its intervals. Free for a policy already scored with a metric that has
   * per-sample statistics; otherwise the policy's outputs are computed (again) to resample the metric.
   */
  async figures(policy: LayerPolicy, opts: { confidence?: number } = {}): Promise<ScoreFigures> {
    const key = this.keyOf(policy, this.data.count);
    let entry = this.cache.get(key);
    if (entry?.replicates === undefined) {
      if (entry === undefined) this.evaluations++;
      else this.cacheHits++;
      entry = await this.measure(policy, this.data.count, true);
      this.cache.set(key, entry);
    } else {
      this.cacheHits++;
    }
    const fp32 = await this.referenceReplicates();
    const intervals = scoreIntervals({
      score: entry.score, fp32Score: this.fp32Score, higherIsBetter: this.higherIsBetter,
      drop: (score, fp32Score) => -accuracyChange(score, fp32Score, this.higherIsBetter),
      replicates: entry.replicates!, fp32Replicates: fp32.replicates!,
      ...(entry.jackknife && fp32.jackknife ? { jackknife: entry.jackknife, fp32Jackknife: fp32.jackknife } : {}),
      ...(entry.hits && fp32.hits ? { hits: entry.hits, fp32Hits: fp32.hits } : {}),
    }, opts.confidence);
    return {
      score: entry.score,
      fp32Score: this.fp32Score,
      drop: -accuracyChange(entry.score, this.fp32Score, this.higherIsBetter),
      samples: this.data.count,
      ...intervals,
    };
  }

  private keyOf(policy: LayerPolicy, samples: number): string {
    return `${samples}#${policyKey(this.layerNames, policy)}`;
  }

  private async measure(policy: LayerPolicy, samples: number, withReplicates: boolean): Promise<CachedScore> {
    const outputs = await runModel(await this.simulatedModel(policy), this.data, this.batchSize, samples);
    const input = { outputs, reference: this.reference.slice(0, samples), labels: this.data.labels?.slice(0, samples) };
    const score = await scoreWith(this.metric, input);
    if (!withReplicates || samples !== this.data.count) return { score };
    return this.withReplicates(input, score);
  }

  private async withReplicates(input: { outputs: SampleOutputs[]; reference: SampleOutputs[]; labels?: unknown[] }, score: number): Promise<CachedScore> {
    const stats = await sampleStatistics(this.metric, input, score);
    const scorer = stats ? stats.scoreOf : await metricScorer(this.metric, input, score);
    const hits = stats ? proportionHits(this.metric, stats) : undefined;
    const n = input.outputs.length;
    const jack = n < 2 ? undefined : stats ? stats.leaveOneOut() : await jackknife(scorer, n);
    return { score, replicates: await replicates(scorer, n, this.bootstrap), ...(hits ? { hits } : {}), ...(jack ? { jackknife: jack } : {}) };
  }

  private async referenceReplicates(): Promise<CachedScore> {
    this.fp32Replicates ??= await this.withReplicates({ outputs: this.reference, reference: this.reference, labels: this.data.labels }, this.fp32Score);
    return this.fp32Replicates;
  }

  /** Forgets cached scores (so that agents compared on the same evaluator each pay for their evaluations). */
  clearCache(): void {
    this.cache.clear();
  }

  /** Outputs of a policy's simulated model (no caching), e.g. for replay reports or export checks. */
  async outputs(policy: LayerPolicy, samples = this.data.count): Promise<SampleOutputs[]> {
    return runModel(await this.simulatedModel(policy), this.data, this.batchSize, samples);
  }
}

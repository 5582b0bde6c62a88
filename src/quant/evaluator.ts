/**
 * The policy evaluator: builds the simulated model of a policy, runs it over the evaluation samples in batches
 * (sample order preserved) and scores it with the metric against the FP32 reference outputs, which are computed
 * once. Scores are cached by policy key; sessions are not kept (a new policy rarely repeats).
 */
import type { Feeds } from '../onnx/runtime.ts';
import { batchInputs, batchRanges, type SampleSource } from '../data/batches.ts';
import { createSession, floatData, toOrtFeeds } from '../onnx/runtime.ts';
import type { ModelProto } from '../onnx/model.ts';
import type { LayerPolicy } from '../policy.ts';
import { policyKey } from '../policy.ts';
import type { Metric, SampleOutputs } from './metrics.ts';
import { scoreWith } from './metrics.ts';
import { buildSimulatedModel, type SimulationBase } from './simulate.ts';

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
}

export class PolicyEvaluator {
  readonly metric: Metric;
  readonly higherIsBetter: boolean;
  fp32Score = NaN;
  evaluations = 0;
  cacheHits = 0;
  private reference: SampleOutputs[] = [];
  private readonly cache = new Map<string, number>();
  private readonly layerNames: string[];
  private readonly batchSize: number;

  private constructor(readonly base: SimulationBase, readonly data: SampleSet, metric: Metric, opts: EvaluatorOptions) {
    this.metric = metric;
    this.higherIsBetter = metric.higherIsBetter;
    this.layerNames = base.layers.map((l) => l.name);
    this.batchSize = opts.batchSize ?? 16;
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
    const key = `${samples}#${policyKey(this.layerNames, policy)}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      this.cacheHits++;
      return { score: hit, cached: true, seconds: 0, samples };
    }
    const t0 = performance.now();
    const outputs = await runModel(buildSimulatedModel(this.base, policy), this.data, this.batchSize, samples);
    const score = await scoreWith(this.metric, {
      outputs,
      reference: this.reference.slice(0, samples),
      labels: this.data.labels?.slice(0, samples),
    });
    this.evaluations++;
    this.cache.set(key, score);
    return { score, cached: false, seconds: (performance.now() - t0) / 1000, samples };
  }

  /** Forgets cached scores (so that agents compared on the same evaluator each pay for their evaluations). */
  clearCache(): void {
    this.cache.clear();
  }

  /** Outputs of a policy's simulated model (no caching), e.g. for replay reports or export checks. */
  async outputs(policy: LayerPolicy, samples = this.data.count): Promise<SampleOutputs[]> {
    return runModel(buildSimulatedModel(this.base, policy), this.data, this.batchSize, samples);
  }
}

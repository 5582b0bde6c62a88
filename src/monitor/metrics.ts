/**
 * What a running search, analysis or comparison tells Prometheus: progress of every phase, the best policy so far
 * (score, latency, reward, per-layer precision), evaluations and their cost, and each layer's quantization error and
 * sensitivity as the analysis measures them. Names keep the `trtmix_` prefix and the per-layer names of metrics.prom
 * (LAYER_GAUGES), so a dashboard reads the same series from a live run and from a file.
 *
 * The exposition itself is prom-client's (text format 0.0.4). Values are set as events arrive; a scrape only reads.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PRECISIONS, readsInt8, type Precision } from '../policy.ts';
import { LAYER_GAUGES, layerLabels } from '../analysis/files.ts';
import type { Analysis, AnalyzeProgress, LayerAnalysis } from '../analysis/analyze.ts';
import type { ProgressSnapshot } from '../cli/progress.ts';
import type { EvaluationRecord, EvaluationStats } from '../../envs/evaluation-ledger.ts';

/** The metric names the monitor serves besides the per-layer analysis gauges (grafana.ts builds its queries on them). */
export const METRIC = {
  runInfo: 'trtmix_run_info',
  progressRatio: 'trtmix_progress_ratio',
  progressDone: 'trtmix_progress_done',
  progressTotal: 'trtmix_progress_total',
  progressEta: 'trtmix_progress_eta_seconds',
  fp32Score: 'trtmix_fp32_score',
  int8Score: 'trtmix_int8_score',
  fp16Latency: 'trtmix_fp16_latency_ms',
  int8Latency: 'trtmix_int8_latency_ms',
  evaluations: 'trtmix_search_evaluations_total',
  feasible: 'trtmix_search_feasible_total',
  cacheHits: 'trtmix_search_cache_hits_total',
  episodes: 'trtmix_search_episodes_total',
  evaluationSeconds: 'trtmix_evaluation_seconds',
  bestScore: 'trtmix_best_score',
  bestLatency: 'trtmix_best_latency_ms',
  bestReward: 'trtmix_best_reward',
  bestInt8MacsShare: 'trtmix_best_int8_macs_share',
  bestLayerPrecision: 'trtmix_best_layer_precision',
  lastScore: 'trtmix_last_score',
  lastLatency: 'trtmix_last_latency_ms',
  analysisSeconds: 'trtmix_analysis_seconds',
} as const;

/** Buckets of one evaluation's wall time: from a tiny model's milliseconds to a large model's minute. */
const EVALUATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The parts of a search setup the monitor watches (src/search/run.ts SearchSetup has them). */
export interface WatchedSearch {
  exp: { loaded: { path: string }; metric: { name: string } };
  env: {
    readonly stats: Readonly<EvaluationStats & { episodes: number }>;
    readonly best: EvaluationRecord | undefined;
    readonly fp32Score: number;
    readonly fp16LatencyMs: number;
    readonly layers: ReadonlyArray<{ name: string; op: string; index: number; macs: number }>;
    readonly latencyTable: { uniformTotalMs: Partial<Record<Precision, number>> };
  };
  analysis?: Analysis;
  hooks: { onEvaluation: (r: EvaluationRecord) => void };
}

type LayerRef = Pick<LayerAnalysis, 'name' | 'op' | 'index'>;

export class RunMetrics {
  readonly registry = new Registry();
  private readonly runInfo: Gauge;
  private readonly progressRatio: Gauge;
  private readonly progressDone: Gauge;
  private readonly progressTotal: Gauge;
  private readonly progressEta: Gauge;
  private readonly fp32Score: Gauge;
  private readonly int8Score: Gauge;
  private readonly fp16Latency: Gauge;
  private readonly int8Latency: Gauge;
  private readonly evaluations: Counter;
  private readonly feasible: Counter;
  private readonly cacheHits: Counter;
  private readonly episodes: Counter;
  private readonly evaluationSeconds: Histogram;
  private readonly bestScore: Gauge;
  private readonly bestLatency: Gauge;
  private readonly bestReward: Gauge;
  private readonly bestInt8MacsShare: Gauge;
  private readonly bestLayerPrecision: Gauge;
  private readonly lastScore: Gauge;
  private readonly lastLatency: Gauge;
  private readonly analysisSeconds: Gauge;
  private readonly layerGauges: Map<string, Gauge>;
  /** Counters already reported per agent, so that stats (running totals) become increments. */
  private readonly reported = new Map<string, { evaluations: number; subsetEvaluations: number; cacheHits: number; episodes: number; bestKey?: string }>();

  constructor(readonly command: string) {
    const r = [this.registry];
    const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: r });
    const counter = (name: string, help: string, labelNames: string[]) => new Counter({ name, help, labelNames, registers: r });
    this.runInfo = gauge(METRIC.runInfo, 'Always 1; the labels say what this trtmix process runs.', ['command', 'model', 'metric', 'target']);
    this.runInfo.set({ command, model: '', metric: '', target: '' }, 1);
    this.progressRatio = gauge(METRIC.progressRatio, 'Share of the phase done (1 once it has finished, also when a time limit ended it early).', ['phase']);
    this.progressDone = gauge(METRIC.progressDone, 'Units of the phase done (layers, batches, episodes, evaluations).', ['phase']);
    this.progressTotal = gauge(METRIC.progressTotal, 'Units the phase expects, where known.', ['phase']);
    this.progressEta = gauge(METRIC.progressEta, 'Estimated seconds until the phase ends (rate so far, capped by the time limit).', ['phase']);
    this.fp32Score = gauge(METRIC.fp32Score, 'Metric of the FP32 model on the evaluation samples.', ['metric']);
    this.int8Score = gauge(METRIC.int8Score, 'Metric with every quantizable layer in INT8 on the analysis samples.', ['metric']);
    this.fp16Latency = gauge(METRIC.fp16Latency, 'Latency of the all-FP16 engine on the target, in ms.', ['target']);
    this.int8Latency = gauge(METRIC.int8Latency, 'Latency of the all-INT8 engine on the target, in ms.', ['target']);
    this.evaluations = counter(METRIC.evaluations, 'Policies scored: kind="full" on every evaluation sample, kind="screening" on the screening subset.', ['agent', 'kind']);
    this.feasible = counter(METRIC.feasible, 'Policies scored on the full data that meet the accuracy floor and the latency budget.', ['agent']);
    this.cacheHits = counter(METRIC.cacheHits, 'Policy requests answered from the cache of measured policies.', ['agent']);
    this.episodes = counter(METRIC.episodes, 'Episodes (policies proposed by the agent).', ['agent']);
    this.evaluationSeconds = new Histogram({ name: METRIC.evaluationSeconds, help: 'Wall time of measuring one new policy (screening and confirmation together).', labelNames: ['agent'], buckets: EVALUATION_BUCKETS, registers: r });
    this.bestScore = gauge(METRIC.bestScore, 'Score of the best feasible policy so far.', ['agent']);
    this.bestLatency = gauge(METRIC.bestLatency, 'Latency of the best feasible policy so far, in ms.', ['agent']);
    this.bestReward = gauge(METRIC.bestReward, 'Reward R = wAcc dAcc - wLat dLat of the best feasible policy so far.', ['agent']);
    this.bestInt8MacsShare = gauge(METRIC.bestInt8MacsShare, 'Share of the MACs that read int8 (int8 and mixed layers) in the best policy so far.', ['agent']);
    this.bestLayerPrecision = gauge(METRIC.bestLayerPrecision, 'The best policy\'s precision of each layer: 1 for the precision it has, 0 for the others.', ['agent', 'layer', 'op', 'index', 'precision']);
    this.lastScore = gauge(METRIC.lastScore, 'Score of the policy scored on the full data most recently.', ['agent']);
    this.lastLatency = gauge(METRIC.lastLatency, 'Latency of the policy scored on the full data most recently, in ms.', ['agent']);
    this.analysisSeconds = gauge(METRIC.analysisSeconds, 'Wall time of the analysis.');
    this.layerGauges = new Map(LAYER_GAUGES.map((g) => [g.name, gauge(g.name, g.help, ['layer', 'op', 'index'])]));
    collectDefaultMetrics({ register: this.registry });
  }

  /** Exposition text of every metric, as /metrics serves it. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  describeRun(run: { model: string; metric: string; target?: string }): void {
    this.runInfo.reset();
    this.runInfo.set({ command: this.command, model: run.model, metric: run.metric, target: run.target ?? '' }, 1);
  }

  progress(p: ProgressSnapshot): void {
    const phase = { phase: p.label };
    this.progressDone.set(phase, p.done);
    if (p.total !== undefined) this.progressTotal.set(phase, p.total);
    if (p.finished) this.progressRatio.set(phase, 1);
    else if (p.total !== undefined && p.total > 0) this.progressRatio.set(phase, Math.min(1, p.done / p.total));
    const eta = p.finished ? 0 : p.etaMs;
    if (eta !== undefined && Number.isFinite(eta)) this.progressEta.set(phase, eta / 1000);
  }

  /** One layer's results as the analysis measures them (AnalyzeProgress.measured); the rest come with analysis(). */
  analysisLayer(layer: LayerRef, measured: AnalyzeProgress['measured']): void {
    this.setLayer(layer, measured);
  }

  analysis(a: Analysis): void {
    this.fp32Score.set({ metric: a.metric.name }, a.fp32Score);
    this.int8Score.set({ metric: a.metric.name }, a.int8Score);
    this.analysisSeconds.set(a.seconds);
    for (const l of a.layers) this.setLayer(l, l);
  }

  private setLayer(layer: LayerRef, values: Partial<LayerAnalysis>): void {
    for (const g of LAYER_GAUGES) {
      const v = values[g.field];
      if (typeof v === 'number' && Number.isFinite(v)) this.layerGauges.get(g.name)!.set(layerLabels(layer), v);
    }
  }

  /**
   * Follows one agent's search: reference values now, then every measurement (chained after the hook the runner set).
   * Call it after the runner has set setup.hooks.onEvaluation.
   */
  watchSearch(setup: WatchedSearch, agent: string, target: string): void {
    const { env } = setup;
    this.describeRun({ model: setup.exp.loaded.path, metric: setup.exp.metric.name, target });
    this.fp32Score.set({ metric: setup.exp.metric.name }, env.fp32Score);
    this.fp16Latency.set({ target }, env.fp16LatencyMs);
    const int8 = env.latencyTable.uniformTotalMs.int8;
    if (int8 !== undefined) this.int8Latency.set({ target }, int8);
    if (setup.analysis) this.analysis(setup.analysis);
    // Counters start at 0 for this agent, so that rate() has a first point before anything happened.
    for (const kind of ['full', 'screening']) this.evaluations.inc({ agent, kind }, 0);
    for (const c of [this.feasible, this.cacheHits, this.episodes]) c.inc({ agent }, 0);
    const inner = setup.hooks.onEvaluation;
    setup.hooks.onEvaluation = (r) => {
      inner(r);
      this.evaluation(agent, r, env);
    };
  }

  evaluation(agent: string, r: EvaluationRecord, env: WatchedSearch['env']): void {
    const a = { agent };
    const stats = env.stats;
    const seen = this.reported.get(agent) ?? { evaluations: 0, subsetEvaluations: 0, cacheHits: 0, episodes: 0 };
    const grow = (c: Counter, labels: Record<string, string>, now: number, before: number) => { if (now > before) c.inc(labels, now - before); };
    grow(this.evaluations, { agent, kind: 'full' }, stats.evaluations, seen.evaluations);
    grow(this.evaluations, { agent, kind: 'screening' }, stats.subsetEvaluations, seen.subsetEvaluations);
    grow(this.cacheHits, a, stats.cacheHits, seen.cacheHits);
    grow(this.episodes, a, stats.episodes, seen.episodes);
    if (r.seconds > 0) this.evaluationSeconds.observe(a, r.seconds);
    if (r.confirmed) {
      this.lastScore.set(a, r.score);
      this.lastLatency.set(a, r.latencyMs);
      if (r.feasible) this.feasible.inc(a);
    }
    const best = env.best;
    if (best && best.key !== seen.bestKey) this.setBest(agent, best, env.layers);
    this.reported.set(agent, { evaluations: stats.evaluations, subsetEvaluations: stats.subsetEvaluations, cacheHits: stats.cacheHits, episodes: stats.episodes, bestKey: best?.key ?? seen.bestKey });
  }

  private setBest(agent: string, best: EvaluationRecord, layers: WatchedSearch['env']['layers']): void {
    const a = { agent };
    this.bestScore.set(a, best.score);
    this.bestLatency.set(a, best.latencyMs);
    this.bestReward.set(a, best.reward);
    const total = layers.reduce((s, l) => s + l.macs, 0);
    const int8 = layers.filter((l) => readsInt8(best.policy[l.name]?.precision ?? 'fp32')).reduce((s, l) => s + l.macs, 0);
    this.bestInt8MacsShare.set(a, total > 0 ? int8 / total : 0);
    for (const l of layers) {
      const precision = best.policy[l.name]?.precision ?? 'fp32';
      for (const p of PRECISIONS) this.bestLayerPrecision.set({ agent, ...layerLabels(l), precision: p }, p === precision ? 1 : 0);
    }
  }
}

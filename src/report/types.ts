/**
 * What a report is drawn from. The search runner and the analyzer map their results onto these shapes;
 * the report module knows nothing else of the pipeline.
 */
import type { Precision } from '../policy.ts';

/** One quantizable layer's sensitivity features, as the analyzer measures them. */
export interface AnalysisLayer {
  name: string;
  op: string;
  macs: number;
  /** Relative metric drop with only this layer in INT8 (everything else FP16/FP32). */
  int8Drop: number;
  /** Relative metric drop with every layer in INT8 except this one, against all-INT8. */
  leaveOneOutDrop: number;
  /** Mean squared error of this layer's output, quantized vs float. */
  mse: number;
  /** KL divergence between the float and quantized activation histograms. */
  kl: number;
  /** Overlap (0..1) of the float and quantized activation histograms; low = sensitive. */
  histogramOverlap: number;
  /** Fraction of activation values beyond the calibrated amax. */
  outlierFraction: number;
  /** Fraction of the symmetric int8 range that is never used (e.g. ReLU6 outputs waste the negative half). */
  rangeWaste?: number;
}

export interface AnalysisInput {
  metricName: string;
  /** Quantizable layers in topological order. */
  layers: AnalysisLayer[];
  /** Optional header facts for the standalone analyze report. */
  model?: { path: string; sha256?: string };
  fp32Score?: number;
}

/** One evaluated policy, as history.jsonl records it. */
export interface HistoryPoint {
  /** 1-based count of evaluations so far. */
  evaluation: number;
  episode: number;
  score: number;
  latencyMs: number;
  reward: number;
  feasible: boolean;
  agent: string;
  /** Seconds since the search started. */
  seconds: number;
}

export interface BaselinePoint {
  agent: string;
  score: number;
  latencyMs: number;
  reward: number;
  feasible: boolean;
}

/** A score on held-out samples with its 95 % interval, FP32 on the same samples, and the relative drop. */
export interface HeldOutFigures {
  score: number;
  fp32Score: number;
  drop: number;
  samples: number;
  ci95: [number, number];
  dropCi95: [number, number];
  withinFloor: boolean;
}

export interface ReportLayer {
  name: string;
  op: string;
  macs: number;
  /** The best policy's precision for this layer. */
  precision: Precision;
}

export interface SearchReportInput {
  title: string;
  model: { path: string; sha256: string };
  /** Latency target, e.g. "t4" or "ort-cpu". */
  target: string;
  agent: string;
  seed: number;
  metricName?: string;
  /** False for metrics where lower is better (mse); the Pareto front and floor follow it. Default true. */
  higherIsBetter?: boolean;
  budgetMs?: number;
  /** Accuracy floor as a relative drop from FP32 (0.01 = 1 %). */
  maxDrop?: number;
  fp32Score: number;
  fp16LatencyMs: number;
  int8LatencyMs?: number;
  /** Quantizable layers in topological order, with the best policy's precisions. */
  layers: ReportLayer[];
  /** The best policy on the search split; `ci95` its bootstrap interval, `samples` the split's size. */
  best: { score: number; latencyMs: number; reward: number; ci95?: [number, number]; samples?: number } | null;
  /** The best policy on the held-out test samples (absent when there were none), FP32 on the same samples. */
  test?: HeldOutFigures;
  history: HistoryPoint[];
  baselines: BaselinePoint[];
  sensitivity?: AnalysisInput;
  /** The ladder of policies in pareto/ (pareto/index.json), fastest first. */
  ladder?: LadderEntry[];
  /** How fast the search measured: jobs (evaluations and screening runs) over the search's wall time. */
  throughput?: Throughput;
}

/** The evaluation throughput of a search, for report.html. */
export interface Throughput {
  evaluations: number;
  screeningRuns: number;
  /** Wall time of the agent's search, seconds. */
  wallSeconds: number;
  /** The workers' own seconds on the jobs (summed over workers). */
  workerSeconds: number;
  /** Policies proposed per round (--proposals). */
  proposals: number;
  /** Where the jobs ran, e.g. `4 worker threads`, `this process`. */
  workers: string;
}

/** One step of pareto/index.json, as the report links it. */
export interface LadderEntry {
  /** Folder of the step, relative to pareto/. */
  dir: string;
  score: number;
  latencyMs: number;
  int8MacsShare: number;
  feasible: boolean;
  chosen: boolean;
  allFp16: boolean;
}

/** What a render wrote, for the caller to log. */
export interface ReportFiles {
  html: string;
  svg: string[];
  png: string[];
  /** Why no PNG was written, when none was. */
  pngSkipped?: string;
}

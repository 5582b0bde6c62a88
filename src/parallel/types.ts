/**
 * Evaluations somewhere else: the contract between the search (which decides what to score, in a fixed order) and
 * the workers that score (worker threads of this process, or `trtmix worker` processes on other machines reached
 * through a BullMQ queue). A job is pure: the score of one policy on the search samples (or on the screening
 * subset) depends on nothing but the policy and the setup every worker rebuilt, so jobs may run in any order, on
 * any worker, more than once; the search consumes their results in its own order, which keeps it deterministic.
 */
import type { LayerPolicy } from '../policy.ts';
import type { TensorStats } from '../quant/calibrate.ts';
import type { TensorRange } from '../quant/autocast.ts';
import type { ExperimentArgs } from '../cli/experiment.ts';

/** One policy to score. */
export interface ScoreJob {
  policy: LayerPolicy;
  /** Score on the screening subset (the first `screenSamples` search samples) instead of all of them. */
  subset: boolean;
}

export interface ScoreOutcome {
  score: number;
  /** With --confidence, on a full evaluation: the pessimistic end of the paired drop interval. */
  dropBound?: number;
  /** Wall time the worker spent on the job (graph rewrite, session build, inference, metric). */
  seconds: number;
  /** Who scored it, e.g. `thread 2` or `host-a:4711`. */
  worker: string;
}

/**
 * Everything a worker needs to rebuild the producer's evaluator exactly: the experiment's options (paths resolved
 * to absolute ones), the calibration statistics (shipped, so that every worker quantizes with the producer's amax),
 * and fingerprints a worker checks before it scores anything.
 */
export interface WorkerSetup {
  /** trtmix's version (package.json); a worker of another version refuses the setup. */
  version: string;
  /** The options prepareExperiment reads, with model/data/labels/test paths absolute. */
  args: ExperimentArgs;
  /** sha256 of the model file (and of the data and labels files), as the producer read them. */
  modelSha256: string;
  dataSha256?: string;
  labelsSha256?: string;
  /** The producer's calibration: the worker skips its own. */
  calibration: { stats: Record<string, TensorStats>; samples: number; ranges: Record<string, TensorRange> };
  /** Samples of a screening run (RunEvaluator.screenSamples). */
  screenSamples: number;
  /** --confidence: full evaluations also return the drop bound at this level. */
  confidence?: number;
  /** The producer's FP32 score on the search samples: a worker whose own differs refuses (another onnxruntime, other data). */
  fp32Score: number;
}

/** Where the search sends its jobs. */
export interface EvaluationBackend {
  /** How many jobs may usefully run at once (worker threads, or queue workers seen). */
  readonly workers: number;
  /** For the progress line and report.html, e.g. `4 worker threads` or `queue redis://10.0.0.5:6379`. */
  readonly description: string;
  score(job: ScoreJob): Promise<ScoreOutcome>;
  /** Stops the workers (threads) or the producer's connections (queue); pending jobs are abandoned. */
  close(): Promise<void>;
}

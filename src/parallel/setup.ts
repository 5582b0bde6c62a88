/**
 * The two ends of a WorkerSetup: the search makes one from its experiment (workerSetup), a worker rebuilds the same
 * evaluator from it (openSetup) and scores jobs exactly as the search would in process. The worker reads the model and
 * data from the paths the setup names and checks their sha256; the calibration travels in the setup, so a worker
 * never calibrates and quantizes with the producer's amax.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { PPOCR_MODELS } from '../examples.ts';
import { isPluginPath } from '../quant/metrics.ts';
import { prepareExperiment, type Experiment, type ExperimentArgs, type ExperimentUi } from '../cli/experiment.ts';
import type { ScoreJob, ScoreOutcome, WorkerSetup } from './types.ts';

/** trtmix's version, from package.json. */
export const TRTMIX_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;

/** The ExperimentArgs keys that decide an experiment; the rest of a command's options (--out, --agent ...) stay home. */
const EXPERIMENT_KEYS = [
  'model', 'input-shape', 'data', 'labels', 'metric', 'calib-samples', 'eval-samples', 'test-samples', 'test-data', 'test-labels',
  'calibration', 'percentile', 'iou-threshold', 'batch-size', 'seed', 'other-ops', 'bias-correction', 'bias-passes',
] as const satisfies ReadonlyArray<keyof ExperimentArgs>;
const PATH_KEYS = ['model', 'data', 'labels', 'test-data', 'test-labels'] as const;

function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The options of an experiment with every path absolute (a worker runs in another folder, or on another machine). */
export function portableArgs(args: ExperimentArgs): ExperimentArgs {
  const out: Record<string, unknown> = {};
  for (const k of EXPERIMENT_KEYS) if (args[k] !== undefined) out[k] = args[k];
  for (const k of PATH_KEYS) if (typeof out[k] === 'string') out[k] = resolve(out[k] as string);
  if (typeof out.metric === 'string' && isPluginPath(out.metric)) out.metric = resolve(out.metric);
  return out as ExperimentArgs;
}

/** The producer's side: what every worker needs to score like this experiment's evaluator. */
export function workerSetup(exp: Experiment, o: { screenSamples: number; confidence?: number }): WorkerSetup {
  const args = portableArgs(exp.args);
  return {
    version: TRTMIX_VERSION,
    args,
    modelSha256: fileSha256(args.model ?? PPOCR_MODELS.rec.path),
    ...(args.data ? { dataSha256: fileSha256(args.data) } : {}),
    ...(args.labels ? { labelsSha256: fileSha256(args.labels) } : {}),
    calibration: { stats: exp.calibration.stats, samples: exp.calibration.samples, ranges: exp.ranges },
    screenSamples: o.screenSamples,
    ...(o.confidence !== undefined ? { confidence: o.confidence } : {}),
    fp32Score: exp.evaluator.fp32Score,
  };
}

/**
 * A setup as text (for Redis): JSON, with the histograms' Float64Arrays and non-finite numbers kept exactly, so that
 * decodeSetup(encodeSetup(s)) quantizes like s. The same setup always gives the same text (its id is the text's hash).
 */
export function encodeSetup(setup: WorkerSetup): string {
  return JSON.stringify(setup, function (this: Record<string, unknown>, key, value) {
    const raw = this[key];
    if (raw instanceof Float64Array) return { $f64: Array.from(raw, (x) => (Number.isFinite(x) ? x : String(x))) };
    if (typeof value === 'number' && !Number.isFinite(value)) return { $num: String(value) };
    return value;
  });
}

export function decodeSetup(text: string): WorkerSetup {
  return JSON.parse(text, (_key, value) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      if (Array.isArray(value.$f64)) return Float64Array.from(value.$f64 as Array<number | string>, Number);
      if (typeof value.$num === 'string') return Number(value.$num);
    }
    return value;
  }) as WorkerSetup;
}

/** A setup's content hash: its id in the queue, and the prefix of its jobs' ids. */
export function setupId(setup: WorkerSetup): string {
  return createHash('sha256').update(encodeSetup(setup)).digest('hex');
}

export interface OpenedSetup {
  exp: Experiment;
  /** Scores one job exactly as the search's in-process evaluator does. */
  score(job: ScoreJob): Promise<ScoreOutcome>;
}

const short = (sha: string) => sha.slice(0, 12);

/** Refuses a setup this worker would score differently: another version, other files behind the same paths. */
export function checkSetup(setup: WorkerSetup): void {
  if (setup.version !== TRTMIX_VERSION) {
    throw new UserError(`this worker runs trtmix ${TRTMIX_VERSION} but the search runs trtmix ${setup.version}; install the same trtmix version on every worker and the search's machine`);
  }
  const files: Array<[string, string | undefined, string | undefined]> = [
    ['model', setup.args.model ?? PPOCR_MODELS.rec.path, setup.modelSha256],
    ['data', setup.args.data, setup.dataSha256],
    ['labels', setup.args.labels, setup.labelsSha256],
  ];
  for (const [what, path, sha] of files) {
    if (path === undefined || sha === undefined) continue;
    if (!existsSync(path)) throw new UserError(`the search's ${what} file ${path} does not exist on this worker; workers read the model and data at the search's paths: share that folder (same path) with every worker`);
    const here = fileSha256(path);
    if (here !== sha) {
      throw new UserError(`the ${what} file ${path} on this worker (sha256 ${short(here)}) is not the search's (sha256 ${short(sha)}); give every worker the same files at the same path`);
    }
  }
}

/** The worker's side: checks the setup, rebuilds the experiment with the producer's calibration, and scores. */
export async function openSetup(setup: WorkerSetup, opts: { worker: string; ui?: ExperimentUi }): Promise<OpenedSetup> {
  checkSetup(setup);
  const exp = await prepareExperiment(setup.args, opts.ui ?? { quiet: true, log: () => {} }, { calibration: setup.calibration });
  const fp32 = exp.evaluator.fp32Score;
  if (!Object.is(fp32, setup.fp32Score)) {
    throw new UserError(`this worker's FP32 score ${fp32} differs from the search's ${setup.fp32Score} on the same files; run workers with the same trtmix install (onnxruntime) as the search`);
  }
  const score = async (job: ScoreJob): Promise<ScoreOutcome> => {
    const t0 = performance.now();
    let out: { score: number; dropBound?: number };
    // The same three cases as the search's RunEvaluator (src/search/run.ts).
    if (job.subset) out = { score: (await exp.evaluator.evaluate(job.policy, { samples: setup.screenSamples })).score };
    else if (setup.confidence === undefined) out = { score: (await exp.evaluator.evaluate(job.policy)).score };
    else {
      const f = await exp.evaluator.figures(job.policy, { confidence: setup.confidence });
      out = { score: f.score, dropBound: f.dropBound };
    }
    return { ...out, seconds: (performance.now() - t0) / 1000, worker: opts.worker };
  };
  return { exp, score };
}

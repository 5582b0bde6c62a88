/**
 * What the precision environment needs from its neighbours, stated structurally so that any evaluator
 * (the onnxruntime simulator in src/quant/, a toy model in envs/toy/) and any latency source plug in.
 */
import type { CalibrationChoice, LayerPolicy, Precision } from '../src/policy.ts';

/** Scores a policy on the user's data: the expensive call the whole search is organised around. */
export interface PolicyEvaluator {
  /**
   * Score of the model under `policy`. With `subset: true`, a cheaper score on a fixed subset of the
   * data, used to screen candidates before confirming them on the full set. `dropBound`, when given for a full
   * evaluation, is the relative drop the accuracy floor is checked against instead of the point estimate (the
   * pessimistic end of a confidence interval, `--confidence`).
   */
  evaluate(policy: LayerPolicy, opts?: { subset?: boolean }): Promise<{ score: number; dropBound?: number }>;
  /** Score of the FP32 model on the full data. */
  readonly fp32Score: number;
  /** Score of the FP32 model on the subset; when absent the environment measures it once. */
  readonly fp32SubsetScore?: number;
  readonly higherIsBetter: boolean;
}

/**
 * One choice the agent can make for a layer. Calibration is part of the option so that the action set
 * can grow to "int8 with percentile amax" etc. without changing the encoding.
 */
export interface ActionOption {
  precision: Precision;
  calibration?: CalibrationChoice;
}

/** Short label of an action option, e.g. `int8`, `mixed@percentile99.99`. */
export function actionLabel(o: ActionOption): string {
  return o.calibration ? `${o.precision}@${o.calibration.method}${o.calibration.percentile ?? ''}` : o.precision;
}

/**
 * Per-layer sensitivity features from the analyzer (e.g. int8Drop, leaveOneOutDrop, outputMse, kl,
 * histogramOverlap, rangeWaste), aligned with the layer list. Unnamed arrays are accepted and named
 * f0, f1, ...
 */
export type LayerSensitivity = Readonly<Record<string, number>> | readonly number[];

export function sensitivityRecord(s: LayerSensitivity | undefined): Record<string, number> {
  if (!s) return {};
  if (Array.isArray(s)) return Object.fromEntries(s.map((v, i) => [`f${i}`, v]));
  return { ...(s as Readonly<Record<string, number>>) };
}

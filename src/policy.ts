/**
 * Precisions and policies: the vocabulary every stage of the pipeline shares.
 * A policy assigns each quantizable layer (by TensorRT layer name) a precision and,
 * for int8/mixed layers, the calibration method used for the activation amax.
 */
import type { BiasCorrectionRecord } from './quant/bias-correction.ts';

/** What a quantizable layer runs in (DESIGN.md, "Actions"). */
export type Precision = 'int8' | 'mixed' | 'fp16' | 'fp32';
export const PRECISIONS: readonly Precision[] = ['int8', 'mixed', 'fp16', 'fp32'];
/** The search's default action set; fp32 is protection only. */
export const DEFAULT_ACTIONS: readonly Precision[] = ['int8', 'mixed', 'fp16'];

export type CalibrationMethod = 'max' | 'percentile' | 'entropy' | 'mse';

/** How one activation tensor's amax is chosen. `percentile` carries its percentile (e.g. 99.99). */
export interface CalibrationChoice {
  method: CalibrationMethod;
  percentile?: number;
}

/** One layer's decision. */
export interface LayerDecision {
  precision: Precision;
  /** Calibration for this layer's input activation (int8 / mixed only). Default: the policy's. */
  calibration?: CalibrationChoice;
}

/** The in-memory policy the simulator, latency models and exports consume: layer name -> decision. */
export type LayerPolicy = Record<string, LayerDecision>;

/** How the ops outside the quantizable layers compute (`--other-ops`). */
export type OtherOpsPrecision = 'fp16' | 'fp32';

/** policy.json `otherOps`: their precision and, under fp16, the ops kept in FP32 (TensorRT layer name -> why). */
export interface OtherOps {
  precision: OtherOpsPrecision;
  fp32: Readonly<Record<string, string>>;
}

/** policy.json, version 1 (DESIGN.md contract). */
export interface PolicyFile {
  version: 1;
  model: { path: string; sha256: string };
  layers: Array<{ name: string; op: string; precision: Precision; macs: number; calibration?: CalibrationChoice }>;
  calibration: { method: string; amax: Record<string, number> };
  /** Absent in policies written before --other-ops: everything outside the layers ran in FP32. */
  otherOps?: OtherOps;
  /** Bias correction (--bias-correction): the per-channel deltas the simulation and the exports add to biases. */
  biasCorrection?: BiasCorrectionRecord;
  metrics: { score: number; fp32Score: number; latencyMs: number; fp16LatencyMs: number; target: string; [k: string]: unknown };
  search: { agent: string; seed: number; evaluations: number; seconds: number; [k: string]: unknown };
}

/** A policy with the same precision everywhere. */
export function uniformPolicy(layerNames: readonly string[], precision: Precision, calibration?: CalibrationChoice): LayerPolicy {
  const policy: LayerPolicy = {};
  for (const name of layerNames) policy[name] = calibration ? { precision, calibration } : { precision };
  return policy;
}

/** Stable text key of a policy, independent of object key order: used for caches and hashes. */
export function policyKey(layerNames: readonly string[], policy: LayerPolicy): string {
  return layerNames
    .map((name) => {
      const d = policy[name];
      if (!d) return `${name}=fp32`;
      const c = d.calibration;
      const cal = d.precision === 'int8' || d.precision === 'mixed' ? (c ? `@${c.method}${c.percentile ?? ''}` : '') : '';
      return `${name}=${d.precision}${cal}`;
    })
    .join('|');
}

/** True where the layer reads int8 activations (int8 and mixed). */
export function readsInt8(p: Precision): boolean {
  return p === 'int8' || p === 'mixed';
}

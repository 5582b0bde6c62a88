/**
 * precision.json: the plan as data, for TensorRT builders other than the ones trtmix writes for (and the input
 * build_engine.py embeds). Layers are keyed by TensorRT layer name in topological order.
 */
import type { PlanEntry, PrecisionPlan, TrtType } from './plan.ts';

export interface ModelRef {
  path: string;
  sha256: string;
}

export interface PrecisionDocument {
  version: 1;
  /** TensorRT generations and quantization mode the document is meant for. */
  tensorrt: string;
  model: ModelRef;
  layers: Record<string, {
    precision?: TrtType;
    outputType?: TrtType;
    outputTensor: string;
    op: string;
    role: PlanEntry['role'];
    /** The policy layer (quantizable node) this TensorRT layer belongs to, and its policy precision. */
    layer: string;
    policy: PlanEntry['policy'];
  }>;
  /** Calibrated amax per ONNX tensor that int8 layers read or write; the int8 scale is amax / 127. */
  amax: Record<string, number>;
  calibration: { method: string };
  /** Input shapes the policy was evaluated with (batch included), for optimization profiles. */
  inputShapes?: Record<string, number[]>;
}

export function precisionDocument(
  plan: PrecisionPlan,
  model: ModelRef,
  calibrationMethod: string,
  inputShapes?: Record<string, number[]>,
): PrecisionDocument {
  const layers: PrecisionDocument['layers'] = {};
  for (const e of plan.entries) {
    layers[e.name] = {
      ...(e.precision ? { precision: e.precision } : {}),
      ...(e.outputType ? { outputType: e.outputType } : {}),
      outputTensor: e.outputTensor,
      op: e.opType,
      role: e.role,
      layer: e.layer,
      policy: e.policy,
    };
  }
  return {
    version: 1,
    tensorrt: '8.4-10.x, implicit quantization (per-layer precision constraints + per-tensor dynamic ranges)',
    model,
    layers,
    amax: Object.fromEntries(plan.amax),
    calibration: { method: calibrationMethod },
    ...(inputShapes ? { inputShapes } : {}),
  };
}

export function precisionJson(doc: PrecisionDocument): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

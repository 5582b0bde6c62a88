/**
 * Applying a policy to the model: the graph TensorRT would build from model.qdq.onnx, rendered in float32 for
 * onnxruntime. The Q/DQ placement and the precision of every op come from src/quant/placement.ts — the same
 * decision model.qdq.onnx renders (src/export/qdq-onnx.ts) — and src/quant/rewrite.ts writes it in its `simulate`
 * form: INT8 as QuantizeLinear/DequantizeLinear (int8, zero point 0, per-channel int8 weights), FP16 as rounding to
 * float16 wherever the exported graph holds a float16 value. Per DESIGN.md's action table:
 *   int8   Q/DQ on its activation inputs, int8 weights; its result is INT8 for the readers that quantize it
 *   mixed  the same inputs and weights; its result rounded to float16
 *   fp16   the layer and its fused ops in float16
 *   fp32   untouched
 * and, with `otherOps` fp16, every other op in float16 except those AutoCast keeps in FP32.
 * One amax per tensor, as in TensorRT (a tensor has one dynamic range): a layer's calibration choice sets the amax
 * of its input; an int8 layer's output takes the choice of the layer reading it, else its own.
 */
import type { ModelProto } from '../onnx/model.ts';
import type { Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import type { CalibrationChoice, LayerPolicy } from '../policy.ts';
import type { CalibrationTable } from './calibrate.ts';
import { INT8_MAX, MIN_SCALE } from './int8.ts';
import { placePolicy, type OtherOps, type Placement } from './placement.ts';
import { rewriteGraph } from './rewrite.ts';
import type { BiasCorrections } from './bias-correction.ts';

export interface SimulationBase {
  /** The model at opset >= 13 (see src/onnx/opset.ts). */
  model: ModelProto;
  graph: Graph;
  layers: Layer[];
  calibration: CalibrationTable;
  defaultCalibration: CalibrationChoice;
  /**
   * TensorRT quantizes weights per output channel; per-tensor weights exist only as an option for other targets
   * (and to reproduce quantizers that use them, e.g. onnxruntime's default `per_channel=False`).
   */
  weightGranularity?: 'per-channel' | 'per-tensor';
  /** Precision of the ops outside the quantizable layers (`--other-ops`); absent: all FP32. */
  otherOps?: OtherOps;
}

/** The placement of a policy on the simulation's model, with amax from its calibration. */
export function placementOf(base: SimulationBase, policy: LayerPolicy): Placement {
  const { calibration } = base;
  return placePolicy(
    { graph: base.graph, layers: base.layers, otherOps: base.otherOps, defaultCalibration: base.defaultCalibration },
    policy,
    // A tensor that is 0 on every calibration sample (a zero-initialised head) is simulated with the smallest scale;
    // its amax says so, so that policy.json, the exports and replay carry the positive range the simulation used.
    (tensor, choice, bound) => (calibration.has(tensor) ? calibration.amax(tensor, choice ?? base.defaultCalibration, bound) || MIN_SCALE * INT8_MAX : undefined),
  );
}

/**
 * The amax of every tensor the policy quantizes (and of int8 layers' results), as policy.json records them; the
 * export and replay use exactly these values.
 */
export function resolveAmax(base: SimulationBase, policy: LayerPolicy): Record<string, number> {
  return placementOf(base, policy).amax;
}

export interface SimulateOptions {
  /** Extra graph outputs (e.g. a layer's output, for the analyzer). Names refer to the simulated tensors. */
  extraOutputs?: string[];
  /** Bias corrections (src/quant/bias-correction.ts) the simulated model carries. */
  bias?: BiasCorrections;
}

/** Builds the simulated model of a policy. The base model is not modified. */
export function buildSimulatedModel(base: SimulationBase, policy: LayerPolicy, opts: SimulateOptions = {}): ModelProto {
  const placement = placementOf(base, policy);
  const extra = opts.extraOutputs ?? [];
  const { nodes, initializers } = rewriteGraph(base.graph, base.layers, placement, { mode: 'simulate', weightGranularity: base.weightGranularity, keep: extra, bias: opts.bias });
  const outputs = [...(base.model.graph!.output ?? [])];
  for (const name of extra) outputs.push({ name, type: { tensorType: { elemType: 1 } } });
  return {
    ...base.model,
    graph: { ...base.model.graph!, node: nodes, initializer: [...(base.model.graph!.initializer ?? []), ...initializers], output: outputs },
  };
}

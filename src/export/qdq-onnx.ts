/**
 * model.qdq.onnx: the policy as an explicitly quantized, explicitly typed ONNX model, the only form TensorRT 11
 * builds (`trtexec --onnx=model.qdq.onnx`) and TensorRT 10's strongly typed form (`--stronglyTyped`).
 *
 * It is the simulated graph: src/quant/placement.ts decides where Q/DQ go and what every op computes in, for the
 * simulation and for this export alike, and src/quant/rewrite.ts writes it here in its `export` form — float16
 * tensors and Casts where the simulation rounds to float16. Zero points are int8 zeros, scales amax / 127 with the
 * amax policy.json records, weights quantized per output channel exactly as the simulator does; Q/DQ are float32
 * (opset 13), with a Cast to float32 before a QuantizeLinear whose tensor is float16. Without FP16 ops the model
 * computes the simulation's values bit for bit; with them, the same values up to float16 rounding inside ops.
 */
import type { ModelProto, ValueInfoProto } from '../onnx/model.ts';
import { allInputs, type Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { opsetVersion } from '../onnx/model.ts';
import { QDQ_MIN_OPSET } from '../onnx/opset.ts';
import type { PolicyFile } from '../policy.ts';
import { int8Exclusion, type Placement } from '../quant/placement.ts';
import { rewriteGraph } from '../quant/rewrite.ts';
import { recordedPlacement } from './plan.ts';
import { correctionsOf } from '../quant/bias-correction.ts';

export interface QdqResult {
  model: ModelProto;
  placement: Placement;
  warnings: string[];
}

export type QdqPolicy = Pick<PolicyFile, 'layers' | 'calibration' | 'otherOps' | 'biasCorrection'>;

/** Warnings for int8 on layers TensorRT does not run faster in INT8 (the search never chooses that). */
export function exclusionWarnings(graph: Graph, layers: readonly Layer[], placement: Placement): string[] {
  const slow = layers.filter((l) => (placement.precision.get(l.name) === 'int8' || placement.precision.get(l.name) === 'mixed') && int8Exclusion(l, graph));
  if (slow.length === 0) return [];
  return [`${slow.length} layer(s) get int8 although TensorRT has no fast INT8 kernel for them (${slow.slice(0, 3).map((l) => `${l.name}: ${int8Exclusion(l, graph)}`).join('; ')}${slow.length > 3 ? '; ...' : ''}); their Q/DQ make the engine slower, not faster`];
}

/**
 * Rewrites `model` (default opset >= 13, the model `graph` and `layers` were discovered on) for the policy.
 * The input model is not modified.
 */
export function buildQdqModel(model: ModelProto, graph: Graph, layers: readonly Layer[], policy: QdqPolicy, placed?: Placement): QdqResult {
  if (opsetVersion(model) < QDQ_MIN_OPSET) throw new Error(`buildQdqModel needs opset >= ${QDQ_MIN_OPSET} (upgradeOpset first)`);
  const warnings: string[] = [];
  const placement = placed ?? recordedPlacement(graph, layers, policy, warnings);
  warnings.push(...exclusionWarnings(graph, layers, placement));
  const { nodes, initializers: added, retyped } = rewriteGraph(graph, layers, placement, { mode: 'export', bias: correctionsOf(policy.biasCorrection) });
  const g = model.graph!;
  const outputs = g.output ?? [];
  // Values an If/Loop body reads by name from the outer graph count as used.
  const used = new Set(nodes.flatMap(allInputs));
  for (const o of outputs) used.add(o.name ?? '');
  const initializer = [...(g.initializer ?? []), ...added].filter((t) => used.has(t.name ?? ''));
  const keptInit = new Set(initializer.map((t) => t.name));
  const keepInfo = (v: ValueInfoProto) => !retyped.has(v.name ?? '');
  return {
    model: {
      ...model,
      producerName: 'trtmix',
      graph: {
        ...g,
        node: nodes,
        initializer,
        // IR < 4 lists initializers among the inputs; those replaced by quantized copies go with them.
        input: (g.input ?? []).filter((v) => !graph.initializers.has(v.name ?? '') || keptInit.has(v.name)),
        valueInfo: (g.valueInfo ?? []).filter(keepInfo),
      },
    },
    placement,
    warnings,
  };
}

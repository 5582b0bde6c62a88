/**
 * The precision plan: what every export says about a policy, computed once so that all of them name the same
 * layers with the same types. Its core is the placement (src/quant/placement.ts) that the simulation and
 * model.qdq.onnx share; the TensorRT 8.4-10.x forms (trtexec flags, precision.json, build_engine.py, Polygraphy
 * args, calibration cache) are that placement said with per-layer precision constraints and dynamic ranges.
 *
 * Fused ops. A quantizable layer's node is followed by the pointwise nodes TensorRT fuses into it (BatchNorm,
 * scale/bias, the activation, decomposed ones such as x * clip(x + 3, 0, 6) / 6): `Layer.output` is the node's own
 * output, `Layer.fusedOutput` what the fused group hands to the next layer. Each of those ONNX nodes is a separate
 * TensorRT layer in the parsed network, and with precisionConstraints=obey an unlisted layer runs in whatever
 * precision and output type the builder finds fastest. Setting only the Conv's output type would constrain a
 * tensor the fusion removes, while the tensor the next layer actually reads (the last fused node's output) stays
 * free: an int8 policy could hand fp32 onward, an fp32-protected layer could see its activation run in fp16.
 * So the plan lists the fused nodes too:
 *   - fp16 / fp32 layers: every fused node gets precision and output type fp16 / fp32 (no ranges needed).
 *   - int8 / mixed layers: the node writing the kernel's result gets the type the placement stores it in: int8
 *     where every reader quantizes it, else the float type its readers compute in (always fp16 for mixed). Where a
 *     residual Add joins the kernel, that Add (and the activation after it) writes the result, and the layer's own
 *     output is left to the builder, which fuses Conv+Add. The fused nodes' compute precision and inner outputs are
 *     left to the builder: it folds them into the int8 kernel's epilogue (the simulation runs them in fp32 too).
 *   - other ops the placement runs in FP32 (AutoCast's exceptions, or everything under --other-ops fp32) get
 *     precision and output type fp32; the others are left to the builder, which runs them in FP16 (--fp16).
 * Dynamic ranges: every tensor the placement quantizes, and int8 layers' own outputs where they write int8.
 */
import type { NodeProto } from '../onnx/model.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { trtLayerName, type Graph } from '../onnx/graph.ts';
import type { CalibrationChoice, LayerPolicy, PolicyFile, Precision } from '../policy.ts';
import { readsInt8 } from '../policy.ts';
import { UserError } from '../errors.ts';
import { ALL_FP32_OTHER_OPS, fusedNodes, placePolicy, type Placement } from '../quant/placement.ts';
import { DATA_MOVEMENT_OPS } from '../quant/op-types.ts';
import { parseChoiceLabel } from '../quant/calibrate.ts';

/** The data types these exports emit (trtexec spelling). */
export type TrtType = 'fp32' | 'fp16' | 'int8';

/** DESIGN.md's action table: the quantizable node's compute precision and output type. */
export const ACTION_TYPES: Readonly<Record<Precision, { precision: TrtType; output: TrtType }>> = {
  int8: { precision: 'int8', output: 'int8' },
  mixed: { precision: 'int8', output: 'fp16' },
  fp16: { precision: 'fp16', output: 'fp16' },
  fp32: { precision: 'fp32', output: 'fp32' },
};

/** What the plan needs from a discovered layer. */
export type PlanLayer = Pick<Layer, 'name' | 'op' | 'input' | 'weight' | 'weightIsConstant' | 'output' | 'fusedOutput' | 'activation'>;

/** The part of the model graph the plan reads: nodes in topological order. */
export type PlanGraph = Graph;

export interface PlanEntry {
  /** TensorRT layer name (ONNX node name, or `node_of_<first output>`). */
  name: string;
  opType: string;
  /** `layer`: the quantizable node; `fused`: a node TensorRT fuses into it; `other`: an op the placement keeps in FP32. */
  role: 'layer' | 'fused' | 'other';
  /** The policy layer this entry belongs to (empty for `other`). */
  layer: string;
  policy: Precision;
  /** Compute precision to set (layerPrecisions); absent = left to the builder. */
  precision?: TrtType;
  /** Type of the entry's output tensor (layerOutputTypes); absent = left to the builder. */
  outputType?: TrtType;
  /** The ONNX tensor this TensorRT layer writes (where build_engine.py sets the output type). */
  outputTensor: string;
}

export interface PrecisionPlan {
  /** Topological order; quantizable nodes and their fused nodes. */
  entries: PlanEntry[];
  /** amax of every tensor an int8/mixed layer reads or writes as int8, in first-use order. */
  amax: Map<string, number>;
  /** Tensor -> the policy layer that made it need a range (for messages). */
  amaxOwner: Map<string, string>;
  /** Every TensorRT layer name the ONNX parser will create from a node (all nodes, Constant ones aside). */
  networkLayerNames: string[];
  /** Things a user should know about (printed by the CLI on stderr); the plan is still usable. */
  warnings: string[];
  /** Policy precision per layer name, including layers the policy left out (fp32). */
  layerPrecisions: Map<string, Precision>;
  calibration: Map<string, CalibrationChoice | undefined>;
  /** The placement every format renders (model.qdq.onnx directly). */
  placement: Placement;
}

/** Activations whose output is max(x, 0) clipped above: quantizing the pre-activation tensor with the post-activation
 * amax gives the same values after the activation, so that amax is exact for the Conv's own int8 output. */
const RELU_LIKE = new Set(['relu', 'relu6', 'clip']);

export { fusedNodes };

function layerNodeOf(graph: PlanGraph, layer: PlanLayer): NodeProto {
  const node = graph.nodes.find((n) => (n.output ?? [])[0] === layer.output && trtLayerName(n) === layer.name);
  if (!node) throw new Error(`layer ${layer.name} (output ${layer.output}) has no node in the graph`);
  return node;
}

/** Checks the policy against the model's layers and returns each layer's precision; unknown names are a UserError. */
export function policyPrecisions(policy: Pick<PolicyFile, 'layers'>, layers: readonly PlanLayer[], warnings: string[]): {
  precisions: Map<string, Precision>;
  calibration: Map<string, CalibrationChoice | undefined>;
} {
  const known = new Set(layers.map((l) => l.name));
  const unknown = policy.layers.filter((l) => !known.has(l.name)).map((l) => l.name);
  if (unknown.length > 0) {
    throw new UserError(
      `the policy names ${unknown.length} layer(s) the model does not have (${unknown.slice(0, 3).join(', ')}${unknown.length > 3 ? ', ...' : ''}); pass the model the policy was searched on`,
    );
  }
  const byName = new Map(policy.layers.map((l) => [l.name, l]));
  const precisions = new Map<string, Precision>();
  const calibration = new Map<string, CalibrationChoice | undefined>();
  const missing: string[] = [];
  for (const layer of layers) {
    const entry = byName.get(layer.name);
    if (!entry) missing.push(layer.name);
    // A layer the policy does not mention is fp32, as in policyKey (src/policy.ts).
    precisions.set(layer.name, entry?.precision ?? 'fp32');
    calibration.set(layer.name, entry?.calibration);
  }
  if (missing.length > 0) {
    warnings.push(`the policy does not mention ${missing.length} layer(s) (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}); they are exported as fp32`);
  }
  return { precisions, calibration };
}

/** The placement policy.json describes: its precisions, its recorded amax and its other-ops precision. */
export function recordedPlacement(graph: Graph, layers: readonly Layer[], policy: Pick<PolicyFile, 'layers' | 'calibration' | 'otherOps'>, warnings: string[] = []): Placement {
  const { precisions, calibration } = policyPrecisions(policy, layers, warnings);
  const lp: LayerPolicy = {};
  for (const [name, precision] of precisions) {
    const c = calibration.get(name);
    lp[name] = c ? { precision, calibration: c } : { precision };
  }
  const amax = policy.calibration?.amax ?? {};
  for (const [tensor, value] of Object.entries(amax)) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new UserError(`policy.json gives tensor ${tensor} amax ${value}; an int8 scale needs a positive finite amax — re-run trtmix search to recalibrate`);
    }
  }
  return placePolicy(
    { graph, layers, otherOps: policy.otherOps ?? ALL_FP32_OTHER_OPS, defaultCalibration: parseChoiceLabel(policy.calibration?.method ?? '') },
    lp,
    (tensor) => amax[tensor],
  );
}

const FLOAT_TRT: Record<'fp16' | 'fp32', TrtType> = { fp16: 'fp16', fp32: 'fp32' };

/**
 * Builds the plan. `amax` comes from policy.json's calibration; every tensor a quantized layer reads needs one
 * (a UserError lists those missing).
 */
export function buildPrecisionPlan(
  policy: Pick<PolicyFile, 'layers' | 'calibration' | 'otherOps'>,
  layers: readonly Layer[],
  graph: Graph,
): PrecisionPlan {
  const warnings: string[] = [];
  const placement = recordedPlacement(graph, layers, policy, warnings);
  const { calibration } = policyPrecisions(policy, layers, []);
  const precisions = placement.precision;
  const policyAmax = policy.calibration?.amax ?? {};
  const entries: PlanEntry[] = [];
  const amax = new Map<string, number>();
  const amaxOwner = new Map<string, string>();
  const needRange = (tensor: string, owner: string, value: number | undefined) => {
    if (amax.has(tensor) || value === undefined) return;
    amax.set(tensor, value);
    amaxOwner.set(tensor, owner);
  };
  const nodeIndex = new Map(graph.nodes.map((n, i) => [n, i]));
  const kernelType = (t: string): TrtType => (placement.int8Stored.has(t) ? 'int8' : FLOAT_TRT[placement.stored.get(t) ?? 'fp32']);
  const placed = new Set<number>();

  for (const layer of layers) {
    const precision = precisions.get(layer.name)!;
    const types = ACTION_TYPES[precision];
    const node = layerNodeOf(graph, layer);
    const fused = fusedNodes(graph, node, layer.output, layer.fusedOutput);
    const kernelOut = placement.kernelOutput.get(layer.name) ?? layer.fusedOutput;
    const extended = kernelOut !== layer.fusedOutput;
    const handsOn: TrtType = readsInt8(precision) ? kernelType(kernelOut) : types.output;
    placed.add(nodeIndex.get(node)!);
    entries.push({
      name: layer.name, opType: node.opType ?? layer.op, role: 'layer', layer: layer.name, policy: precision,
      precision: types.precision, ...(extended ? {} : { outputType: handsOn }), outputTensor: layer.output,
    });
    const extension = (placement.extension.get(layer.name) ?? []).map((i) => graph.nodes[i]);
    for (const f of [...fused, ...extension]) {
      placed.add(nodeIndex.get(f)!);
      const writes = (f.output ?? []).includes(kernelOut);
      const entry: PlanEntry = {
        name: trtLayerName(f), opType: f.opType ?? '', role: 'fused', layer: layer.name, policy: precision,
        outputTensor: writes ? kernelOut : (f.output ?? [])[0] ?? '',
      };
      if (precision === 'fp16' || precision === 'fp32') {
        entry.precision = types.output;
        entry.outputType = types.output;
      } else if (writes) {
        entry.outputType = handsOn;
      }
      entries.push(entry);
    }
    if (!readsInt8(precision)) continue;
    needRange(layer.input, layer.name, placement.amax[layer.input]);
    if (!layer.weightIsConstant) needRange(layer.weight, layer.name, placement.amax[layer.weight]);
    if (handsOn !== 'int8') continue;
    needRange(kernelOut, layer.name, placement.amax[kernelOut]);
    if (!extended && layer.output !== layer.fusedOutput) {
      const own = policyAmax[layer.output];
      const fallback = layer.activation && RELU_LIKE.has(layer.activation) && fused.length === 1 ? placement.amax[layer.fusedOutput] : undefined;
      // Without an amax (the simulator records none for node outputs followed by fused ops) the tensor gets no
      // range: TensorRT folds BatchNorm, scale and activations into the int8 kernel, which never writes it.
      needRange(layer.output, layer.name, own ?? fallback);
    }
  }
  // The other quantized tensors (residual skips, Concat inputs) and the ops kept in FP32.
  for (const [tensor, site] of placement.qdq) needRange(tensor, 'placement', site.amax);
  graph.nodes.forEach((n, i) => {
    if (placed.has(i) || placement.nodeType[i] !== 'fp32' || !isOtherOp(n)) return;
    entries.push({ name: trtLayerName(n), opType: n.opType ?? '', role: 'other', layer: '', policy: 'fp32', precision: 'fp32', outputType: 'fp32', outputTensor: (n.output ?? [])[0] ?? '' });
  });

  const networkLayerNames = graph.nodes.filter((n) => n.opType !== 'Constant').map((n) => trtLayerName(n));
  const seen = new Map<string, number>();
  for (const name of networkLayerNames) seen.set(name, (seen.get(name) ?? 0) + 1);
  const planned = new Set(entries.map((e) => e.name));
  for (const [name, count] of seen) {
    if (count > 1 && planned.has(name)) {
      warnings.push(
        `${count} nodes share the name ${name}; TensorRT's parser renames all but the first (${name}_<N>), so name-based flags reach only one of them — build_engine.py matches them by output tensor instead`,
      );
    }
  }
  return { entries, amax, amaxOwner, networkLayerNames, warnings, layerPrecisions: precisions, calibration, placement };
}

/** Ops whose precision is a float compute decision (not data movement, which follows its data, nor shape arithmetic). */
function isOtherOp(n: NodeProto): boolean {
  return !DATA_MOVEMENT_OPS.has(n.opType ?? '');
}

/**
 * The precision plan: what every TensorRT 8.4–10.x export (trtexec flags, precision.json, build_engine.py,
 * Polygraphy args, calibration cache) says about a policy, computed once so that all of them name the same
 * layers with the same types.
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
 *   - int8 / mixed layers: the last fused node gets the output type the policy hands on (int8 / fp16), the type
 *     the simulation rounds the fused output to (src/quant/simulate.ts). The fused nodes' compute precision and
 *     inner outputs are left to the builder: it folds them into the int8 kernel's epilogue (the simulation runs
 *     them in fp32 too), and forcing int8 compute or int8 inner tensors on pointwise ops would need ranges nobody
 *     calibrated and can leave obey without an implementation.
 * The quantizable node itself follows DESIGN.md's action table.
 */
import type { NodeProto } from '../onnx/model.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { trtLayerName } from '../onnx/graph.ts';
import type { CalibrationChoice, PolicyFile, Precision } from '../policy.ts';
import { readsInt8 } from '../policy.ts';
import { UserError } from '../errors.ts';

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
export interface PlanGraph {
  readonly nodes: readonly NodeProto[];
}

export interface PlanEntry {
  /** TensorRT layer name (ONNX node name, or `node_of_<first output>`). */
  name: string;
  opType: string;
  /** `layer`: the quantizable node; `fused`: a pointwise node TensorRT fuses into it. */
  role: 'layer' | 'fused';
  /** The policy layer this entry belongs to. */
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
}

/** Activations whose output is max(x, 0) clipped above: quantizing the pre-activation tensor with the post-activation
 * amax gives the same values after the activation, so that amax is exact for the Conv's own int8 output. */
const RELU_LIKE = new Set(['relu', 'relu6', 'clip']);

/**
 * The nodes TensorRT fuses between a layer's node output and its fused output: those reachable forward from
 * `output` and backward from `fusedOutput`, in topological order.
 */
export function fusedNodes(graph: PlanGraph, layerNode: NodeProto, output: string, fusedOutput: string): NodeProto[] {
  if (output === fusedOutput) return [];
  const consumers = new Map<string, NodeProto[]>();
  const producer = new Map<string, NodeProto>();
  for (const n of graph.nodes) {
    for (const i of n.input ?? []) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
    for (const o of n.output ?? []) if (o) producer.set(o, n);
  }
  const forward = new Set<NodeProto>();
  const stack = [output];
  while (stack.length > 0) {
    for (const c of consumers.get(stack.pop()!) ?? []) {
      if (forward.has(c) || c === layerNode) continue;
      forward.add(c);
      stack.push(...(c.output ?? []).filter((o) => o && o !== fusedOutput));
    }
  }
  const backward = new Set<NodeProto>();
  const back = [fusedOutput];
  while (back.length > 0) {
    const p = producer.get(back.pop()!);
    if (!p || backward.has(p) || p === layerNode || !forward.has(p)) continue;
    backward.add(p);
    back.push(...(p.input ?? []).filter((i) => i && i !== output));
  }
  return graph.nodes.filter((n) => backward.has(n));
}

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

/**
 * Builds the plan. `amax` comes from policy.json's calibration; every tensor an int8 layer must read or write as
 * int8 needs one (a UserError lists those missing).
 */
export function buildPrecisionPlan(
  policy: Pick<PolicyFile, 'layers' | 'calibration'>,
  layers: readonly PlanLayer[],
  graph: PlanGraph,
): PrecisionPlan {
  const warnings: string[] = [];
  const { precisions, calibration } = policyPrecisions(policy, layers, warnings);
  const policyAmax = policy.calibration?.amax ?? {};
  const entries: PlanEntry[] = [];
  const amax = new Map<string, number>();
  const amaxOwner = new Map<string, string>();
  const missing: string[] = [];

  const needRange = (tensor: string, owner: string, value: number | undefined, required: boolean) => {
    if (amax.has(tensor)) return;
    if (value === undefined) {
      if (required) missing.push(`${tensor} (${owner})`);
      return;
    }
    if (!Number.isFinite(value) || value <= 0) {
      throw new UserError(`policy.json gives tensor ${tensor} amax ${value}; an int8 scale needs a positive finite amax — re-run trtmix search to recalibrate`);
    }
    amax.set(tensor, value);
    amaxOwner.set(tensor, owner);
  };

  for (const layer of layers) {
    const precision = precisions.get(layer.name)!;
    const types = ACTION_TYPES[precision];
    const node = layerNodeOf(graph, layer);
    const fused = fusedNodes(graph, node, layer.output, layer.fusedOutput);
    entries.push({
      name: layer.name, opType: node.opType ?? layer.op, role: 'layer', layer: layer.name, policy: precision,
      precision: types.precision, outputType: types.output, outputTensor: layer.output,
    });
    for (const f of fused) {
      const isLast = (f.output ?? []).includes(layer.fusedOutput);
      const entry: PlanEntry = {
        name: trtLayerName(f), opType: f.opType ?? '', role: 'fused', layer: layer.name, policy: precision,
        outputTensor: isLast ? layer.fusedOutput : (f.output ?? [])[0] ?? '',
      };
      if (precision === 'fp16' || precision === 'fp32') {
        entry.precision = types.output;
        entry.outputType = types.output;
      } else if (isLast) {
        entry.outputType = types.output;
      }
      entries.push(entry);
    }
    if (!readsInt8(precision)) continue;
    needRange(layer.input, layer.name, policyAmax[layer.input], true);
    if (!layer.weightIsConstant) needRange(layer.weight, layer.name, policyAmax[layer.weight], true);
    if (precision !== 'int8') continue;
    needRange(layer.fusedOutput, layer.name, policyAmax[layer.fusedOutput], true);
    if (layer.output !== layer.fusedOutput) {
      const own = policyAmax[layer.output];
      const fallback = layer.activation && RELU_LIKE.has(layer.activation) && fused.length === 1 ? policyAmax[layer.fusedOutput] : undefined;
      // Without an amax (the simulator records none for node outputs followed by fused ops) the tensor gets no
      // range: TensorRT folds BatchNorm, scale and activations into the int8 kernel, which never writes it.
      needRange(layer.output, layer.name, own ?? fallback, false);
    }
  }
  if (missing.length > 0) {
    throw new UserError(
      `policy.json has no calibration amax for ${missing.length} tensor(s) that int8 layers read or write: ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}; re-run trtmix search to regenerate the policy`,
    );
  }

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
  return { entries, amax, amaxOwner, networkLayerNames, warnings, layerPrecisions: precisions, calibration };
}

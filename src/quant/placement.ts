/**
 * Q/DQ placement and the precision of every op: the one decision the simulation (src/quant/simulate.ts) and
 * model.qdq.onnx (src/export/qdq-onnx.ts) both render (src/quant/rewrite.ts), so the two cannot drift apart.
 *
 * Rules (README "Q/DQ placement"; TensorRT developer guide "Q/DQ layer-placement recommendations", NVIDIA
 * Model Optimizer modelopt/onnx/quantization):
 *   - Q/DQ sit on the inputs of quantized layers (int8 / mixed: the activation, and the second operand of a MatMul
 *     between two activations), never on an op's output. A layer's result is INT8 exactly where its readers
 *     quantize it (TensorRT fuses that Q into the producing kernel); other readers get it in the float type they
 *     compute in. One Q/DQ per tensor, shared by all its quantized readers (one scale per tensor).
 *   - Residual Add: where an int8/mixed layer's result goes only into an Add whose other input is an activation,
 *     the Add (and the activation after it) is part of that layer's kernel (Conv+Add fusion): the layer's branch
 *     enters unquantized, the skip branch is quantized. When both branches come from quantized layers, the longer
 *     one is the layer's branch (ModelOpt: the non-residual input is the one farther from the common ancestor).
 *   - Concat: where a Concat's result reaches quantized readers through reshapes/transposes, every input of the
 *     Concat is quantized with the one scale of that result (ModelOpt's concat elimination), so TensorRT writes
 *     the inputs in INT8 straight into the concatenated buffer; tensors grouped this way share the largest amax.
 *   - Other ops (everything outside the quantized layers' kernels) compute in FP16 under `--other-ops fp16`, except
 *     those AutoCast keeps in FP32 (src/quant/autocast.ts decides, policy.json records); data-movement ops keep the
 *     type of the data they read. The int8 kernels' epilogue (fused BatchNorm/activation, residual Add) is FP32, and
 *     the kernel writes FP16 when every float reader computes in FP16.
 * Layers TensorRT does not run faster in INT8 (int8Exclusion) stay out of the search's INT8 actions; a policy that
 * still gives them int8 gets it, with a warning from the export.
 */
import type { NodeProto } from '../onnx/model.ts';
import { DataType } from '../onnx/model.ts';
import { trtLayerName, type Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { attrInt, attrInts } from '../onnx/tensor.ts';
import type { CalibrationChoice, LayerPolicy, OtherOps, OtherOpsPrecision, Precision } from '../policy.ts';
import { readsInt8 } from '../policy.ts';
import { UserError } from '../errors.ts';
import { DATA_MOVEMENT_OPS, elementTypes, FP16_OPS, SHAPE_READERS, UNKNOWN_TYPE, VALUE_PRESERVING_OPS } from './op-types.ts';

export type FloatType = 'fp16' | 'fp32';
export type { OtherOps, OtherOpsPrecision };
export const OTHER_OPS_PRECISIONS: readonly OtherOpsPrecision[] = ['fp16', 'fp32'];
export const DEFAULT_OTHER_OPS: OtherOpsPrecision = 'fp16';

/** All FP32: what the simulation did before --other-ops, and what a policy.json without `otherOps` means. */
export const ALL_FP32_OTHER_OPS: OtherOps = { precision: 'fp32', fp32: {} };

/**
 * How a node computes in the placed graph. `int8`: a quantized layer's node (Q/DQ inputs, int8 weights);
 * `fp16` / `fp32`: every float input is read in that type and its outputs come out in it; `keep`: a node that does
 * not compute on float values (shape arithmetic, casts, custom ops): it reads float32 and is left as it is.
 */
export type NodeType = 'int8' | FloatType | 'keep';

export interface PlacementContext {
  graph: Graph;
  layers: readonly Layer[];
  otherOps?: OtherOps;
  defaultCalibration?: CalibrationChoice;
}

/** amax of a tensor under a calibration choice (`bound`: a known output bound such as ReLU6's), undefined if unknown. */
export type AmaxSource = (tensor: string, choice: CalibrationChoice | undefined, bound: number | undefined) => number | undefined;

export interface QdqSite {
  /** amax of the tensor (scale = amax / 127), shared with the tensors grouped with it. */
  amax: number;
  /** The input edges that read the quantized tensor, as `nodeIndex:inputIndex` into graph.nodes. */
  edges: Set<string>;
}

export interface Placement {
  nodeType: NodeType[];
  /** Float type each float tensor is stored in (written by its producer). */
  stored: Map<string, FloatType>;
  /** Q/DQ'd tensors. */
  qdq: Map<string, QdqSite>;
  /** Each layer's precision under the policy. */
  precision: Map<string, Precision>;
  /** What the policy records: the amax of every Q/DQ'd tensor, and of int8 layers' results (for TensorRT <= 10 ranges). */
  amax: Record<string, number>;
  /** For pricing: tensors every reader of which reads INT8 (TensorRT fuses the Q into their producer). */
  int8Stored: Set<string>;
  /** Per quantized layer: the tensor its kernel hands on (after a fused residual Add). */
  kernelOutput: Map<string, string>;
  /** Per quantized layer whose kernel takes a residual Add: the Add and the activations after it (node indices). */
  extension: Map<string, number[]>;
}

export const edgeKey = (nodeIndex: number, input: number): string => `${nodeIndex}:${input}`;

interface ResidualCandidate {
  add: number;
  /** The Add's input this layer's branch arrives on, and the other (skip) input. */
  input: number;
  skip: string;
  /** The Add and the activations after it that join the kernel, in order. */
  extension: number[];
  output: string;
}

/** Policy-independent facts of a model, computed once per (graph, layers). */
export interface Structure {
  types: Map<string, number>;
  nodeIndex: Map<NodeProto, number>;
  /** node index -> the layer it belongs to and how. */
  role: Map<number, { layer: Layer; part: 'layer' | 'fused' }>;
  /** Layer name -> its node and fused nodes (indices). */
  groupNodes: Map<string, number[]>;
  residual: Map<string, ResidualCandidate>;
  depth: Map<string, number>;
  /** Tensor -> index of the Concat it comes from through value-preserving ops (the tensor itself if it is the Concat's). */
  concatSource: Map<string, number>;
  /** Graph outputs and tensors read inside subgraphs: they stay float32 whatever computes them. */
  fp32Bound: Set<string>;
  bound: Map<string, number>;
  activations: Set<string>;
}

const structures = new WeakMap<Graph, WeakMap<readonly Layer[], Structure>>();

const RESIDUAL_ACTIVATIONS = new Set(['Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh']);

/**
 * The nodes TensorRT fuses between a layer's node output and its fused output: those reachable forward from
 * `output` and backward from `fusedOutput`, in topological order.
 */
export function fusedNodes(graph: { readonly nodes: readonly NodeProto[] }, layerNode: NodeProto, output: string, fusedOutput: string): NodeProto[] {
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

function subgraphReads(graph: Graph): Set<string> {
  const names = new Set<string>();
  const visit = (g: { node?: NodeProto[] | null } | null | undefined) => {
    for (const n of g?.node ?? []) {
      for (const i of n.input ?? []) if (i) names.add(i);
      for (const a of n.attribute ?? []) { visit(a.g); for (const s of a.graphs ?? []) visit(s); }
    }
  };
  for (const n of graph.nodes) for (const a of n.attribute ?? []) { visit(a.g); for (const s of a.graphs ?? []) visit(s); }
  return names;
}

export function structureOf(graph: Graph, layers: readonly Layer[]): Structure {
  let byLayers = structures.get(graph);
  if (!byLayers) { byLayers = new WeakMap(); structures.set(graph, byLayers); }
  const cached = byLayers.get(layers);
  if (cached) return cached;
  const types = elementTypes(graph);
  const nodeIndex = new Map(graph.nodes.map((n, i) => [n, i]));
  const role = new Map<number, { layer: Layer; part: 'layer' | 'fused' }>();
  const groupNodes = new Map<string, number[]>();
  for (const l of layers) {
    const node = graph.nodes[l.nodeIndex];
    role.set(l.nodeIndex, { layer: l, part: 'layer' });
    const group = [l.nodeIndex];
    for (const f of fusedNodes(graph, node, l.output, l.fusedOutput)) {
      role.set(nodeIndex.get(f)!, { layer: l, part: 'fused' });
      group.push(nodeIndex.get(f)!);
    }
    groupNodes.set(l.name, group);
  }
  const activations = new Set<string>();
  for (const v of graph.inputs) if (v.name && types.get(v.name) === DataType.FLOAT) activations.add(v.name);
  for (const n of graph.nodes) {
    if (n.opType === 'Constant') continue;
    for (const o of n.output ?? []) if (o && types.get(o) === DataType.FLOAT && !graph.isConstant(o)) activations.add(o);
  }
  // Longest path from the graph inputs, in nodes: the branch of a residual Add that is longer is the layer's.
  const depth = new Map<string, number>();
  for (const n of graph.nodes) {
    const d = 1 + Math.max(0, ...(n.input ?? []).map((i) => depth.get(i) ?? 0));
    for (const o of n.output ?? []) if (o) depth.set(o, d);
  }
  const single = (t: string): NodeProto | undefined => {
    const c = graph.consumersOf(t);
    return c.length === 1 && !graph.isGraphOutput(t) ? c[0] : undefined;
  };
  const residual = new Map<string, ResidualCandidate>();
  for (const l of layers) {
    const add = single(l.fusedOutput);
    if (!add || add.opType !== 'Add' || (add.domain && add.domain !== 'ai.onnx')) continue;
    const ins = add.input ?? [];
    if (ins.length !== 2 || ins[0] === ins[1] || !ins.every((i) => activations.has(i))) continue;
    const input = ins.indexOf(l.fusedOutput);
    const addIndex = nodeIndex.get(add)!;
    const extension = [addIndex];
    let out = add.output![0];
    for (let next = single(out); next && RESIDUAL_ACTIVATIONS.has(next.opType ?? '') && (next.input ?? []).every((i, k) => k === 0 ? i === out : !i || graph.isConstant(i)); next = single(out)) {
      extension.push(nodeIndex.get(next)!);
      out = next.output![0];
    }
    residual.set(l.name, { add: addIndex, input, skip: ins[1 - input], extension, output: out });
  }
  const concatSource = new Map<string, number>();
  graph.nodes.forEach((n, i) => {
    if (n.opType === 'Concat') concatSource.set(n.output![0], i);
    else if (VALUE_PRESERVING_OPS.has(n.opType ?? '')) {
      const src = concatSource.get((n.input ?? [])[0] ?? '');
      if (src !== undefined) concatSource.set(n.output![0], src);
    }
  });
  const bound = new Map<string, number>();
  for (const l of layers) {
    const r = l.activationRange;
    const b = r ? Math.max(Math.abs(r[0]), Math.abs(r[1])) : NaN;
    if (Number.isFinite(b)) bound.set(l.fusedOutput, b);
  }
  const fp32Bound = new Set([...graph.outputs.map((o) => o.name ?? ''), ...subgraphReads(graph)]);
  const s: Structure = { types, nodeIndex, role, groupNodes, residual, depth, concatSource, fp32Bound, bound, activations };
  byLayers.set(layers, s);
  return s;
}

/** True where a node computes on float32 values, so that its precision is a decision (vs shape arithmetic, casts, custom ops). */
function computesFloat(node: NodeProto, s: Structure, graph: Graph): boolean {
  const op = node.opType ?? '';
  if (op === 'Constant' || op === 'Cast' || op === 'CastLike' || (node.domain && node.domain !== 'ai.onnx')) return false;
  if ((node.attribute ?? []).some((a) => a.g || (a.graphs && a.graphs.length > 0))) return false;
  const ins = (node.input ?? []).filter(Boolean);
  if (ins.some((i) => (s.types.get(i) ?? UNKNOWN_TYPE) === UNKNOWN_TYPE)) return false;
  if (!ins.some((i) => s.types.get(i) === DataType.FLOAT && !graph.isConstant(i))) return false;
  return (node.output ?? []).some((o) => o && s.types.get(o) === DataType.FLOAT);
}

/** The non-layer nodes whose precision --other-ops decides (AutoCast classifies these), by index. */
export function otherOpNodes(graph: Graph, layers: readonly Layer[]): number[] {
  const s = structureOf(graph, layers);
  const out: number[] = [];
  graph.nodes.forEach((n, i) => {
    if (!s.role.has(i) && computesFloat(n, s, graph) && !DATA_MOVEMENT_OPS.has(n.opType ?? '')) out.push(i);
  });
  return out;
}

/** Every tensor some policy may quantize: the layers' tensors and the skip inputs of residual Adds. */
export function quantizableTensors(graph: Graph, layers: readonly Layer[]): string[] {
  const s = structureOf(graph, layers);
  const names = new Set<string>();
  for (const l of layers) {
    names.add(l.input);
    if (!l.weightIsConstant) names.add(l.weight);
    names.add(l.fusedOutput);
  }
  for (const r of s.residual.values()) names.add(r.skip);
  return [...names];
}

/**
 * Layers TensorRT does not run faster in INT8 (ModelOpt's int8 exclusions, modelopt/onnx/quantization/graph_utils.py):
 * MatMul/Gemm with K or N < 16 ("Q/DQ on such small GEMMs causes TRT perf regressions") or a GEMV (M or N = 1, at
 * the shapes the layers were probed with), Convs with fewer than 16 input or output channels except the shapes
 * TensorRT's INT8 kernels handle (dense, square kernel, a channel count a multiple of 8, and the first layer or one
 * side >= 16; grouped with output channels a multiple of 8 and kernels >= 3), and Convs whose weights are computed.
 * Returns why, or undefined for a layer INT8 suits.
 */
export function int8Exclusion(layer: Layer, graph?: Graph): string | undefined {
  if (layer.op === 'Gemm' || layer.op === 'MatMul') {
    const k = layer.op === 'MatMul' ? layer.inputShape[layer.inputShape.length - 1] ?? layer.inChannels : layer.inChannels;
    const n = layer.outChannels;
    const out = layer.outputShape;
    const m = out.length >= 2 ? out[out.length - 2] : 1;
    if (k < 16 || n < 16) return `K=${k}, N=${n}: a GEMM with K or N below 16 gets no INT8 tensor-core kernel`;
    if (m === 1) return `M=1: a GEMV (matrix-vector product) cannot use tensor cores`;
    return undefined;
  }
  if (layer.op !== 'Conv') return undefined;
  if (!layer.weightIsConstant) return 'its weights are computed, not constant';
  const [oc, icPerGroup] = layer.weightShape;
  if (oc >= 16 && icPerGroup >= 16) return undefined;
  const kernel = layer.kernel.length > 0 ? layer.kernel : layer.weightShape.slice(2);
  const node = graph?.nodes[layer.nodeIndex];
  const group = node ? attrInt(node, 'group', 1) : layer.groups;
  const square = new Set(attrInts(node ?? {}, 'kernel_shape') ?? kernel).size <= 1;
  const first = graph ? graph.inputs.some((v) => v.name === layer.input) : false;
  if (group === 1 && (oc % 8 === 0 || icPerGroup % 8 === 0) && (first || oc >= 16 || icPerGroup >= 16) && square) return undefined;
  if (group > 1 && oc % 8 === 0 && kernel.every((k) => k >= 3)) return undefined;
  return `${icPerGroup} input / ${oc} output channels per group: too few for TensorRT's INT8 convolution kernels`;
}

class TensorGroups {
  private readonly parent = new Map<string, string>();
  find(x: string): string {
    let p = this.parent.get(x) ?? x;
    if (p !== x) { p = this.find(p); this.parent.set(x, p); }
    return p;
  }
  union(a: string, b: string): void {
    const [ra, rb] = [this.find(a), this.find(b)];
    if (ra !== rb) this.parent.set(ra, rb);
  }
}

type PrecisionOf = (l: Layer) => Precision;

/** The residual Adds that join a quantized layer's kernel (the main branch's), and the skip edges they quantize. */
function residualKernels(layers: readonly Layer[], s: Structure, p: PrecisionOf) {
  const extensionOf = new Map<number, Layer>();
  const kernelOutput = new Map<string, string>();
  const extension = new Map<string, number[]>();
  const skipEdges: Array<[number, number, string]> = [];
  for (const l of layers) {
    if (!readsInt8(p(l))) continue;
    const r = s.residual.get(l.name);
    kernelOutput.set(l.name, l.fusedOutput);
    if (!r || extensionOf.has(r.add)) continue;
    const rival = layers.find((o) => o !== l && readsInt8(p(o)) && s.residual.get(o.name)?.add === r.add);
    if (rival) {
      const [mine, theirs] = [s.depth.get(l.fusedOutput) ?? 0, s.depth.get(rival.fusedOutput) ?? 0];
      const rivalIsMain = theirs > mine || (theirs === mine && s.residual.get(rival.name)!.input === 1);
      if (rivalIsMain) continue;
    }
    for (const i of r.extension) extensionOf.set(i, l);
    extension.set(l.name, r.extension);
    kernelOutput.set(l.name, r.output);
    skipEdges.push([r.add, 1 - r.input, r.skip]);
  }
  return { extensionOf, kernelOutput, extension, skipEdges };
}

/** Each node's type; data-movement ops (`moves`) get theirs from what they read, in storedTypes. */
function nodeTypes(graph: Graph, s: Structure, other: OtherOps, p: PrecisionOf, extensionOf: ReadonlyMap<number, Layer>) {
  const nodeType: NodeType[] = [];
  const moves = new Set<number>();
  graph.nodes.forEach((n, i) => {
    const role = s.role.get(i);
    const ext = extensionOf.get(i);
    if (role || ext) {
      const lp = p(role?.layer ?? ext!);
      nodeType[i] = readsInt8(lp) ? (role?.part === 'layer' ? 'int8' : 'fp32') : (lp as FloatType);
      return;
    }
    if (!computesFloat(n, s, graph)) { nodeType[i] = 'keep'; return; }
    if (DATA_MOVEMENT_OPS.has(n.opType ?? '')) { moves.add(i); nodeType[i] = 'fp32'; return; }
    const fp16 = other.precision === 'fp16' && FP16_OPS.has(n.opType ?? '') && other.fp32[trtLayerName(n)] === undefined;
    nodeType[i] = fp16 ? 'fp16' : 'fp32';
  });
  return { nodeType, moves };
}

/**
 * Q/DQ sites — quantized layers' inputs, residual skips, inputs of Concats that feed quantized tensors — with their
 * amax (a Concat group shares the largest), and the amax policy.json records.
 */
function qdqSites(ctx: PlacementContext, s: Structure, policy: LayerPolicy, p: PrecisionOf, skipEdges: ReadonlyArray<[number, number, string]>, amaxOf: AmaxSource) {
  const { graph, layers } = ctx;
  const edges = new Map<string, Set<string>>();
  const required = new Set<string>();
  const site = (tensor: string, node: number, input: number) => {
    const set = edges.get(tensor) ?? new Set<string>();
    set.add(edgeKey(node, input));
    edges.set(tensor, set);
  };
  const choiceOf = new Map<string, CalibrationChoice | undefined>();
  for (const l of layers) {
    if (!readsInt8(p(l))) continue;
    const c = policy[l.name]?.calibration ?? ctx.defaultCalibration;
    for (const [tensor, input] of l.weightIsConstant ? [[l.input, 0] as const] : [[l.input, 0] as const, [l.weight, 1] as const]) {
      site(tensor, l.nodeIndex, input);
      required.add(tensor);
      if (!choiceOf.has(tensor)) choiceOf.set(tensor, c);
    }
  }
  for (const l of layers) {
    if (p(l) === 'int8' && !choiceOf.has(l.fusedOutput)) choiceOf.set(l.fusedOutput, policy[l.name]?.calibration ?? ctx.defaultCalibration);
  }
  for (const [add, input, skip] of skipEdges) site(skip, add, input);
  const groups = new TensorGroups();
  // Outer Concats first, so that a Concat feeding another Concat's quantized inputs is found too.
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const n = graph.nodes[i];
    if (n.opType !== 'Concat') continue;
    const reached = [...edges.keys()].filter((t) => s.concatSource.get(t) === i);
    if (reached.length === 0) continue;
    (n.input ?? []).forEach((x, k) => {
      if (!s.activations.has(x)) return;
      site(x, i, k);
      for (const t of reached) groups.union(x, t);
    });
  }
  const memberAmax = new Map<string, number>();
  const missing: string[] = [];
  for (const t of new Set([...edges.keys(), ...choiceOf.keys()])) {
    const a = amaxOf(t, choiceOf.get(t) ?? ctx.defaultCalibration, s.bound.get(t));
    if (a !== undefined && Number.isFinite(a) && a > 0) memberAmax.set(t, a);
    else if (required.has(t)) missing.push(t);
  }
  if (missing.length > 0) {
    throw new UserError(`policy.json has no calibration amax for ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}; re-run trtmix search to regenerate the policy`);
  }
  const groupAmax = new Map<string, number>();
  for (const [t, a] of memberAmax) {
    const root = groups.find(t);
    groupAmax.set(root, Math.max(groupAmax.get(root) ?? 0, a));
  }
  const qdq = new Map<string, QdqSite>();
  for (const [t, e] of edges) {
    const a = groupAmax.get(groups.find(t));
    if (a !== undefined) qdq.set(t, { amax: a, edges: e });
  }
  const amax: Record<string, number> = {};
  for (const t of memberAmax.keys()) amax[t] = groupAmax.get(groups.find(t))!;
  for (const [t, q] of qdq) amax[t] = q.amax;
  return { qdq, amax };
}

/** True where every edge from tensor `t` into node `c` reads it through its Q/DQ. */
function quantizedInto(qdq: ReadonlyMap<string, QdqSite>, t: string, c: NodeProto, ci: number): boolean {
  return (c.input ?? []).every((x, k) => x !== t || (qdq.get(t)?.edges.has(edgeKey(ci, k)) ?? false));
}

interface TypedNodes { nodeType: NodeType[]; moves: ReadonlySet<number> }

/**
 * The float type each tensor is stored in, in topological order (resolving data-movement nodes' types on the way).
 * A quantized kernel writes FP16 when every float reader — looking through data movement — computes in FP16.
 */
function storedTypes(ctx: PlacementContext, s: Structure, other: OtherOps, p: PrecisionOf, kernelOutput: ReadonlyMap<string, string>, typed: TypedNodes, qdq: ReadonlyMap<string, QdqSite>) {
  const { graph, layers } = ctx;
  const { nodeType, moves } = typed;
  const floatReaders = (t: string, seen = new Set<string>()): NodeType[] | 'fp32' => {
    if (s.fp32Bound.has(t)) return 'fp32';
    const out: NodeType[] = [];
    for (const c of graph.consumersOf(t)) {
      const ci = s.nodeIndex.get(c)!;
      if (quantizedInto(qdq, t, c, ci)) continue;
      if (moves.has(ci)) {
        for (const o of c.output ?? []) {
          if (!o || seen.has(o)) continue;
          seen.add(o);
          const r = floatReaders(o, seen);
          if (r === 'fp32') return 'fp32';
          out.push(...r);
        }
        continue;
      }
      if (!SHAPE_READERS.has(c.opType ?? '')) out.push(nodeType[ci]);
    }
    return out;
  };
  const kernelStore = new Map<string, FloatType>();
  for (const l of layers) {
    if (!readsInt8(p(l))) continue;
    const t = kernelOutput.get(l.name)!;
    if (p(l) === 'mixed') { kernelStore.set(t, 'fp16'); continue; }
    const readers = floatReaders(t);
    kernelStore.set(t, other.precision === 'fp16' && readers !== 'fp32' && readers.length > 0 && readers.every((r) => r === 'fp16') ? 'fp16' : 'fp32');
  }
  const stored = new Map<string, FloatType>();
  for (const t of s.activations) if (graph.inputs.some((v) => v.name === t)) stored.set(t, 'fp32');
  graph.nodes.forEach((n, i) => {
    if (moves.has(i)) {
      const data = n.opType === 'Concat' ? (n.input ?? []) : [(n.input ?? [])[0] ?? ''];
      const read = data.filter((x) => s.activations.has(x)).map((x) => (quantizedInto(qdq, x, n, i) ? 'fp32' : stored.get(x) ?? 'fp32'));
      nodeType[i] = read.length > 0 && read.every((r) => r === 'fp16') ? 'fp16' : 'fp32';
    }
    for (const o of n.output ?? []) {
      if (o && s.activations.has(o)) stored.set(o, kernelStore.get(o) ?? (nodeType[i] === 'fp16' ? 'fp16' : 'fp32'));
    }
  });
  return stored;
}

/** For pricing: the tensors every reader reads quantized (directly or through data movement): written in INT8. */
function int8StoredTensors(graph: Graph, s: Structure, moves: ReadonlySet<number>, qdq: ReadonlyMap<string, QdqSite>): Set<string> {
  const int8Stored = new Set<string>();
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    for (const o of graph.nodes[i].output ?? []) {
      if (!o || !s.activations.has(o) || s.fp32Bound.has(o)) continue;
      const readers = graph.consumersOf(o);
      const all = readers.length > 0 && readers.every((c) => {
        const ci = s.nodeIndex.get(c)!;
        return quantizedInto(qdq, o, c, ci) || (moves.has(ci) && (c.output ?? []).every((co) => !co || int8Stored.has(co)));
      });
      if (all) int8Stored.add(o);
    }
  }
  return int8Stored;
}

/**
 * The placement of a policy. `amaxOf` answers the calibrated (or recorded) amax of a tensor; a quantized layer's
 * input without one is a UserError (a policy.json that lacks it), other Q/DQ sites without one are left out.
 */
export function placePolicy(ctx: PlacementContext, policy: LayerPolicy, amaxOf: AmaxSource): Placement {
  const s = structureOf(ctx.graph, ctx.layers);
  const other = ctx.otherOps ?? ALL_FP32_OTHER_OPS;
  const precision = new Map(ctx.layers.map((l) => [l.name, policy[l.name]?.precision ?? ('fp32' as Precision)]));
  const p: PrecisionOf = (l) => precision.get(l.name)!;
  const { extensionOf, kernelOutput, extension, skipEdges } = residualKernels(ctx.layers, s, p);
  const typed = nodeTypes(ctx.graph, s, other, p, extensionOf);
  const { qdq, amax } = qdqSites(ctx, s, policy, p, skipEdges, amaxOf);
  const stored = storedTypes(ctx, s, other, p, kernelOutput, typed, qdq);
  const int8Stored = int8StoredTensors(ctx.graph, s, typed.moves, qdq);
  return { nodeType: typed.nodeType, stored, qdq, precision, amax, int8Stored, kernelOutput, extension };
}

/** What the latency model needs of a placement (src/latency/roofline.ts prices the placed graph with it). */
export interface PlacedPrecisions {
  /** The precision a non-layer op computes in (FP16 / FP32 per --other-ops and AutoCast), by TensorRT layer name. */
  compute(node: string): FloatType | undefined;
  /** True where one of these nodes reads the tensor through a Q/DQ (a residual skip fused into an int8 kernel). */
  readsQuantized(tensor: string, nodes: readonly string[]): boolean;
  /** True where the tensor is written in INT8 (every reader quantizes it); an int8 kernel writes it wider otherwise. */
  writtenInt8(tensor: string): boolean;
}

export function placedPrecisions(placement: Placement, graph: Graph): PlacedPrecisions {
  const compute = new Map<string, FloatType>();
  const quantizedBy = new Map<string, Set<string>>();
  graph.nodes.forEach((n, i) => {
    const t = placement.nodeType[i];
    if (t === 'fp16' || t === 'fp32') compute.set(trtLayerName(n), t);
  });
  for (const [tensor, site] of placement.qdq) {
    const readers = new Set<string>();
    for (const e of site.edges) readers.add(trtLayerName(graph.nodes[Number(e.split(':')[0])]));
    quantizedBy.set(tensor, readers);
  }
  return {
    compute: (node) => compute.get(node),
    readsQuantized: (tensor, nodes) => nodes.some((n) => quantizedBy.get(tensor)?.has(n) ?? false),
    writtenInt8: (tensor) => placement.int8Stored.has(tensor),
  };
}

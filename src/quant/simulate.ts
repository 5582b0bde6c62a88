/**
 * Applying a policy to the model: a graph in which every int8 / mixed / fp16 layer computes what TensorRT computes
 * for it, built from QuantizeLinear / DequantizeLinear (int8, zero point 0) and float16 rounding, and run by
 * onnxruntime. Per DESIGN.md's action table:
 *   int8   input Q/DQ (per tensor), weight Q/DQ (per output channel), output Q/DQ after the fused activation
 *   mixed  input and weight Q/DQ as int8; the fused output rounded to float16
 *   fp16   input, weight, bias and fused output rounded to float16
 *   fp32   untouched
 * One amax per tensor, as in TensorRT (a tensor has one dynamic range): a layer's calibration choice sets the amax
 * of its input; an int8 layer's output takes the choice of the layer reading it, else its own.
 */
import type { ModelProto, NodeProto, TensorProto } from '../onnx/model.ts';
import { DataType } from '../onnx/model.ts';
import { allInputs, topologicalSort, type Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { floatTensor, int8Tensor, makeAttr } from '../onnx/tensor.ts';
import type { CalibrationChoice, LayerPolicy, Precision } from '../policy.ts';
import { readsInt8 } from '../policy.ts';
import type { CalibrationTable } from './calibrate.ts';
import { INT8_MAX, MIN_SCALE, quantizePerChannel, roundArrayToHalf, scaleFromAmax, type PerChannelWeights } from './int8.ts';

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
}

function precisionOf(policy: LayerPolicy, layer: Layer): Precision {
  return policy[layer.name]?.precision ?? 'fp32';
}

function bound(range?: [number, number]): number | undefined {
  if (!range) return undefined;
  const b = Math.max(Math.abs(range[0]), Math.abs(range[1]));
  return Number.isFinite(b) ? b : undefined;
}

/** The amax of every tensor an int8 or mixed layer reads or an int8 layer writes, under this policy. */
export function resolveAmax(base: SimulationBase, policy: LayerPolicy): Record<string, number> {
  const boundOf = new Map<string, number | undefined>();
  for (const l of base.layers) boundOf.set(l.fusedOutput, bound(l.activationRange));
  const choiceOf = new Map<string, CalibrationChoice>();
  for (const l of base.layers) {
    if (!readsInt8(precisionOf(policy, l))) continue;
    const c = policy[l.name]?.calibration ?? base.defaultCalibration;
    if (!choiceOf.has(l.input)) choiceOf.set(l.input, c);
    if (!l.weightIsConstant && !choiceOf.has(l.weight)) choiceOf.set(l.weight, c);
  }
  for (const l of base.layers) {
    if (precisionOf(policy, l) !== 'int8' || choiceOf.has(l.fusedOutput)) continue;
    choiceOf.set(l.fusedOutput, policy[l.name]?.calibration ?? base.defaultCalibration);
  }
  const amax: Record<string, number> = {};
  // A tensor that is 0 on every calibration sample (a zero-initialised head) is simulated with the smallest scale;
  // its amax says so, so that policy.json, the exports and replay carry the positive range the simulation used.
  for (const [tensor, c] of choiceOf) amax[tensor] = base.calibration.amax(tensor, c, boundOf.get(tensor)) || MIN_SCALE * INT8_MAX;
  return amax;
}

/** Per-model caches of quantized and half-rounded weights, so that building a policy's graph is cheap. */
class WeightCache {
  private readonly int8 = new Map<string, PerChannelWeights>();
  private readonly half = new Map<string, Float32Array>();
  constructor(private readonly graph: Graph) {}

  perChannel(name: string, axis: number, perTensor = false): PerChannelWeights {
    const key = `${name}@${perTensor ? 'tensor' : axis}`;
    let w = this.int8.get(key);
    if (!w) {
      const v = this.graph.constantValues(name)!;
      // Per-tensor is per-channel over a single "channel": the whole tensor viewed as [1, size].
      w = perTensor ? quantizePerChannel(v.data, [1, v.data.length], 0) : quantizePerChannel(v.data, v.dims, axis);
      this.int8.set(key, w);
    }
    return w;
  }

  rounded(name: string): Float32Array {
    let w = this.half.get(name);
    if (!w) {
      w = roundArrayToHalf(this.graph.constantValues(name)!.data);
      this.half.set(name, w);
    }
    return w;
  }
}

const weightCaches = new WeakMap<Graph, WeightCache>();
function weightCache(graph: Graph): WeightCache {
  let c = weightCaches.get(graph);
  if (!c) { c = new WeightCache(graph); weightCaches.set(graph, c); }
  return c;
}

export interface SimulateOptions {
  /** Extra graph outputs (e.g. a layer's output, for the analyzer). Names refer to the simulated tensors. */
  extraOutputs?: string[];
}

/** Builds the simulated model of a policy. The base model is not modified. */
export function buildSimulatedModel(base: SimulationBase, policy: LayerPolicy, opts: SimulateOptions = {}): ModelProto {
  const { graph, layers } = base;
  const weights = weightCache(graph);
  const amax = resolveAmax(base, policy);
  const inits: TensorProto[] = [];
  const added: NodeProto[] = [];
  const replaced = new Map<NodeProto, NodeProto>();
  /** Nodes to insert right after a given node (the output-side Q/DQ or casts). */
  const after = new Map<NodeProto, NodeProto[]>();
  const sharedInputs = new Map<string, string>();
  const names = new Set<string>();
  const unique = (base: string) => {
    let n = base;
    for (let i = 1; names.has(n) || graph.producer.has(n) || graph.initializers.has(n); i++) n = `${base}_${i}`;
    names.add(n);
    return n;
  };
  const edit = (node: NodeProto): NodeProto => {
    let r = replaced.get(node);
    if (!r) { r = { ...node, input: [...(node.input ?? [])], output: [...(node.output ?? [])] }; replaced.set(node, r); }
    return r;
  };

  const qdq = (x: string, y: string, scale: number, into: NodeProto[]) => {
    const s = unique(`${x}__scale`);
    const z = unique(`${x}__zero_point`);
    const q = unique(`${x}__quantized`);
    inits.push(floatTensor(s, [], [scale]), int8Tensor(z, [], new Int8Array(1)));
    into.push({ name: unique(`${x}__QuantizeLinear`), opType: 'QuantizeLinear', input: [x, s, z], output: [q] });
    into.push({ name: unique(`${x}__DequantizeLinear`), opType: 'DequantizeLinear', input: [q, s, z], output: [y] });
  };
  const halfRound = (x: string, y: string, into: NodeProto[]) => {
    const h = unique(`${x}__float16`);
    into.push({ name: unique(`${x}__CastToFloat16`), opType: 'Cast', input: [x], output: [h], attribute: [makeAttr.int('to', DataType.FLOAT16)] });
    into.push({ name: unique(`${x}__CastToFloat32`), opType: 'Cast', input: [h], output: [y], attribute: [makeAttr.int('to', DataType.FLOAT)] });
  };

  // Output side: an int8 layer writes int8 (Q/DQ after its fused activation); fp16 and mixed layers write float16.
  const quantizedOutputs = new Set<string>();
  for (const l of layers) {
    const p = precisionOf(policy, l);
    if (p === 'fp32') continue;
    const producer = graph.producer.get(l.fusedOutput)!;
    const pre = unique(`${l.fusedOutput}__${p}_pre`);
    const e = edit(producer);
    e.output = e.output!.map((o) => (o === l.fusedOutput ? pre : o));
    const list = after.get(producer) ?? [];
    if (p === 'int8') {
      qdq(pre, l.fusedOutput, scaleFromAmax(amax[l.fusedOutput]), list);
      quantizedOutputs.add(l.fusedOutput);
    } else halfRound(pre, l.fusedOutput, list);
    after.set(producer, list);
  }

  // Input side, per layer.
  for (const l of layers) {
    const p = precisionOf(policy, l);
    if (p === 'fp32') continue;
    const node = graph.nodes[l.nodeIndex];
    const e = edit(node);
    const activationOperand = (tensor: string) => {
      if (readsInt8(p)) {
        if (quantizedOutputs.has(tensor)) return tensor;
        const key = `int8:${tensor}`;
        let y = sharedInputs.get(key);
        if (!y) { y = unique(`${tensor}__qdq`); qdq(tensor, y, scaleFromAmax(amax[tensor]), added); sharedInputs.set(key, y); }
        return y;
      }
      const key = `fp16:${tensor}`;
      let y = sharedInputs.get(key);
      if (!y) { y = unique(`${tensor}__fp16`); halfRound(tensor, y, added); sharedInputs.set(key, y); }
      return y;
    };
    e.input![0] = activationOperand(l.input);
    if (!l.weightIsConstant) {
      e.input![1] = activationOperand(l.weight);
    } else if (readsInt8(p)) {
      const perTensor = base.weightGranularity === 'per-tensor';
      const w = weights.perChannel(l.weight, l.weightAxis, perTensor);
      const dims = graph.constantValues(l.weight)!.dims;
      const qName = unique(`${l.weight}__int8`);
      const sName = unique(`${l.weight}__scales`);
      const zName = unique(`${l.weight}__zero_points`);
      const dq = unique(`${l.weight}__dq`);
      const paramDims = perTensor ? [] : [w.scales.length];
      inits.push(int8Tensor(qName, dims, w.q), floatTensor(sName, paramDims, w.scales), int8Tensor(zName, paramDims, new Int8Array(w.scales.length)));
      added.push({ name: unique(`${l.weight}__DequantizeLinear`), opType: 'DequantizeLinear', input: [qName, sName, zName], output: [dq], attribute: perTensor ? [] : [makeAttr.int('axis', l.weightAxis)] });
      e.input![1] = dq;
    } else {
      const name = unique(`${l.weight}__fp16r`);
      inits.push(floatTensor(name, graph.constantValues(l.weight)!.dims, weights.rounded(l.weight)));
      e.input![1] = name;
    }
    if (p === 'fp16' && l.bias && graph.isConstant(l.bias)) {
      const name = unique(`${l.bias}__fp16r`);
      inits.push(floatTensor(name, graph.constantValues(l.bias)!.dims, weights.rounded(l.bias)));
      e.input![2] = name;
    }
  }

  // Assemble in original order with output-side nodes right after their producer, then sort topologically
  // (input-side nodes read tensors produced anywhere).
  const nodes: NodeProto[] = [...added];
  for (const n of graph.nodes) nodes.push(replaced.get(n) ?? n, ...(after.get(n) ?? []));
  const outputs = [...(base.model.graph!.output ?? [])];
  for (const name of opts.extraOutputs ?? []) outputs.push({ name, type: { tensorType: { elemType: 1 } } });
  const model: ModelProto = {
    ...base.model,
    graph: { ...base.model.graph!, node: pruneDead(topologicalSort({ node: nodes }), outputs.map((o) => o.name!)), initializer: [...(base.model.graph!.initializer ?? []), ...inits], output: outputs },
  };
  return model;
}

/** Drops nodes whose outputs nobody reads (the Constant nodes of weights that were replaced); nodes in topological order. */
function pruneDead(nodes: NodeProto[], graphOutputs: string[]): NodeProto[] {
  const live = new Set(graphOutputs);
  const keep = new Array(nodes.length).fill(false);
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const hasSubgraph = (n.attribute ?? []).some((a) => a.g || (a.graphs && a.graphs.length > 0));
    if (hasSubgraph || (n.output ?? []).some((o) => live.has(o))) {
      keep[i] = true;
      for (const x of allInputs(n)) if (x) live.add(x);
    }
  }
  return nodes.filter((_, i) => keep[i]);
}

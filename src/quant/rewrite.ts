/**
 * Renders a placement (src/quant/placement.ts) as an ONNX graph, in one of two forms that differ only in how
 * FP16 is written:
 *   export    the form TensorRT builds (model.qdq.onnx): float16 tensors, Casts between float16 and float32 where
 *             types change, float16 initializers for FP16 ops.
 *   simulate  the form onnxruntime scores: every tensor stays float32, and wherever the export holds a float16
 *             value the simulation holds that value rounded to float16 (a Cast to float16 and back), so FP16 ops
 *             read and write exactly the values the export's types allow.
 * Q/DQ nodes, int8 weights and scales are identical in both (float32 Q/DQ, scale = amax / 127); without FP16 ops
 * the two graphs compute the same values. Base tensor names keep their meaning: the value as stored.
 * Where the simulation rounds: at every Cast to float16 of the export, and wherever an FP16 op writes memory — not
 * inside what TensorRT computes in one kernel (an fp16 layer's fused BatchNorm/activation, chains of elementwise
 * ops), whose intermediate values the export types float16 but TensorRT keeps in registers.
 */
import type { NodeProto, TensorProto } from '../onnx/model.ts';
import { DataType } from '../onnx/model.ts';
import { topologicalSort, type Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { floatTensor, int8Tensor, makeAttr } from '../onnx/tensor.ts';
import { floatToHalfBits, quantizePerChannel, roundArrayToHalf, scaleFromAmax, type PerChannelWeights } from './int8.ts';
import { ELEMENTWISE_OPS, FLOAT32_PARAMETER_INPUTS, FP16_EXACT_OPS, SHAPE_READERS } from './op-types.ts';
import { edgeKey, structureOf, type FloatType, type Placement } from './placement.ts';
import { correctedBias, correctionSites, type BiasCorrections } from './bias-correction.ts';

export type RewriteMode = 'simulate' | 'export';

export interface RewriteOptions {
  mode: RewriteMode;
  /** Per-tensor weight scales exist only as an option for other targets (TensorRT quantizes weights per channel). */
  weightGranularity?: 'per-channel' | 'per-tensor';
  /** Tensors that must survive pruning (extra outputs). */
  keep?: string[];
  /** Bias corrections of INT8/mixed layers (src/quant/bias-correction.ts): their biases are replaced or created. */
  bias?: BiasCorrections;
}

export interface RewriteResult {
  /** Topologically sorted, dead nodes (replaced weights' Constant nodes) removed. */
  nodes: NodeProto[];
  /** Initializers the rewrite adds. */
  initializers: TensorProto[];
  /** Tensors whose type the export changes to float16 (their declared value_info would contradict it). */
  retyped: Set<string>;
}

/** Per-graph caches of quantized and half-rounded weights, so that rendering a policy is cheap. */
class WeightCache {
  private readonly int8 = new Map<string, PerChannelWeights>();
  private readonly half = new Map<string, Float32Array>();
  constructor(private readonly graph: Graph) {}

  perChannel(name: string, axis: number, perTensor: boolean): PerChannelWeights {
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

function halfTensor(name: string, dims: number[], data: Float32Array): TensorProto {
  const bits = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) bits[i] = floatToHalfBits(data[i]);
  return { name, dims, dataType: DataType.FLOAT16, rawData: new Uint8Array(bits.buffer) };
}

export function rewriteGraph(graph: Graph, layers: readonly Layer[], placement: Placement, opts: RewriteOptions): RewriteResult {
  const s = structureOf(graph, layers);
  const exporting = opts.mode === 'export';
  const weights = weightCache(graph);
  const layerAt = new Map(layers.map((l) => [l.nodeIndex, l]));
  const names = new Set<string>([...graph.producer.keys(), ...graph.initializers.keys(), ...graph.inputs.map((v) => v.name ?? '')]);
  const unique = (base: string) => {
    let n = base;
    for (let i = 1; names.has(n); i++) n = `${base}_${i}`;
    names.add(n);
    return n;
  };
  const inits: TensorProto[] = [];
  const retyped = new Set<string>();
  const inputSide: NodeProto[] = [];
  const after = new Map<number, NodeProto[]>();
  const replaced = new Map<number, NodeProto>();
  const edit = (i: number): NodeProto => {
    let r = replaced.get(i);
    if (!r) {
      const n = graph.nodes[i];
      r = { ...n, input: [...(n.input ?? [])], output: [...(n.output ?? [])] };
      replaced.set(i, r);
    }
    return r;
  };
  const cast = (x: string, y: string, to: FloatType): NodeProto => ({
    name: unique(`${x}__CastTo${to === 'fp16' ? 'Float16' : 'Float32'}`), opType: 'Cast', input: [x], output: [y],
    attribute: [makeAttr.int('to', to === 'fp16' ? DataType.FLOAT16 : DataType.FLOAT)],
  });
  /** x rounded to float16 and back, as y (the simulation's stand-in for a float16 tensor). */
  const round = (x: string, y: string): NodeProto[] => {
    const h = unique(`${x}__float16`);
    return [cast(x, h, 'fp16'), cast(h, y, 'fp32')];
  };
  const storedOf = (t: string): FloatType => placement.stored.get(t) ?? 'fp32';

  const layerOf = new Map<number, Layer>();
  for (const l of layers) for (const i of s.groupNodes.get(l.name) ?? []) layerOf.set(i, l);
  /** Simulation: an FP16 value that never leaves the kernel computing it is not rounded. */
  const inRegisters = (i: number, t: string): boolean => {
    if (s.fp32Bound.has(t)) return false;
    const l = layerOf.get(i);
    if (l) return placement.precision.get(l.name) === 'fp16' && t !== l.fusedOutput;
    const readers = graph.consumersOf(t);
    if (readers.length !== 1 || !ELEMENTWISE_OPS.has(graph.nodes[i].opType ?? '') || !ELEMENTWISE_OPS.has(readers[0].opType ?? '')) return false;
    return placement.nodeType[s.nodeIndex.get(readers[0])!] === 'fp16';
  };

  // Output side: what each producer writes, under which name.
  /** Export: the float16 tensor behind a float32-bound name (graph outputs, subgraph reads). */
  const halfName = new Map<string, string>();
  graph.nodes.forEach((n, i) => {
    const natural: FloatType = placement.nodeType[i] === 'fp16' ? 'fp16' : 'fp32';
    (n.output ?? []).forEach((o, k) => {
      if (!o || storedOf(o) !== 'fp16' || !s.activations.has(o)) return;
      const rename = (to: string) => { const e = edit(i); e.output![k] = to; };
      const list = after.get(i) ?? [];
      if (!exporting) {
        if (natural === 'fp16' && (FP16_EXACT_OPS.has(n.opType ?? '') || inRegisters(i, o))) return;
        const pre = unique(`${o}__unrounded`);
        rename(pre);
        list.push(...round(pre, o));
      } else {
        const bound = s.fp32Bound.has(o);
        const half = bound ? unique(`${o}__float16`) : o;
        if (natural === 'fp32') {
          const pre = unique(`${o}__float`);
          rename(pre);
          list.push(cast(pre, half, 'fp16'));
        } else if (bound) rename(half);
        if (bound) { list.push(cast(half, o, 'fp32')); halfName.set(o, half); }
        retyped.add(half);
      }
      after.set(i, list);
    });
  });

  const shared = new Map<string, string>();
  const once = (key: string, make: () => string): string => {
    let v = shared.get(key);
    if (v === undefined) { v = make(); shared.set(key, v); }
    return v;
  };
  /** The stored tensor x as `to` (export: a Cast where types differ; simulate: rounding where the export would round). */
  const readAs = (x: string, from: FloatType, to: FloatType): string => {
    if (from === to) return exporting && to === 'fp16' ? halfName.get(x) ?? x : x;
    if (!exporting) return to === 'fp16' ? once(`round:${x}`, () => { const y = unique(`${x}__fp16`); inputSide.push(...round(x, y)); return y; }) : x;
    if (to === 'fp32' && halfName.has(x)) return x;
    return once(`${to}:${x}`, () => {
      const y = unique(`${x}__${to === 'fp16' ? 'float16' : 'float32'}`);
      inputSide.push(cast(from === 'fp16' ? halfName.get(x) ?? x : x, y, to));
      if (to === 'fp16') retyped.add(y);
      return y;
    });
  };
  const quantized = (x: string, amax: number): string => once(`qdq:${x}`, () => {
    const src = readAs(x, storedOf(x), 'fp32');
    const scale = unique(`${x}__scale`);
    const zero = unique(`${x}__zero_point`);
    const q = unique(`${x}__int8`);
    const y = unique(`${x}__qdq`);
    inits.push(floatTensor(scale, [], [scaleFromAmax(amax)]), int8Tensor(zero, [], new Int8Array(1)));
    inputSide.push({ name: unique(`${x}__QuantizeLinear`), opType: 'QuantizeLinear', input: [src, scale, zero], output: [q] });
    inputSide.push({ name: unique(`${x}__DequantizeLinear`), opType: 'DequantizeLinear', input: [q, scale, zero], output: [y] });
    return y;
  });
  const perTensor = opts.weightGranularity === 'per-tensor';
  const int8Weight = (l: Layer): string => once(`w8:${l.weight}@${l.weightAxis}`, () => {
    const w = weights.perChannel(l.weight, l.weightAxis, perTensor);
    const dims = graph.constantValues(l.weight)!.dims;
    const qName = unique(`${l.weight}__int8`);
    const sName = unique(`${l.weight}__scales`);
    const zName = unique(`${l.weight}__zero_points`);
    const dq = unique(`${l.weight}__dequantized`);
    const paramDims = perTensor ? [] : [w.scales.length];
    inits.push(int8Tensor(qName, dims, w.q), floatTensor(sName, paramDims, w.scales), int8Tensor(zName, paramDims, new Int8Array(w.scales.length)));
    inputSide.push({ name: unique(`${l.weight}__DequantizeLinear`), opType: 'DequantizeLinear', input: [qName, sName, zName], output: [dq], attribute: perTensor ? [] : [makeAttr.int('axis', l.weightAxis)] });
    return dq;
  });
  const halfConstant = (c: string): string => once(`half:${c}`, () => {
    const v = graph.constantValues(c)!;
    const y = unique(`${c}__float16`);
    inits.push(exporting ? halfTensor(y, v.dims, v.data) : floatTensor(y, v.dims, weights.rounded(c)));
    return y;
  });
  const isFloatConstant = (x: string) => {
    const t = graph.constantTensor(x);
    return t !== undefined && (t.dataType ?? DataType.FLOAT) === DataType.FLOAT;
  };

  const biasSites = correctionSites(graph, layers, opts.bias);
  /** A corrected bias, as the node reading it computes (float32, or float16 for an FP16 bias Add after a MatMul). */
  const biasInput = (i: number, k: number, need: FloatType): string | undefined => {
    const hit = biasSites.get(i)?.find((e) => e.site.inputIndex === k);
    if (!hit) return undefined;
    const v = correctedBias(graph, hit.site, hit.delta);
    const y = unique(`${hit.site.tensor ?? `${hit.layer.name}_bias`}__corrected`);
    if (need === 'fp16') inits.push(exporting ? halfTensor(y, v.dims, v.data) : floatTensor(y, v.dims, roundArrayToHalf(v.data)));
    else inits.push(floatTensor(y, v.dims, v.data));
    return y;
  };

  // Input side: every edge reads what its node computes in.
  graph.nodes.forEach((n, i) => {
    const type = placement.nodeType[i];
    const layer = layerAt.get(i);
    const params = FLOAT32_PARAMETER_INPUTS[n.opType ?? ''] ?? [];
    for (const { site } of biasSites.get(i) ?? []) {
      if (site.tensor) continue;
      // A bias the layer did not have: a new input (the layer reads int8, so float32).
      const e = edit(i);
      while (e.input!.length < site.inputIndex) e.input!.push('');
      e.input![site.inputIndex] = biasInput(i, site.inputIndex, 'fp32')!;
    }
    (n.input ?? []).forEach((x, k) => {
      if (!x) return;
      let y = x;
      const corrected = biasInput(i, k, type === 'fp16' && !params.includes(k) ? 'fp16' : 'fp32');
      if (corrected !== undefined) { edit(i).input![k] = corrected; return; }
      const site = placement.qdq.get(x);
      const need: FloatType = type === 'fp16' && !params.includes(k) ? 'fp16' : 'fp32';
      if (site?.edges.has(edgeKey(i, k))) {
        y = readAs(quantized(x, site.amax), 'fp32', need);
      } else if (type === 'int8' && layer && k === 1 && layer.weightIsConstant) {
        y = int8Weight(layer);
      } else if (isFloatConstant(x)) {
        if (need === 'fp16') y = halfConstant(x);
      } else if (s.activations.has(x)) {
        if (type === 'keep' && SHAPE_READERS.has(n.opType ?? '')) return;
        y = readAs(x, storedOf(x), need);
      }
      if (y !== x) edit(i).input![k] = y;
    });
  });

  const nodes: NodeProto[] = [...inputSide];
  graph.nodes.forEach((n, i) => nodes.push(replaced.get(i) ?? n, ...(after.get(i) ?? [])));
  const live = [...graph.outputs.map((o) => o.name ?? ''), ...(opts.keep ?? [])];
  return { nodes: pruneDead(topologicalSort({ node: nodes }), live), initializers: inits, retyped };
}

/** Drops nodes nobody reads (the Constant nodes of replaced weights); nodes in topological order. */
function pruneDead(nodes: NodeProto[], outputs: string[]): NodeProto[] {
  const live = new Set(outputs);
  const keep = new Array(nodes.length).fill(false);
  const visit = (g: { node?: NodeProto[] | null } | null | undefined): void => {
    for (const n of g?.node ?? []) {
      for (const x of n.input ?? []) if (x) live.add(x);
      for (const a of n.attribute ?? []) { visit(a.g); for (const sub of a.graphs ?? []) visit(sub); }
    }
  };
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const subgraphs = (n.attribute ?? []).flatMap((a) => [a.g, ...(a.graphs ?? [])]).filter(Boolean);
    if (subgraphs.length > 0 || (n.output ?? []).some((o) => live.has(o))) {
      keep[i] = true;
      for (const x of n.input ?? []) if (x) live.add(x);
      for (const g of subgraphs) visit(g);
    }
  }
  return nodes.filter((_, i) => keep[i]);
}


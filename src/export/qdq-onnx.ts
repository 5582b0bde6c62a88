/**
 * model.qdq.onnx: the policy as an explicitly quantized, explicitly typed ONNX model, the form TensorRT 10 builds
 * with explicit quantization (and strongly typed networks) and the only form TensorRT 11 accepts.
 *
 *   int8   QuantizeLinear/DequantizeLinear on the activation input (per tensor) and on the second operand when
 *          it is an activation; int8 weights with a per-output-channel DequantizeLinear; Q/DQ on the fused
 *          output, so the next layer reads int8.
 *   mixed  the same inputs and weights; the fused output cast to float16 (and back to float32 for readers
 *          that are not float16 themselves), so TensorRT's kernel writes fp16.
 *   fp16   Cast to float16 before the layer, float16 weights, bias and fused-op constants, the layer and its fused
 *          ops computing in float16, Cast back to float32 after the fused output.
 *   fp32   untouched.
 * Zero points are int8 zeros, scales amax / 127 (positive; an all-zero channel gets the smallest positive scale),
 * weights quantized exactly as the simulator does (src/quant/int8.ts), with the amax policy.json records, so the
 * int8 arithmetic is the simulation's. Where the two differ: this model runs an fp16 layer's fused ops in
 * float16, as TensorRT does, where the simulation only rounds the group's inputs and output.
 */
import type { ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/model.ts';
import { DataType } from '../onnx/model.ts';
import { allInputs, topologicalSort, type Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { floatTensor, int8Tensor, makeAttr } from '../onnx/tensor.ts';
import { opsetVersion } from '../onnx/model.ts';
import { QDQ_MIN_OPSET } from '../onnx/opset.ts';
import { floatToHalfBits, quantizePerChannel, scaleFromAmax } from '../quant/int8.ts';
import type { PolicyFile, Precision } from '../policy.ts';
import { readsInt8 } from '../policy.ts';
import { fusedNodes, policyPrecisions } from './plan.ts';
import { UserError } from '../errors.ts';

function halfTensor(name: string, dims: number[], data: Float32Array): TensorProto {
  const bits = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) bits[i] = floatToHalfBits(data[i]);
  return { name, dims, dataType: DataType.FLOAT16, rawData: new Uint8Array(bits.buffer) };
}

export interface QdqResult {
  model: ModelProto;
  warnings: string[];
}

/**
 * Rewrites `model` (default opset >= 13, the model `graph` and `layers` were discovered on) for the policy.
 * The input model is not modified.
 */
export function buildQdqModel(model: ModelProto, graph: Graph, layers: readonly Layer[], policy: Pick<PolicyFile, 'layers' | 'calibration'>): QdqResult {
  if (opsetVersion(model) < QDQ_MIN_OPSET) throw new Error(`buildQdqModel needs opset >= ${QDQ_MIN_OPSET} (upgradeOpset first)`);
  const warnings: string[] = [];
  const { precisions } = policyPrecisions(policy, layers, warnings);
  const amax = policy.calibration?.amax ?? {};
  const precisionOf = (l: Layer): Precision => precisions.get(l.name) ?? 'fp32';

  const missing = new Set<string>();
  for (const l of layers) {
    const p = precisionOf(l);
    if (!readsInt8(p)) continue;
    for (const t of [l.input, ...(l.weightIsConstant ? [] : [l.weight]), ...(p === 'int8' ? [l.fusedOutput] : [])]) {
      if (amax[t] === undefined) missing.add(t);
    }
  }
  if (missing.size > 0) {
    throw new UserError(`policy.json has no calibration amax for ${[...missing].slice(0, 4).join(', ')}${missing.size > 4 ? ', ...' : ''}; re-run trtmix search to regenerate the policy`);
  }

  const inits: TensorProto[] = [];
  const names = new Set<string>([...graph.producer.keys(), ...graph.initializers.keys(), ...graph.inputs.map((v) => v.name ?? '')]);
  const unique = (base: string) => {
    let n = base;
    for (let i = 1; names.has(n); i++) n = `${base}_${i}`;
    names.add(n);
    return n;
  };
  const replaced = new Map<NodeProto, NodeProto>();
  const edit = (node: NodeProto): NodeProto => {
    let r = replaced.get(node);
    if (!r) {
      r = { ...node, input: [...(node.input ?? [])], output: [...(node.output ?? [])] };
      replaced.set(node, r);
    }
    return r;
  };
  const after = new Map<NodeProto, NodeProto[]>();
  const insertAfter = (node: NodeProto, ...added: NodeProto[]) => after.set(node, [...(after.get(node) ?? []), ...added]);
  const inputSide: NodeProto[] = [];
  /** Tensors whose type this rewrite changes to float16: their declared value_info would contradict it. */
  const retyped = new Set<string>();

  /** Q/DQ from x to y, its names derived from `tensor` (the ONNX tensor it stands for). */
  const quantizeTensor = (tensor: string, x: string, y: string, scale: number, into: (n: NodeProto) => void) => {
    const s = unique(`${tensor}__scale`);
    const z = unique(`${tensor}__zero_point`);
    const q = unique(`${tensor}__int8`);
    inits.push(floatTensor(s, [], [scale]), int8Tensor(z, [], new Int8Array(1)));
    into({ name: unique(`${tensor}__QuantizeLinear`), opType: 'QuantizeLinear', input: [x, s, z], output: [q] });
    into({ name: unique(`${tensor}__DequantizeLinear`), opType: 'DequantizeLinear', input: [q, s, z], output: [y] });
  };
  const cast = (x: string, y: string, to: number): NodeProto => ({
    name: unique(`${x}__CastTo${to === DataType.FLOAT16 ? 'Float16' : 'Float32'}`), opType: 'Cast', input: [x], output: [y], attribute: [makeAttr.int('to', to)],
  });

  // Output side first: which tensors already arrive as int8 (Q/DQ) or as float16.
  const int8Ready = new Set<string>();
  const halfOf = new Map<string, string>();
  const groups = new Map<Layer, NodeProto[]>();
  for (const l of layers) {
    const p = precisionOf(l);
    const node = graph.nodes[l.nodeIndex];
    const fused = fusedNodes(graph, node, l.output, l.fusedOutput);
    groups.set(l, fused);
    if (p === 'fp32') continue;
    const producer = graph.producer.get(l.fusedOutput)!;
    const e = edit(producer);
    if (p === 'int8') {
      const pre = unique(`${l.fusedOutput}__float`);
      e.output = e.output!.map((o) => (o === l.fusedOutput ? pre : o));
      const added: NodeProto[] = [];
      quantizeTensor(l.fusedOutput, pre, l.fusedOutput, scaleFromAmax(amax[l.fusedOutput]), (n) => added.push(n));
      insertAfter(producer, ...added);
      int8Ready.add(l.fusedOutput);
    } else {
      // mixed: the fp32 result of the int8 kernel rounded to fp16; fp16: the group already computes in float16.
      const half = unique(`${l.fusedOutput}__float16`);
      if (p === 'mixed') {
        const pre = unique(`${l.fusedOutput}__float`);
        e.output = e.output!.map((o) => (o === l.fusedOutput ? pre : o));
        insertAfter(producer, cast(pre, half, DataType.FLOAT16), cast(half, l.fusedOutput, DataType.FLOAT));
      } else {
        e.output = e.output!.map((o) => (o === l.fusedOutput ? half : o));
        insertAfter(producer, cast(half, l.fusedOutput, DataType.FLOAT));
      }
      halfOf.set(l.fusedOutput, half);
    }
  }

  const sharedInputs = new Map<string, string>();
  const int8Input = (tensor: string): string => {
    if (int8Ready.has(tensor)) return tensor;
    let y = sharedInputs.get(`int8:${tensor}`);
    if (!y) {
      y = unique(`${tensor}__qdq`);
      quantizeTensor(tensor, tensor, y, scaleFromAmax(amax[tensor]), (n) => inputSide.push(n));
      sharedInputs.set(`int8:${tensor}`, y);
    }
    return y;
  };
  const halfInput = (tensor: string): string => {
    const ready = halfOf.get(tensor);
    if (ready) return ready;
    let y = sharedInputs.get(`fp16:${tensor}`);
    if (!y) {
      y = unique(`${tensor}__float16`);
      inputSide.push(cast(tensor, y, DataType.FLOAT16));
      sharedInputs.set(`fp16:${tensor}`, y);
    }
    return y;
  };
  const halfConstants = new Map<string, string>();
  const halfConstant = (name: string): string => {
    let h = halfConstants.get(name);
    if (!h) {
      const v = graph.constantValues(name)!;
      h = unique(`${name}__float16`);
      inits.push(halfTensor(h, v.dims, v.data));
      halfConstants.set(name, h);
    }
    return h;
  };
  const isFloatConstant = (name: string) => {
    const t = graph.constantTensor(name);
    return t !== undefined && (t.dataType ?? DataType.FLOAT) === DataType.FLOAT;
  };

  for (const l of layers) {
    const p = precisionOf(l);
    if (p === 'fp32') continue;
    const e = edit(graph.nodes[l.nodeIndex]);
    if (readsInt8(p)) {
      e.input![0] = int8Input(l.input);
      if (l.weightIsConstant) {
        const v = graph.constantValues(l.weight)!;
        const w = quantizePerChannel(v.data, v.dims, l.weightAxis);
        const qName = unique(`${l.weight}__int8`);
        const sName = unique(`${l.weight}__scales`);
        const zName = unique(`${l.weight}__zero_points`);
        const dq = unique(`${l.weight}__dequantized`);
        inits.push(int8Tensor(qName, v.dims, w.q), floatTensor(sName, [w.scales.length], w.scales), int8Tensor(zName, [w.scales.length], new Int8Array(w.scales.length)));
        inputSide.push({ name: unique(`${l.weight}__DequantizeLinear`), opType: 'DequantizeLinear', input: [qName, sName, zName], output: [dq], attribute: [makeAttr.int('axis', l.weightAxis)] });
        e.input![1] = dq;
      } else {
        e.input![1] = int8Input(l.weight);
      }
      continue;
    }
    // fp16: the layer node and its fused group in float16.
    const group = [graph.nodes[l.nodeIndex], ...groups.get(l)!];
    const inGroup = new Set(group.flatMap((n) => n.output ?? []));
    for (const n of group) {
      const g = edit(n);
      g.input = g.input!.map((x) => {
        if (!x || inGroup.has(x)) return x;
        if (isFloatConstant(x)) return halfConstant(x);
        if (graph.isConstant(x)) return x;
        return halfInput(x);
      });
      for (const o of n.output ?? []) if (o !== l.fusedOutput) retyped.add(o);
    }
  }

  const nodes: NodeProto[] = [...inputSide];
  for (const n of graph.nodes) nodes.push(replaced.get(n) ?? n, ...(after.get(n) ?? []));
  const g = model.graph!;
  const outputs = g.output ?? [];
  const live = liveNodes(nodes, outputs.map((o) => o.name ?? ''));
  const used = new Set(live.flatMap(allInputs));
  for (const o of outputs) used.add(o.name ?? '');
  const initializer = [...(g.initializer ?? []), ...inits].filter((t) => used.has(t.name ?? ''));
  const keptInit = new Set(initializer.map((t) => t.name));
  const keepInfo = (v: ValueInfoProto) => !retyped.has(v.name ?? '');
  return {
    model: {
      ...model,
      producerName: 'trtmix',
      graph: {
        ...g,
        node: topologicalSort({ node: live }),
        initializer,
        // IR < 4 lists initializers among the inputs; those replaced by quantized copies go with them.
        input: (g.input ?? []).filter((v) => !graph.initializers.has(v.name ?? '') || keptInit.has(v.name)),
        valueInfo: (g.valueInfo ?? []).filter(keepInfo),
      },
    },
    warnings,
  };
}

/** Nodes that contribute to a graph output (drops the Constant nodes of weights this rewrite replaced). */
function liveNodes(nodes: NodeProto[], graphOutputs: string[]): NodeProto[] {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));
  const keep = new Array(nodes.length).fill(false);
  const stack = graphOutputs.filter((o) => producer.has(o)).map((o) => producer.get(o)!);
  while (stack.length > 0) {
    const i = stack.pop()!;
    if (keep[i]) continue;
    keep[i] = true;
    for (const x of nodes[i].input ?? []) {
      const p = x ? producer.get(x) : undefined;
      if (p !== undefined && !keep[p]) stack.push(p);
    }
    // A node with a subgraph reads outer tensors the input list does not name.
    for (const a of nodes[i].attribute ?? []) if (a.g || (a.graphs && a.graphs.length > 0)) nodes.forEach((_, j) => (keep[j] = true));
  }
  return nodes.filter((_, i) => keep[i]);
}

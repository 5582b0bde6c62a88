/**
 * The model as TensorRT would run it: ONNX nodes grouped into engine kernels. Policy-independent, so the
 * plan is built once per model and every policy is then priced on it.
 *
 * TensorRT semantics (DESIGN.md, "Actions"): a quantizable layer is one kernel; pointwise ops (activations,
 * BatchNormalization, elementwise arithmetic, residual adds) fuse into the kernel of their latest producer and
 * cost only the extra operands they read; other ops (pooling, reductions, softmax, transposes, resizes) are
 * kernels of their own that follow the precision of the tensor they read; shape-only ops cost nothing.
 */
import type { Layer } from '../onnx/layer-types.ts';

export interface GraphNode {
  name: string;
  op: string;
  /** Input tensor names (constants may appear; only tensors with an element count are activations). */
  inputs: string[];
  outputs: string[];
  /** Set for quantizable layers. */
  layer?: Layer;
}

/** A model reduced to what latency needs. */
export interface LatencyGraph {
  /** Topological order. */
  nodes: GraphNode[];
  /** Elements per sample of every floating-point activation tensor (graph inputs included, batch excluded). */
  tensorElems: Map<string, number>;
  inputs: string[];
  outputs: string[];
  /** Quantizable layers in topological order. */
  layers: Layer[];
}

export type KernelKind = 'layer' | 'pointwise' | 'standalone' | 'concat';

export interface Kernel {
  id: number;
  kind: KernelKind;
  layer?: Layer;
  /** ONNX nodes in this kernel, first is the root. */
  nodes: string[];
  op: string;
  /** Activation tensors read from other kernels or graph inputs; reads[0] is the primary input. */
  reads: string[];
  /** reads[0..ownReads) are the root node's inputs; later ones are operands of fused pointwise ops. */
  ownReads: number;
  /** Activation tensors this kernel writes for other kernels or as graph outputs. */
  writes: string[];
  /** Has no int8 implementation (normalization layers, recurrences): runs fp16 when its input is int8. */
  floatOnly: boolean;
  /** The quantizable layer this kernel's time is reported under. */
  owner: string;
}

export interface KernelPlan {
  kernels: Kernel[];
  /** Kernel id producing each activation tensor (graph inputs have none). */
  producer: Map<string, number>;
  tensorElems: Map<string, number>;
  /** Graph outputs after resolving shape-only aliases. */
  outputs: string[];
  layers: Layer[];
}

/** Ops that only change how a tensor is viewed. */
export const SHAPE_OPS = new Set([
  'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout', 'Shape', 'Size', 'Constant', 'ConstantOfShape',
]);

/** Ops TensorRT fuses into the kernel that produces their input (pointwise fusion). */
export const POINTWISE_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Reciprocal', 'Neg', 'Abs', 'Exp', 'Log', 'Erf', 'Sin', 'Cos',
  'Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh',
  'Softplus', 'Softsign', 'Gelu', 'Mish', 'ThresholdedRelu', 'BatchNormalization', 'Min', 'Max', 'Where',
  'Floor', 'Ceil', 'Round', 'Sign', 'Cast', 'Not', 'Equal', 'Less', 'Greater', 'And', 'Or',
]);

/**
 * Standalone ops run in the precision of the tensor they read (the "neighbouring precision"): pooling,
 * transposes, slices, resizes move int8 bytes as they are; reductions and softmax read and write int8 and
 * compute in float inside the kernel (TensorRT API, nvinfer1::ReduceOperation: "TensorRT usually performs
 * reduction for kINT8 via kFLOAT or kHALF"; attention softmax sits inside fused Myelin kernels). The exceptions
 * below have no int8 implementation: after an int8 producer they run in fp16 behind a reformat.
 */
export const FLOAT_ONLY_OPS = new Set([
  'LayerNormalization', 'InstanceNormalization', 'GroupNormalization', 'LpNormalization', 'LRN',
  'LSTM', 'GRU', 'RNN', 'NonMaxSuppression', 'TopK', 'CumSum', 'Einsum', 'GridSample', 'RoiAlign',
]);

/** Groups nodes into kernels. Tensors without an element count (shape arithmetic, constants) are ignored. */
export function planKernels(graph: LatencyGraph): KernelPlan {
  const { tensorElems } = graph;
  const alias = new Map<string, string>();
  const resolve = (t: string): string => {
    let cur = t;
    for (let next = alias.get(cur); next !== undefined; next = alias.get(cur)) cur = next;
    return cur;
  };
  const graphInputs = new Set(graph.inputs);
  const producer = new Map<string, number>();
  const kernels: Kernel[] = [];
  const isActivation = (t: string): boolean => tensorElems.has(t) && (producer.has(t) || graphInputs.has(t));

  for (const node of graph.nodes) {
    const acts = [...new Set(node.inputs.map(resolve).filter(isActivation))];
    const floatOutputs = node.outputs.filter((t) => tensorElems.has(t));
    if (node.layer) {
      const k = newKernel(kernels, 'layer', node, acts);
      k.layer = node.layer;
      k.owner = node.layer.name;
      for (const t of node.outputs) producer.set(t, k.id);
      continue;
    }
    if (floatOutputs.length === 0 || acts.length === 0) continue; // shape arithmetic or constant folding
    if (SHAPE_OPS.has(node.op)) {
      for (const t of floatOutputs) alias.set(t, acts[0]);
      continue;
    }
    if (POINTWISE_OPS.has(node.op)) {
      const producers = acts.map((t) => producer.get(t)).filter((id): id is number => id !== undefined);
      const host = producers.length > 0 ? kernels[Math.max(...producers)] : undefined;
      if (host && host.kind !== 'concat') {
        host.nodes.push(node.name);
        for (const t of acts) if (producer.get(t) !== host.id && !host.reads.includes(t)) host.reads.push(t);
        for (const t of node.outputs) producer.set(t, host.id);
        continue;
      }
      const k = newKernel(kernels, 'pointwise', node, acts);
      for (const t of node.outputs) producer.set(t, k.id);
      continue;
    }
    const k = newKernel(kernels, node.op === 'Concat' ? 'concat' : 'standalone', node, acts);
    k.floatOnly = FLOAT_ONLY_OPS.has(node.op);
    for (const t of node.outputs) producer.set(t, k.id);
  }

  const outputs = [...new Set(graph.outputs.map(resolve).filter((t) => producer.has(t)))];
  markWrites(kernels, producer, outputs);
  assignOwners(kernels, producer, graph.layers);
  return { kernels, producer, tensorElems, outputs, layers: graph.layers };
}

function newKernel(kernels: Kernel[], kind: KernelKind, node: GraphNode, reads: string[]): Kernel {
  const k: Kernel = {
    id: kernels.length, kind, nodes: [node.name], op: node.op, reads: [...reads], ownReads: reads.length, writes: [], floatOnly: false, owner: '',
  };
  kernels.push(k);
  return k;
}

function markWrites(kernels: Kernel[], producer: Map<string, number>, outputs: string[]): void {
  const needed = new Set<string>(outputs);
  for (const k of kernels) for (const t of k.reads) needed.add(t);
  for (const t of needed) {
    const id = producer.get(t);
    if (id !== undefined && !kernels[id].writes.includes(t)) kernels[id].writes.push(t);
  }
}

/**
 * A non-layer kernel is reported under the layer whose output it consumes (it follows that layer's
 * precision); kernels that read only graph inputs go to the next layer, or the last one if none follows.
 */
function assignOwners(kernels: Kernel[], producer: Map<string, number>, layers: Layer[]): void {
  const pending: Kernel[] = [];
  for (const k of kernels) {
    if (k.kind === 'layer') {
      for (const p of pending) p.owner = k.owner;
      pending.length = 0;
      continue;
    }
    const src = k.reads.map((t) => producer.get(t)).find((id) => id !== undefined);
    if (src !== undefined && kernels[src].owner) k.owner = kernels[src].owner;
    else pending.push(k);
  }
  const last = layers.length > 0 ? layers[layers.length - 1].name : '';
  for (const p of pending) p.owner = last;
}

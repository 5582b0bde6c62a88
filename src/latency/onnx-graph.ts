/**
 * Builds the latency view of an ONNX model: which tensors are floating-point activations and how many
 * elements each holds per sample. Element types are inferred by propagation (exports rarely carry value_info),
 * sizes are probed by running the model once in onnxruntime at batch 1.
 */
import type { ModelProto, NodeProto } from '../onnx/model.ts';
import { DataType } from '../onnx/model.ts';
import { Graph, trtLayerName } from '../onnx/graph.ts';
import { attr, attrInt } from '../onnx/tensor.ts';
import { probeTensors } from '../onnx/runtime.ts';
import { zeroFeeds } from '../onnx/layers.ts';
import type { Layer } from '../onnx/layer-types.ts';
import type { LatencyGraph } from './graph.ts';

const FLOAT_TYPES = new Set<number>([DataType.FLOAT]);
const BOOL_OPS = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Not', 'Xor', 'IsNaN', 'IsInf']);
const INT64_OPS = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'TopK_indices']);

/** Element type of every tensor the graph names, by forward propagation from inputs, initializers and op rules. */
export function inferElemTypes(graph: Graph): Map<string, number> {
  const types = new Map<string, number>();
  for (const [name, t] of graph.initializers) types.set(name, t.dataType ?? 0);
  for (const v of graph.inputs) types.set(v.name ?? '', v.type?.tensorType?.elemType ?? 0);
  for (const node of graph.nodes) {
    const outType = outputType(node, types);
    for (const o of node.output ?? []) if (o) types.set(o, outType);
  }
  return types;
}

function outputType(node: NodeProto, types: Map<string, number>): number {
  const op = node.opType ?? '';
  const inputs = node.input ?? [];
  if (op === 'Constant') return attr(node, 'value')?.t?.dataType ?? 0;
  if (op === 'Cast') return attrInt(node, 'to', 0);
  if (op === 'ConstantOfShape') return attr(node, 'value')?.t?.dataType ?? DataType.FLOAT;
  if (op === 'DequantizeLinear') return DataType.FLOAT;
  if (op === 'QuantizeLinear') return (inputs[2] && types.get(inputs[2])) || DataType.UINT8;
  if (BOOL_OPS.has(op)) return DataType.BOOL;
  if (INT64_OPS.has(op)) return DataType.INT64;
  if (op === 'Where') return types.get(inputs[1] ?? '') ?? 0;
  for (const i of inputs) {
    const t = i ? types.get(i) : undefined;
    if (t) return t;
  }
  return 0;
}

const prod = (xs: number[]): number => xs.reduce((a, b) => a * b, 1);

/** Input shapes with the batch dimension set to 1 wherever the model leaves it dynamic. */
export function batchOneShapes(graph: Graph, inputShapes: Record<string, number[]>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, dims] of Object.entries(inputShapes)) {
    const declared = graph.declaredShape(name);
    const fixedBatch = declared && typeof declared[0] === 'number' && (declared[0] as number) > 0;
    out[name] = fixedBatch ? dims : [1, ...dims.slice(1)];
  }
  return out;
}

/**
 * The LatencyGraph of a model whose layers were discovered with `discoverLayers`. Probes every float tensor
 * once (zeros as input); `inputShapes` may carry any batch, sizes are taken at batch 1.
 */
export async function buildLatencyGraph(model: ModelProto, graph: Graph, layers: Layer[], inputShapes: Record<string, number[]>): Promise<LatencyGraph> {
  const types = inferElemTypes(graph);
  const shapes = batchOneShapes(graph, inputShapes);
  const floatOutputs: string[] = [];
  for (const node of graph.nodes) {
    if (node.opType === 'Constant') continue;
    for (const o of node.output ?? []) if (o && FLOAT_TYPES.has(types.get(o) ?? 0) && !graph.initializers.has(o)) floatOutputs.push(o);
  }
  const probed = await probeTensors(model, zeroFeeds(graph, shapes), floatOutputs);
  const tensorElems = new Map<string, number>();
  for (const [name, dims] of Object.entries(shapes)) if (FLOAT_TYPES.has(types.get(name) ?? 0)) tensorElems.set(name, prod(dims));
  for (const name of floatOutputs) {
    // Constant-folded values (weights computed in the graph) are not activations; onnxruntime still probes them,
    // but they are recognisable by having no dependency on a graph input.
    if (!dependsOnInput(graph, name)) continue;
    tensorElems.set(name, prod(probed[name].dims));
  }
  const byName = new Map(layers.map((l) => [l.name, l]));
  return {
    nodes: graph.nodes.map((n) => {
      const name = trtLayerName(n);
      const layer = byName.get(name);
      return { name, op: n.opType ?? '', inputs: (n.input ?? []).filter(Boolean), outputs: (n.output ?? []).filter(Boolean), ...(layer ? { layer } : {}) };
    }),
    tensorElems,
    inputs: graph.inputs.map((v) => v.name ?? ''),
    outputs: graph.outputs.map((v) => v.name ?? ''),
    layers,
  };
}

const dependsCache = new WeakMap<Graph, Map<string, boolean>>();

function dependsOnInput(graph: Graph, tensor: string): boolean {
  let memo = dependsCache.get(graph);
  if (!memo) {
    memo = new Map();
    const inputs = new Set(graph.inputs.map((v) => v.name ?? ''));
    for (const node of graph.nodes) {
      const dep = (node.input ?? []).some((i) => i && (inputs.has(i) || memo!.get(i) === true));
      for (const o of node.output ?? []) if (o) memo.set(o, dep);
    }
    dependsCache.set(graph, memo);
  }
  return memo.get(tensor) === true;
}

/**
 * What the placement needs to know about ONNX ops: element types of every tensor (exports rarely carry value_info
 * for intermediate tensors, so they are inferred forward from inputs, initializers and each op's type rule), which
 * ops have a float16 form, which only move data, and which are exact on float16 values.
 */
import type { NodeProto } from '../onnx/model.ts';
import { DataType } from '../onnx/model.ts';
import type { Graph } from '../onnx/graph.ts';
import { attr, attrInt } from '../onnx/tensor.ts';

/** Unknown type: a tensor the rules cannot type is never retyped, cast or quantized. */
export const UNKNOWN_TYPE = 0;

const BOOL_OUT = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);
const INT64_OUT = new Set(['Shape', 'Size', 'NonZero', 'ArgMax', 'ArgMin', 'NonMaxSuppression']);
/** Ops whose first output has the type of their first input; the others follow their own rule below. */
const SECOND_OUTPUT_INT64 = new Set(['TopK', 'MaxPool', 'Unique']);

function nodeOutputTypes(node: NodeProto, typeOf: (name: string) => number): number[] {
  const op = node.opType ?? '';
  const ins = node.input ?? [];
  const outs = node.output ?? [];
  const first = ins.length > 0 && ins[0] ? typeOf(ins[0]) : UNKNOWN_TYPE;
  const all = (t: number) => outs.map(() => t);
  if (node.domain && node.domain !== 'ai.onnx') return all(UNKNOWN_TYPE);
  if ((node.attribute ?? []).some((a) => a.g || (a.graphs && a.graphs.length > 0))) return all(UNKNOWN_TYPE);
  switch (op) {
    case 'Constant': return all(attr(node, 'value')?.t?.dataType ?? (attr(node, 'value_float') || attr(node, 'value_floats') ? DataType.FLOAT : UNKNOWN_TYPE));
    case 'Cast': return all(attrInt(node, 'to', UNKNOWN_TYPE));
    case 'CastLike': return all(typeOf(ins[1] ?? ''));
    case 'ConstantOfShape': return all(attr(node, 'value')?.t?.dataType ?? DataType.FLOAT);
    case 'EyeLike': case 'RandomNormalLike': case 'RandomUniformLike': return all(attrInt(node, 'dtype', first));
    case 'RandomNormal': case 'RandomUniform': return all(attrInt(node, 'dtype', DataType.FLOAT));
    case 'DequantizeLinear': return all(DataType.FLOAT);
    case 'QuantizeLinear': return all((ins[2] && typeOf(ins[2])) || DataType.UINT8);
    case 'Where': return all(typeOf(ins[1] ?? ''));
    case 'OneHot': return all(typeOf(ins[2] ?? ''));
    case 'Dropout': return outs.map((_, i) => (i === 0 ? first : DataType.BOOL));
    default:
      if (BOOL_OUT.has(op)) return all(DataType.BOOL);
      if (INT64_OUT.has(op)) return all(DataType.INT64);
      if (SECOND_OUTPUT_INT64.has(op)) return outs.map((_, i) => (i === 0 ? first : DataType.INT64));
      return all(first);
  }
}

const typeCache = new WeakMap<Graph, Map<string, number>>();

/** Element type of every tensor the graph names (declared types win over inferred ones). */
export function elementTypes(graph: Graph): Map<string, number> {
  let types = typeCache.get(graph);
  if (types) return types;
  const t = new Map<string, number>();
  types = t;
  const declared = (name: string) => graph.valueInfo.get(name)?.type?.tensorType?.elemType ?? UNKNOWN_TYPE;
  for (const [name, init] of graph.initializers) t.set(name, init.dataType ?? DataType.FLOAT);
  for (const v of graph.inputs) t.set(v.name ?? '', v.type?.tensorType?.elemType ?? UNKNOWN_TYPE);
  const typeOf = (name: string) => t.get(name) ?? UNKNOWN_TYPE;
  for (const node of graph.nodes) {
    const inferred = nodeOutputTypes(node, typeOf);
    (node.output ?? []).forEach((o, i) => {
      if (o) t.set(o, declared(o) || inferred[i] || UNKNOWN_TYPE);
    });
  }
  typeCache.set(graph, types);
  return types;
}

/** Ops with a float16 form at opset >= 13 for every float input (ONNX type constraints); they may run in FP16. */
export const FP16_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Reciprocal', 'Neg', 'Abs', 'Exp', 'Log', 'Erf', 'Sin', 'Cos', 'Tan', 'Mod',
  'Floor', 'Ceil', 'Round', 'Sign', 'Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'ThresholdedRelu', 'Gelu',
  'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Softplus', 'Softsign', 'Mish', 'Shrink', 'Clip', 'Min', 'Max',
  'Sum', 'Mean', 'Where', 'BatchNormalization', 'LayerNormalization', 'InstanceNormalization', 'GroupNormalization',
  'LpNormalization', 'MeanVarianceNormalization', 'LRN', 'Softmax', 'LogSoftmax', 'Hardmax', 'AveragePool',
  'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'GlobalLpPool', 'ReduceMean', 'ReduceSum', 'ReduceMax',
  'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'Pad',
  'Resize', 'Einsum', 'ScatterND', 'ScatterElements', 'Trilu', 'DepthToSpace', 'SpaceToDepth',
]);

/**
 * Ops that only move or select values: in the exported graph they keep the type of the data they read (no Cast
 * is placed before them), so an int8 layer's result reaches a Q/DQ through them as TensorRT propagates Q/DQ.
 */
export const DATA_MOVEMENT_OPS = new Set([
  'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Identity', 'Slice', 'Split', 'Gather', 'GatherElements',
  'GatherND', 'Expand', 'Tile', 'Concat', 'MaxPool', 'ReverseSequence', 'Compress',
]);

/** Data-movement ops that keep every value and its count: a tensor and what they make of it share one amax. */
export const VALUE_PRESERVING_OPS = new Set(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Identity']);

/** Ops whose output is exactly representable in float16 when their inputs are: no rounding to simulate. */
export const FP16_EXACT_OPS = new Set([
  ...DATA_MOVEMENT_OPS, 'Relu', 'Abs', 'Neg', 'Max', 'Min', 'Clip', 'Sign', 'Floor', 'Ceil', 'Round', 'Where',
  'GlobalMaxPool', 'ReduceMax', 'ReduceMin', 'DepthToSpace', 'SpaceToDepth',
]);

/** Float inputs that stay float32 when their op runs in FP16 (ONNX keeps them float: Resize's roi and scales). */
export const FLOAT32_PARAMETER_INPUTS: Readonly<Record<string, readonly number[]>> = { Resize: [1, 2], Upsample: [1], Dropout: [1] };

/** Ops that read a tensor's shape, not its values: any element type will do. */
export const SHAPE_READERS = new Set(['Shape', 'Size']);

/** Reductions whose sum can overflow FP16 even when their inputs and outputs stay small (AutoCast's blind spot). */
export const SUM_REDUCTIONS: Readonly<Record<string, 'sum' | 'square'>> = {
  ReduceSum: 'sum', ReduceMean: 'sum', ReduceL1: 'sum', ReduceLogSum: 'sum', GlobalAveragePool: 'sum',
  ReduceL2: 'square', ReduceSumSquare: 'square',
};

/**
 * Elementwise ops TensorRT fuses into one kernel: inside such a chain the values stay in registers, so the
 * simulation rounds to float16 only where a chain writes memory (see src/quant/rewrite.ts).
 */
export const ELEMENTWISE_OPS = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sqrt', 'Reciprocal', 'Neg', 'Abs', 'Exp', 'Log', 'Erf', 'Sin', 'Cos', 'Tan', 'Mod',
  'Floor', 'Ceil', 'Round', 'Sign', 'Relu', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'ThresholdedRelu', 'Gelu',
  'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Softplus', 'Softsign', 'Mish', 'Shrink', 'Clip', 'Min', 'Max',
  'Sum', 'Mean', 'Where', 'BatchNormalization',
]);

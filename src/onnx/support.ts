/**
 * Models that are not a plain FP32 graph, and what trtmix does with them:
 *   - already quantized (QuantizeLinear/DequantizeLinear, QLinear*, *Integer ops): refused. trtmix decides where
 *     INT8 goes starting from the FP32 model; a model whose INT8 placement is already fixed has nothing to search,
 *     and its Q/DQ scales would contradict trtmix's calibration.
 *   - weights or activations in float16 (a `.half()` export): refused. The FP32 reference every drop is measured
 *     against does not exist in such a model, and FP16 is one of the precisions trtmix decides.
 *   - quantizable layers inside If/Loop/Scan bodies (detection post-processing): kept in FP32 and listed, so that
 *     `info` can say so; only layers of the main graph are decided.
 */
import type { GraphProto, ModelProto, NodeProto } from './model.ts';
import { DataType } from './model.ts';
import { subgraphsOf, trtLayerName } from './graph.ts';
import { QUANTIZABLE_OPS, type QuantizableOp } from './layer-types.ts';
import { UserError } from '../errors.ts';

/** Ops of an already quantized model (QDQ format, QOperator format, onnxruntime's quantized contrib ops). */
const QUANTIZED_OPS = new Set([
  'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'MatMulInteger', 'ConvInteger',
  'QLinearAdd', 'QLinearMul', 'QLinearSigmoid', 'QLinearLeakyRelu', 'QLinearAveragePool', 'QLinearGlobalAveragePool', 'QLinearConcat',
  'QLinearSoftmax', 'QGemm', 'QAttention', 'DynamicQuantizeMatMul', 'MatMulIntegerToFloat', 'MatMulNBits', 'QOrderedMatMul',
]);

function allNodes(g: GraphProto | undefined, visit: (n: NodeProto, parent?: NodeProto) => void, parent?: NodeProto): void {
  for (const n of g?.node ?? []) {
    visit(n, parent);
    for (const sub of subgraphsOf(n)) allNodes(sub, visit, parent ?? n);
  }
}

const isQuantizable = (n: NodeProto) => (!n.domain || n.domain === 'ai.onnx') && QUANTIZABLE_OPS.includes(n.opType as QuantizableOp);

/** Refuses the models trtmix does not search (see the file comment), each with one line. */
export function checkSearchable(model: ModelProto): void {
  const quantized = new Map<string, number>();
  allNodes(model.graph, (n) => {
    if (QUANTIZED_OPS.has(n.opType ?? '')) quantized.set(n.opType!, (quantized.get(n.opType!) ?? 0) + 1);
  });
  if (quantized.size > 0) {
    const found = [...quantized].map(([op, k]) => `${k} ${op}`).join(', ');
    throw new UserError(`the model is already quantized (${found}); trtmix decides per layer where INT8 goes, starting from the FP32 model: pass the model as exported before quantization`);
  }
  const g = model.graph!;
  const half = (t: number | undefined) => t === DataType.FLOAT16 || t === DataType.BFLOAT16;
  const halfInput = (g.input ?? []).find((v) => half(v.type?.tensorType?.elemType));
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const halfWeight = (g.node ?? []).filter(isQuantizable).find((n) => half(inits.get(n.input?.[1] ?? '')?.dataType));
  if (halfInput || halfWeight) {
    const what = halfWeight ? `the weights of ${trtLayerName(halfWeight)} are float16` : `input ${halfInput!.name} is float16`;
    throw new UserError(`the model computes in float16 (${what}); trtmix measures every precision against the FP32 model and decides itself which layers run in FP16: export it in float32 (model.float() before torch.onnx.export)`);
  }
}

export interface ControlFlowLayer {
  /** TensorRT layer name of the quantizable node inside the body. */
  name: string;
  op: QuantizableOp;
  /** The If/Loop/Scan node of the main graph that holds it. */
  parent: string;
  parentOp: string;
}

/** Quantizable nodes inside If/Loop/Scan bodies: they stay FP32 (see the file comment). */
export function controlFlowLayers(model: ModelProto): ControlFlowLayer[] {
  const out: ControlFlowLayer[] = [];
  allNodes(model.graph, (n, parent) => {
    if (parent && isQuantizable(n)) out.push({ name: trtLayerName(n), op: n.opType as QuantizableOp, parent: trtLayerName(parent), parentOp: parent.opType ?? '' });
  });
  return out;
}

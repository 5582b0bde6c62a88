/** What layer discovery (src/onnx/layers.ts) reports for each quantizable ONNX node. */

export type QuantizableOp = 'Conv' | 'ConvTranspose' | 'Gemm' | 'MatMul';
export const QUANTIZABLE_OPS: readonly QuantizableOp[] = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'];

/** Activations TensorRT fuses into the producing layer. */
export type FusedActivation = 'relu' | 'relu6' | 'clip' | 'hardswish' | 'hardsigmoid' | 'sigmoid' | 'swish' | 'leakyrelu' | 'tanh' | 'gelu';

export interface Layer {
  /** TensorRT layer name: the ONNX node name, or `node_of_<first output>` when the node has none. */
  name: string;
  /** Position among quantizable layers, in topological order. */
  index: number;
  /** Index of the node in the model's topologically sorted node list. */
  nodeIndex: number;
  op: QuantizableOp;
  /** Activation input tensor (the one int8 quantizes per tensor). */
  input: string;
  /** Second operand: a weight (constant) or, for MatMul between activations, another activation. */
  weight: string;
  /** True when the second operand is a constant (initializer or Constant node): quantized per output channel. */
  weightIsConstant: boolean;
  /** Optional bias input (Conv / ConvTranspose / Gemm C). */
  bias?: string;
  /** Direct output of the node. */
  output: string;
  /** Output after the fused activation (what the layer hands to the next layer); equals `output` without one. */
  fusedOutput: string;
  activation?: FusedActivation;
  /** Known output bound of the fused activation, e.g. [0, 6] for ReLU6; used to report wasted int8 range. */
  activationRange?: [number, number];
  /** Shapes (batch included) as probed with onnxruntime for the reference input shape. */
  inputShape: number[];
  weightShape: number[];
  outputShape: number[];
  inChannels: number;
  outChannels: number;
  kernel: number[];
  stride: number[];
  dilation: number[];
  groups: number;
  depthwise: boolean;
  /** Axis of the weight tensor that indexes output channels (per-channel quantization axis). */
  weightAxis: number;
  /** Multiply-accumulates for one sample (batch 1). */
  macs: number;
  params: number;
}

/**
 * A quantizable layer reduced to its shape, per sample (batch excluded): the common language of the device sweep
 * (bench/latency-sweep.py times these shapes with cuDNN / cuBLAS) and the roofline (which prices a `Layer`).
 * Measured shapes become Layers here, so the fitted model is evaluated on exactly what was timed.
 */
import type { Layer } from '../onnx/layer-types.ts';

interface ConvLikeShape {
  cin: number;
  cout: number;
  /** Input and output spatial size (1-D convolutions have h = oh = 1). */
  h: number;
  w: number;
  oh: number;
  ow: number;
  kernel: [number, number];
  stride: [number, number];
  pads: [number, number];
  dilation: [number, number];
  groups: number;
}

export interface ConvShape extends ConvLikeShape {
  op: 'Conv';
}

export interface ConvTransposeShape extends ConvLikeShape {
  op: 'ConvTranspose';
  outputPadding: [number, number];
}

/** A product with a constant weight: `m` rows per sample of [m, k] x [k, n] (Gemm, Linear, MatMul by a weight). */
export interface LinearShape {
  op: 'Linear';
  m: number;
  k: number;
  n: number;
}

/** A product of two activations (attention): `gemms` independent [m, k] x [k, n] per sample. */
export interface BatchedMatMulShape {
  op: 'MatMul';
  gemms: number;
  m: number;
  k: number;
  n: number;
}

export type LayerShape = ConvShape | ConvTransposeShape | LinearShape | BatchedMatMulShape;

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/** Symmetric padding that reproduces the output size (ONNX keeps pads in an attribute Layer does not carry). */
function padFor(inSize: number, outSize: number, k: number, s: number, d: number): number {
  return Math.max(0, Math.ceil(((outSize - 1) * s + d * (k - 1) + 1 - inSize) / 2));
}

/** The shape of a discovered layer; undefined for what the sweep cannot time (3-D convolutions). */
export function layerShapeOf(l: Layer): LayerShape | undefined {
  if (l.op === 'Conv' || l.op === 'ConvTranspose') {
    const spatial = l.inputShape.length - 2;
    if (spatial < 1 || spatial > 2) return undefined;
    const two = (xs: number[], fill: number): [number, number] => (spatial === 1 ? [fill, xs[0] ?? fill] : [xs[0] ?? fill, xs[1] ?? fill]);
    const [h, w] = two(l.inputShape.slice(2), 1);
    const [oh, ow] = two(l.outputShape.slice(2), 1);
    const kernel = two(l.kernel, 1);
    const stride = two(l.stride, 1);
    const dilation = two(l.dilation, 1);
    const base = { cin: l.inChannels, cout: l.outChannels, h, w, oh, ow, kernel, stride, dilation, groups: l.groups };
    if (l.op === 'Conv') {
      return { op: 'Conv', ...base, pads: [padFor(h, oh, kernel[0], stride[0], dilation[0]), padFor(w, ow, kernel[1], stride[1], dilation[1])] };
    }
    // out = (in - 1) * s - 2p + d (k - 1) + 1 + outputPadding: take the smallest p >= 0 and put the rest in outputPadding.
    const tpad = (i: number, o: number, k: number, s: number, d: number): [number, number] => {
      const full = (i - 1) * s + d * (k - 1) + 1;
      const p = Math.max(0, Math.ceil((full - o) / 2));
      return [p, Math.max(0, o - (full - 2 * p))];
    };
    const [ph, oph] = tpad(h, oh, kernel[0], stride[0], dilation[0]);
    const [pw, opw] = tpad(w, ow, kernel[1], stride[1], dilation[1]);
    return { op: 'ConvTranspose', ...base, pads: [ph, pw], outputPadding: [oph, opw] };
  }
  if (l.op === 'Gemm') return { op: 'Linear', m: 1, k: l.inChannels, n: l.outChannels };
  const out = l.outputShape;
  const n = out[out.length - 1] ?? l.outChannels;
  const k = l.inputShape[l.inputShape.length - 1] ?? l.inChannels;
  if (l.weightIsConstant) return { op: 'Linear', m: Math.max(1, prod(out.slice(1, -1))), k, n };
  return { op: 'MatMul', gemms: Math.max(1, prod(out.slice(1, -2))), m: out.length >= 3 ? out[out.length - 2] : 1, k, n };
}

/** The Layer the roofline prices for a measured shape (as layer discovery would report it at batch 1). */
export function layerFromShape(s: LayerShape, name: string, index = 0): Layer {
  const common = { name, index, nodeIndex: index, input: `${name}.in`, output: `${name}.out`, fusedOutput: `${name}.out` };
  if (s.op === 'Conv' || s.op === 'ConvTranspose') {
    const cinPerGroup = s.cin / s.groups;
    const weightShape = s.op === 'Conv' ? [s.cout, cinPerGroup, ...s.kernel] : [s.cin, s.cout / s.groups, ...s.kernel];
    const area = s.kernel[0] * s.kernel[1];
    const macs = s.op === 'Conv' ? s.oh * s.ow * s.cout * cinPerGroup * area : s.h * s.w * (s.cout / s.groups) * s.cin * area;
    return {
      ...common, op: s.op, weight: `${name}.w`, weightIsConstant: true,
      inputShape: [1, s.cin, s.h, s.w], weightShape, outputShape: [1, s.cout, s.oh, s.ow],
      inChannels: s.cin, outChannels: s.cout, kernel: [...s.kernel], stride: [...s.stride], dilation: [...s.dilation], groups: s.groups,
      depthwise: s.groups > 1 && s.groups === s.cin, weightAxis: s.op === 'Conv' ? 0 : 1, macs, params: prod(weightShape),
    };
  }
  if (s.op === 'Linear') {
    // m = 1 is a classifier head (ONNX Gemm); more rows are tokens or positions (MatMul by a weight, rank 3).
    const gemm = s.m === 1;
    return {
      ...common, op: gemm ? 'Gemm' : 'MatMul', weight: `${name}.w`, weightIsConstant: true,
      inputShape: gemm ? [1, s.k] : [1, s.m, s.k], weightShape: gemm ? [s.n, s.k] : [s.k, s.n], outputShape: gemm ? [1, s.n] : [1, s.m, s.n],
      inChannels: s.k, outChannels: s.n, kernel: [], stride: [], dilation: [], groups: 1, depthwise: false,
      weightAxis: gemm ? 0 : 1, macs: s.m * s.k * s.n, params: s.k * s.n,
    };
  }
  return {
    ...common, op: 'MatMul', weight: `${name}.b`, weightIsConstant: false,
    inputShape: [1, s.gemms, s.m, s.k], weightShape: [1, s.gemms, s.k, s.n], outputShape: [1, s.gemms, s.m, s.n],
    inChannels: s.k, outChannels: s.n, kernel: [], stride: [], dilation: [], groups: 1, depthwise: false,
    weightAxis: 3, macs: s.gemms * s.m * s.k * s.n, params: 0,
  };
}

/** Elements per sample of the activation operands a layer of this shape reads and writes. */
export function shapeElems(s: LayerShape): { reads: number[]; writes: number } {
  switch (s.op) {
    case 'Conv':
    case 'ConvTranspose':
      return { reads: [s.cin * s.h * s.w], writes: s.cout * s.oh * s.ow };
    case 'Linear':
      return { reads: [s.m * s.k], writes: s.m * s.n };
    case 'MatMul':
      return { reads: [s.gemms * s.m * s.k, s.gemms * s.k * s.n], writes: s.gemms * s.m * s.n };
  }
}

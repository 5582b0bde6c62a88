/**
 * How much of a GPU's peak a layer can use, by precision and shape. Pure functions of numbers.
 *
 * The model, and why:
 * - Dense convolutions, Gemm and MatMul run as implicit GEMMs on tensor cores (fp16, int8) or on CUDA cores
 *   (fp32: TensorRT built without TF32). GEMM view: `gemms` independent products (conv groups, attention
 *   heads) of `rows` x `k` by `k` x `n`.
 * - Channel alignment: tensor-core kernels consume channels in vectors. FP16 kernels pad channels to a multiple
 *   of 8 (HWC8 / CHW16 formats, mma k16 / n8 granules); INT8 IMMA kernels pad to 32 (CHW32 format, mma k32).
 *   Padded lanes are wasted work, so a 3-channel stem or a 16-channel bottleneck uses int8 tensor cores
 *   far worse than fp16 ones.
 * - Tile depth: one main-loop step of a GEMM tile consumes 32 (fp16) or 64 (int8) reduction elements; a
 *   reduction shorter than that leaves the step partly empty. Likewise an output-channel tile is at least
 *   16 (fp16) / 32 (int8) wide.
 * - Waves: a 64 x 64 output tile occupies one SM. Small layers (batch 1, late low-resolution stages) have
 *   fewer tiles than SMs; TensorRT splits the reduction (split-K) when it is long enough (>= 256 per
 *   split) to fill more SMs. Idle SMs are lost throughput, the same for every precision.
 * - Depthwise convolutions have one input channel per group: no GEMM for tensor cores to run. They run on
 *   CUDA cores: fp16 as packed half2 (the profile's fp16VectorTflops), fp32 at the FP32 rate, and int8 no
 *   faster than fp16: dp4a needs 4 products summed into one output, which a per-channel filter does not have,
 *   so the best an int8 kernel can do is widen its bytes to half2 in registers and run at the fp16 rate.
 *   They reach about 10% of that peak: measured on an
 *   H200 (bench/latency-gpu-calibration.py, cuDNN, batch 32) 3x3 and 5x5 depthwise layers ran at 12.5-13.6
 *   fp16 TFLOPS of 133.8 and 6.3-6.4 fp32 TFLOPS of 67, moving their bytes at only ~58% of the bandwidth.
 *   Where they are memory bound, TensorRT's int8 depthwise/grouped kernels still stream no more elements per
 *   second than its fp16 ones: users report no INT8 gain for grouped and depthwise networks on every GPU they
 *   tried (github.com/NVIDIA/TensorRT issues 1409, 4529; 2197: MobileNetV3 1286 qps FP16 vs 1280 qps INT8).
 *   So a depthwise layer's int8 activations are priced at the fp16 element rate (activationBytes): int8 buys
 *   it nothing, unlike a dense layer, whose tensor cores run int8 at twice the fp16 rate.
 * - Even a well-shaped kernel reaches only part of the peak (TC_EFFICIENCY): fp16 GEMM 8192^3 measured
 *   0.74-0.77 of the H200's dense peak; fp32 (no TF32) 0.77. The int8 factor is an assumption, lower because
 *   its epilogue requantizes and it has fewer tile shapes: TensorRT int8 speedups over fp16 on large
 *   convolutions are commonly 1.5-1.9x, not the 2x of the datasheets.
 * - Memory streams reach about 80% of the datasheet bandwidth (measured: 88% for a 512 MiB copy and 80%
 *   for an fp16 ReLU on the H200).
 */
import type { Layer } from '../onnx/layer-types.ts';

/** The arithmetic precision a kernel runs in ('mixed' layers compute in int8). */
export type KernelPrecision = 'int8' | 'fp16' | 'fp32';

export const BYTES: Record<KernelPrecision, number> = { int8: 1, fp16: 2, fp32: 4 };

/** Fraction of the peak a large, aligned layer reaches. */
export const TC_EFFICIENCY: Record<KernelPrecision, number> = { int8: 0.65, fp16: 0.75, fp32: 0.75 };
/** Channel vector each precision pads to. */
export const CHANNEL_ALIGN: Record<KernelPrecision, number> = { int8: 32, fp16: 8, fp32: 1 };
/** Reduction elements consumed by one main-loop step of a tile. */
export const MIN_TILE_K: Record<KernelPrecision, number> = { int8: 64, fp16: 32, fp32: 1 };
/** Narrowest output-channel tile. */
export const MIN_TILE_N: Record<KernelPrecision, number> = { int8: 32, fp16: 16, fp32: 1 };
export const TILE_M = 64;
export const TILE_N = 64;
/** Shortest reduction slice worth a split-K partition. */
export const SPLIT_K_MIN = 256;
/** Fraction of the CUDA-core peak a depthwise kernel reaches (measured, see above). */
export const DEPTHWISE_EFFICIENCY = 0.1;
/** Fraction of the datasheet bandwidth a streaming kernel reaches. */
export const MEMORY_EFFICIENCY = 0.8;

/** A layer as a batch of GEMMs, per sample. macs = gemms * rows * n * k. */
export interface GemmShape {
  gemms: number;
  rows: number;
  n: number;
  k: number;
  /** Channels along k that get padded to the precision's vector (k = cin * kernelArea). */
  cin: number;
  kernelArea: number;
  depthwise: boolean;
}

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

/** The GEMM view of a quantizable layer (shapes from layer discovery; batch dimension excluded). */
export function gemmShape(layer: Layer): GemmShape {
  const kernelArea = Math.max(1, prod(layer.kernel));
  const groups = Math.max(1, layer.groups);
  switch (layer.op) {
    case 'Conv': {
      const cin = Math.max(1, layer.inChannels / groups);
      return {
        gemms: groups,
        rows: Math.max(1, prod(layer.outputShape.slice(2))),
        n: Math.max(1, layer.outChannels / groups),
        k: cin * kernelArea,
        cin,
        kernelArea,
        depthwise: layer.depthwise,
      };
    }
    case 'ConvTranspose': {
      // A transposed convolution scatters each input position through the kernel: rows = input positions,
      // n = output channels x kernel taps, k = input channels.
      const cin = Math.max(1, layer.inChannels / groups);
      return {
        gemms: groups,
        rows: Math.max(1, prod(layer.inputShape.slice(2))),
        n: Math.max(1, (layer.outChannels / groups) * kernelArea),
        k: cin,
        cin,
        kernelArea: 1,
        depthwise: layer.depthwise,
      };
    }
    case 'Gemm':
      return { gemms: 1, rows: 1, n: Math.max(1, layer.outChannels), k: Math.max(1, layer.inChannels), cin: Math.max(1, layer.inChannels), kernelArea: 1, depthwise: false };
    case 'MatMul': {
      const out = layer.outputShape;
      const k = Math.max(1, layer.inputShape[layer.inputShape.length - 1] ?? layer.inChannels);
      const n = Math.max(1, out[out.length - 1] ?? layer.outChannels);
      // Rank 2: [batch, K] x [K, N]: one row per sample. Rank >= 3: leading dims after batch are independent
      // products when the second operand is batched too (attention), else extra rows of one product.
      const rowsPerGemm = out.length >= 3 ? Math.max(1, out[out.length - 2]) : 1;
      const leading = out.length >= 3 ? prod(out.slice(1, -2)) : 1;
      const weightBatched = layer.weightShape.length > 2 && prod(layer.weightShape.slice(0, -2)) > 1;
      return weightBatched
        ? { gemms: Math.max(1, leading), rows: rowsPerGemm, n, k, cin: k, kernelArea: 1, depthwise: false }
        : { gemms: 1, rows: Math.max(1, leading * rowsPerGemm), n, k, cin: k, kernelArea: 1, depthwise: false };
    }
  }
}

const ceilTo = (x: number, a: number): number => Math.ceil(x / a) * a;

/** Fraction of tensor-core lanes doing useful work after channel padding and minimum tile sizes. */
export function alignmentUtilization(g: GemmShape, p: KernelPrecision): number {
  const a = CHANNEL_ALIGN[p];
  const kPadded = Math.max(ceilTo(g.cin, a) * g.kernelArea, MIN_TILE_K[p]);
  const nPadded = Math.max(ceilTo(g.n, a), MIN_TILE_N[p]);
  return (g.k / kPadded) * (g.n / nPadded);
}

/** Fraction of SMs busy, given output tiles and split-K, rounded up to whole waves. */
export function waveUtilization(g: GemmShape, batch: number, sms: number): number {
  const tiles = g.gemms * Math.ceil((batch * g.rows) / TILE_M) * Math.ceil(g.n / TILE_N);
  const splitK = Math.max(1, Math.min(Math.floor(g.k / SPLIT_K_MIN), Math.ceil(sms / tiles)));
  const units = tiles * splitK;
  return units / (Math.ceil(units / sms) * sms);
}

/** Bytes per activation element a kernel effectively moves (see the depthwise note above). */
export function activationBytes(g: GemmShape, p: KernelPrecision): number {
  return g.depthwise && p === 'int8' ? BYTES.fp16 : BYTES[p];
}

/** Peak rates of a device, ops/s, as the efficiency model needs them. */
export interface ComputePeaks {
  int8OpsPerS: number;
  fp16FlopsPerS: number;
  fp32FlopsPerS: number;
  fp16VectorFlopsPerS: number;
  sms: number;
}

/** Effective ops/s a layer of this shape reaches at this precision. */
export function effectiveRate(g: GemmShape, p: KernelPrecision, batch: number, peaks: ComputePeaks): number {
  if (g.depthwise) {
    const cuda = p === 'fp32' ? peaks.fp32FlopsPerS : peaks.fp16VectorFlopsPerS;
    return cuda * DEPTHWISE_EFFICIENCY;
  }
  const peak = p === 'int8' ? peaks.int8OpsPerS : p === 'fp16' ? peaks.fp16FlopsPerS : peaks.fp32FlopsPerS;
  return peak * TC_EFFICIENCY[p] * alignmentUtilization(g, p) * waveUtilization(g, batch, peaks.sms);
}

/** Seconds of arithmetic for `macs` multiply-accumulates per sample. */
export function computeSeconds(g: GemmShape, macs: number, p: KernelPrecision, batch: number, peaks: ComputePeaks): number {
  if (macs <= 0) return 0;
  return (2 * macs * batch) / effectiveRate(g, p, batch, peaks);
}

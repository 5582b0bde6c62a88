/**
 * How much of a GPU's peak a layer can use, by precision, op class and shape. Pure functions of numbers.
 *
 * The GEMM view: convolutions, Gemm and MatMul run as implicit GEMMs, `gemms` independent products (conv groups,
 * attention heads) of `rows` x `k` by `k` x `n` per sample. A layer of op class c at precision p costs
 *
 *     fixed_c,p · launch  +  smoothMax(compute, memory; overlap_c,p)
 *     compute = 2 · MACs · batch / (peak_p · compute_c,p · utilization · misaligned_c,p if misaligned)
 *     memory  = bytes / (bandwidth · memory_c,p)
 *
 * with utilization the useful fraction of the tensor-core work: channels padded to the precision's vector (fp16 8,
 * int8 32 — CHW32 / mma k32), reductions shorter than one tile step, partly filled output tiles (tileM x tileN of
 * the class) and the idle SMs of the last wave (split-K fills small layers when the reduction is long). Depthwise
 * convolutions have no GEMM for tensor cores: they run on CUDA cores (fp16 as packed half2, the profile's
 * fp16VectorTflops) at compute_c,p of that peak. smoothMax(a, b; q) = (a^q + b^q)^(1/q): q = 1 adds compute and
 * memory (no overlap), q -> infinity is the classic roofline max.
 *
 * The terms per class and precision are FITTED (bench/latency-fit.ts) to per-kernel times measured with cuDNN /
 * cuBLAS on an H200 (bench/latency-sweep.py, CUDA graphs, channels-last, FP16 and strict FP32 at batch 1 and 32) and
 * stored in efficiency-fit.json; other GPUs use their own datasheet peaks and launch overhead scaled by these
 * fitted fractions. INT8 is NOT fitted (no TensorRT on the device): it takes the fitted FP16 terms with the int8
 * datasheet peak, int8 channel padding, and INT8_RELATIVE_COMPUTE (TensorRT int8 speedups over fp16 on large
 * convolutions are commonly 1.5-1.9x, not the 2x of the datasheets: the epilogue requantizes and there are fewer
 * tile shapes). Depthwise int8 gains nothing: dp4a needs 4 products summed into one output, which a per-channel
 * filter does not have, so TensorRT's int8 depthwise kernels widen to half2 and stream no more elements per second
 * than fp16 ones (github.com/NVIDIA/TensorRT issues 1409, 4529; 2197: MobileNetV3 1286 qps FP16 vs 1280 qps INT8):
 * their activations are priced at fp16 bytes (activationBytes).
 */
import { readFileSync } from 'node:fs';
import type { Layer } from '../onnx/layer-types.ts';

/** The arithmetic precision a kernel runs in ('mixed' layers compute in int8). */
export type KernelPrecision = 'int8' | 'fp16' | 'fp32';
/** Precisions the device sweep measures (int8 needs TensorRT). */
export type FittedPrecision = 'fp16' | 'fp32';

export const BYTES: Record<KernelPrecision, number> = { int8: 1, fp16: 2, fp32: 4 };

/** Layers whose kernels behave differently enough to get their own efficiency terms. */
export type OpClass = 'conv' | 'depthwise' | 'grouped' | 'convTranspose' | 'gemm' | 'attention';
export const OP_CLASSES: readonly OpClass[] = ['conv', 'depthwise', 'grouped', 'convTranspose', 'gemm', 'attention'];

export interface ClassEfficiency {
  /** Fraction of the peak (tensor cores; CUDA cores for depthwise) a well-shaped layer reaches. */
  compute: number;
  /** Fraction of the datasheet bandwidth its memory traffic reaches. */
  memory: number;
  /** Minimum kernel time, in units of the device's launch overhead. */
  fixed: number;
  /** q of smoothMax: 1 = compute and memory add up, large = they overlap fully. */
  overlap: number;
  /** Extra compute efficiency factor of misaligned layers (see `isMisaligned`); 1 = no penalty. */
  misaligned: number;
  /** Output tile the class's kernels work in (rows x output channels). */
  tileM: number;
  tileN: number;
}

export interface EfficiencyModel {
  /** Where the terms come from (a fit and its data, or the datasheet assumptions). */
  source: string;
  /** Whether partly filled output tiles count as wasted work (the fitted model) or only SM waves do. */
  tileFill: boolean;
  classes: Record<FittedPrecision, Record<OpClass, ClassEfficiency>>;
}

/** int8 compute efficiency relative to fp16 (unfitted; see the header). */
export const INT8_RELATIVE_COMPUTE = 0.65 / 0.75;
/** Channel vector each precision pads to. */
export const CHANNEL_ALIGN: Record<KernelPrecision, number> = { int8: 32, fp16: 8, fp32: 1 };
/** Reduction elements consumed by one main-loop step of a tile. */
export const MIN_TILE_K: Record<KernelPrecision, number> = { int8: 64, fp16: 32, fp32: 1 };
/** Narrowest output-channel tile. */
export const MIN_TILE_N: Record<KernelPrecision, number> = { int8: 32, fp16: 16, fp32: 1 };
/** Shortest reduction slice worth a split-K partition. */
export const SPLIT_K_MIN = 256;
/** Fraction of the datasheet bandwidth a streaming (non-layer) kernel reaches: 80% for an fp16 ReLU on the H200. */
export const MEMORY_EFFICIENCY = 0.8;

/**
 * The roofline before it was fitted: hand-set from a few H200 probes and datasheets (bench/latency-gpu-calibration.py):
 * tensor cores at 0.75 of peak, depthwise at 0.1 of the CUDA-core peak, 0.8 of the bandwidth, one launch overhead
 * per kernel, max(compute, memory), 64 x 64 tiles counted by waves only. Kept to report the fit's gain.
 */
export const DATASHEET_EFFICIENCY: EfficiencyModel = (() => {
  const dense: ClassEfficiency = { compute: 0.75, memory: MEMORY_EFFICIENCY, fixed: 1, overlap: Infinity, misaligned: 1, tileM: 64, tileN: 64 };
  const per = (): Record<OpClass, ClassEfficiency> => ({
    conv: dense, grouped: dense, convTranspose: dense, gemm: dense, attention: dense, depthwise: { ...dense, compute: 0.1 },
  });
  return { source: 'datasheet peaks with hand-set efficiencies (before the fit)', tileFill: false, classes: { fp16: per(), fp32: per() } };
})();

/** Checks a parsed efficiency file: every class of both precisions with positive finite terms. */
export function parseEfficiencyModel(raw: unknown, origin: string): EfficiencyModel {
  const m = raw as Partial<EfficiencyModel>;
  if (!m || typeof m !== 'object' || typeof m.source !== 'string' || typeof m.tileFill !== 'boolean' || !m.classes) {
    throw new Error(`${origin}: an efficiency model needs "source", "tileFill" and "classes"`);
  }
  for (const p of ['fp16', 'fp32'] as const) {
    for (const c of OP_CLASSES) {
      const e = m.classes[p]?.[c] as Partial<ClassEfficiency> | undefined;
      for (const f of ['compute', 'memory', 'fixed', 'overlap', 'misaligned', 'tileM', 'tileN'] as const) {
        const v = e?.[f];
        if (typeof v !== 'number' || !(v > 0)) throw new Error(`${origin}: classes.${p}.${c}.${f} must be a positive number`);
      }
    }
  }
  return m as EfficiencyModel;
}

let fitted: EfficiencyModel | undefined;

/** The fitted model shipped in efficiency-fit.json (written by bench/latency-fit.ts). */
export function fittedEfficiency(): EfficiencyModel {
  if (!fitted) {
    const url = new URL('./efficiency-fit.json', import.meta.url);
    fitted = parseEfficiencyModel(JSON.parse(readFileSync(url, 'utf8')), url.pathname);
  }
  return fitted;
}

/** A layer as a batch of GEMMs, per sample. macs = gemms * rows * n * k. */
export interface GemmShape {
  opClass: OpClass;
  gemms: number;
  rows: number;
  n: number;
  k: number;
  /** Channels along k that get padded to the precision's vector (k = cin * kernelArea). */
  cin: number;
  kernelArea: number;
  depthwise: boolean;
  /** Operands that keep kernels off their fast paths (see isMisaligned). */
  misaligned: boolean;
}

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);

export function opClassOf(layer: Layer): OpClass {
  switch (layer.op) {
    case 'Conv':
      return layer.depthwise ? 'depthwise' : layer.groups > 1 ? 'grouped' : 'conv';
    case 'ConvTranspose':
      return 'convTranspose';
    case 'Gemm':
      return 'gemm';
    case 'MatMul':
      return layer.weightIsConstant ? 'gemm' : 'attention';
  }
}

/**
 * Layers off their kernels' fast paths ("misaligned"): dense convolutions with fewer than 8 input channels (image
 * stems: no 16-byte channel vectors, measured 2-6x below the padded estimate), convolutions whose stride differs
 * between height and width (the (2, 1) strides of text recognisers: measured 2-4x slower depthwise kernels), and
 * products whose k or n is not a multiple of 8 (197-token attention: no 16-byte aligned rows for tensor-core loads).
 */
export function isMisaligned(opClass: OpClass, cin: number, k: number, n: number, stride: readonly number[] = []): boolean {
  const asymmetricStride = stride.length === 2 && stride[0] !== stride[1];
  if (opClass === 'conv') return cin < 8 || asymmetricStride;
  if (opClass === 'depthwise' || opClass === 'grouped') return asymmetricStride;
  if (opClass === 'gemm' || opClass === 'attention') return k % 8 !== 0 || n % 8 !== 0;
  return false;
}

/** The GEMM view of a quantizable layer (shapes from layer discovery; batch dimension excluded). */
export function gemmShape(layer: Layer): GemmShape {
  const kernelArea = Math.max(1, prod(layer.kernel));
  const groups = Math.max(1, layer.groups);
  const opClass = opClassOf(layer);
  const shape = (gemms: number, rows: number, n: number, k: number, cin: number, area: number): GemmShape => ({
    opClass, gemms, rows, n, k, cin, kernelArea: area, depthwise: layer.depthwise, misaligned: isMisaligned(opClass, cin, k, n, layer.stride),
  });
  switch (layer.op) {
    case 'Conv': {
      const cin = Math.max(1, layer.inChannels / groups);
      return shape(groups, Math.max(1, prod(layer.outputShape.slice(2))), Math.max(1, layer.outChannels / groups), cin * kernelArea, cin, kernelArea);
    }
    case 'ConvTranspose': {
      // A transposed convolution scatters each input position through the kernel: rows = input positions,
      // n = output channels x kernel taps, k = input channels.
      const cin = Math.max(1, layer.inChannels / groups);
      return shape(groups, Math.max(1, prod(layer.inputShape.slice(2))), Math.max(1, (layer.outChannels / groups) * kernelArea), cin, cin, 1);
    }
    case 'Gemm': {
      const k = Math.max(1, layer.inChannels);
      return shape(1, 1, Math.max(1, layer.outChannels), k, k, 1);
    }
    case 'MatMul': {
      const out = layer.outputShape;
      const k = Math.max(1, layer.inputShape[layer.inputShape.length - 1] ?? layer.inChannels);
      const n = Math.max(1, out[out.length - 1] ?? layer.outChannels);
      // Rank 2: [batch, K] x [K, N]: one row per sample. Rank >= 3: leading dims after batch are independent
      // products when the second operand is batched too (attention), else extra rows of one product.
      const rowsPerGemm = out.length >= 3 ? Math.max(1, out[out.length - 2]) : 1;
      const leading = out.length >= 3 ? prod(out.slice(1, -2)) : 1;
      const weightBatched = layer.weightShape.length > 2 && prod(layer.weightShape.slice(0, -2)) > 1;
      return weightBatched ? shape(Math.max(1, leading), rowsPerGemm, n, k, k, 1) : shape(1, Math.max(1, leading * rowsPerGemm), n, k, k, 1);
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
export function waveUtilization(g: GemmShape, batch: number, sms: number, tileM = 64, tileN = 64): number {
  const tiles = g.gemms * Math.ceil((batch * g.rows) / tileM) * Math.ceil(g.n / tileN);
  const splitK = Math.max(1, Math.min(Math.floor(g.k / SPLIT_K_MIN), Math.ceil(sms / tiles)));
  const units = tiles * splitK;
  return units / (Math.ceil(units / sms) * sms);
}

/** Useful fraction of the output tiles: rows and output channels rounded up to whole tiles. */
export function tileFillUtilization(g: GemmShape, batch: number, tileM: number, tileN: number): number {
  const m = batch * g.rows;
  return (m / ceilTo(m, tileM)) * (g.n / ceilTo(g.n, tileN));
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

/** The terms a precision uses: int8 borrows fp16's (it is not measured). */
export function classEfficiency(model: EfficiencyModel, c: OpClass, p: KernelPrecision): ClassEfficiency {
  return model.classes[p === 'fp32' ? 'fp32' : 'fp16'][c];
}

/** Effective ops/s a layer of this shape reaches at this precision. */
export function effectiveRate(g: GemmShape, p: KernelPrecision, batch: number, peaks: ComputePeaks, model: EfficiencyModel = fittedEfficiency()): number {
  const e = classEfficiency(model, g.opClass, p);
  const misaligned = g.misaligned ? e.misaligned : 1;
  if (g.depthwise) {
    const cuda = p === 'fp32' ? peaks.fp32FlopsPerS : peaks.fp16VectorFlopsPerS;
    return cuda * e.compute * misaligned;
  }
  const peak = p === 'int8' ? peaks.int8OpsPerS : p === 'fp16' ? peaks.fp16FlopsPerS : peaks.fp32FlopsPerS;
  const relative = p === 'int8' ? INT8_RELATIVE_COMPUTE : 1;
  const fill = model.tileFill ? tileFillUtilization(g, batch, e.tileM, e.tileN) : 1;
  return peak * e.compute * relative * misaligned * alignmentUtilization(g, p) * fill * waveUtilization(g, batch, peaks.sms, e.tileM, e.tileN);
}

/** Seconds of arithmetic for `macs` multiply-accumulates per sample. */
export function computeSeconds(g: GemmShape, macs: number, p: KernelPrecision, batch: number, peaks: ComputePeaks, model: EfficiencyModel = fittedEfficiency()): number {
  if (macs <= 0) return 0;
  return (2 * macs * batch) / effectiveRate(g, p, batch, peaks, model);
}

/** (a^q + b^q)^(1/q), computed without overflow; q = Infinity is max(a, b). */
export function smoothMax(a: number, b: number, q: number): number {
  const hi = Math.max(a, b);
  if (hi === 0 || !Number.isFinite(q)) return hi;
  const lo = Math.min(a, b);
  return hi * (1 + (lo / hi) ** q) ** (1 / q);
}

/** What the kernel time of a layer is made of. */
export interface LayerKernelTime {
  computeS: number;
  memoryS: number;
  seconds: number;
}

/** One layer kernel: fixed time plus compute and memory combined by the class's overlap. */
export function layerKernelTime(
  g: GemmShape, macs: number, bytes: number, p: KernelPrecision, batch: number,
  device: ComputePeaks & { memoryBytesPerS: number; launchOverheadS: number }, model: EfficiencyModel = fittedEfficiency(),
): LayerKernelTime {
  const e = classEfficiency(model, g.opClass, p);
  const computeS = computeSeconds(g, macs, p, batch, device, model);
  const memoryS = bytes / (device.memoryBytesPerS * e.memory);
  return { computeS, memoryS, seconds: e.fixed * device.launchOverheadS + smoothMax(computeS, memoryS, e.overlap) };
}

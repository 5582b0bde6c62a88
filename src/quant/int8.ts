/**
 * TensorRT INT8 and FP16 arithmetic, exactly: symmetric int8 (zero point 0), scale = amax / 127, round half to
 * even, clamp to [-128, 127]; per-channel scales for weights along the output-channel axis; FP16 as IEEE half
 * rounding (nearest, ties to even).
 */

export const INT8_MAX = 127;
export const INT8_MIN = -128;
/** Smallest scale written for an all-zero channel or tensor (Q/DQ scales must be positive). */
export const MIN_SCALE = 1e-12;

/** Round half to even, the rounding of ONNX QuantizeLinear and TensorRT. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; ties go to the even neighbour instead.
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function scaleFromAmax(amax: number): number {
  return amax > 0 && Number.isFinite(amax) ? amax / INT8_MAX : MIN_SCALE;
}

export function quantize(x: number, scale: number): number {
  const q = roundHalfEven(x / scale);
  return q < INT8_MIN ? INT8_MIN : q > INT8_MAX ? INT8_MAX : q;
}

export function fakeQuantize(x: number, scale: number): number {
  return quantize(x, scale) * scale;
}

export interface PerChannelWeights {
  /** int8 values in the weight's own layout. */
  q: Int8Array;
  /** One positive scale per output channel. */
  scales: Float32Array;
  axis: number;
}

/** Per-channel symmetric quantization of a weight tensor along `axis` (amax = max |w| of the channel). */
export function quantizePerChannel(w: Float32Array, dims: number[], axis: number): PerChannelWeights {
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const amax = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const a = Math.abs(w[i]);
    if (a > amax[c]) amax[c] = a;
  }
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scales[c] = scaleFromAmax(amax[c]);
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) q[i] = quantize(w[i], scales[Math.floor(i / inner) % channels]);
  return { q, scales, axis };
}

export { floatToHalfBits, halfBitsToFloat } from '../onnx/tensor.ts';
import { floatToHalfBits, halfBitsToFloat } from '../onnx/tensor.ts';

/** The value a float32 takes after a round trip through float16. */
export function roundToHalf(x: number): number {
  return halfBitsToFloat(floatToHalfBits(x));
}

export function roundArrayToHalf(xs: Float32Array): Float32Array {
  const out = new Float32Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = roundToHalf(xs[i]);
  return out;
}

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

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> IEEE half bits, round to nearest even (overflow to infinity, as a float16 cast does). */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rem > mid || (rem === mid && (half & 1)) ? half + 1 : half);
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  return sign | (rem > 0x1000 || (rem === 0x1000 && (half & 1)) ? half + 1 : half);
}

export function halfBitsToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** The value a float32 takes after a round trip through float16. */
export function roundToHalf(x: number): number {
  return halfBitsToFloat(floatToHalfBits(x));
}

export function roundArrayToHalf(xs: Float32Array): Float32Array {
  const out = new Float32Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = roundToHalf(xs[i]);
  return out;
}

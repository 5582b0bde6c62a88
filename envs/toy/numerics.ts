/**
 * TensorRT's reduced-precision arithmetic for the toy network: FP16 rounding (IEEE binary16, round to
 * nearest even) and symmetric INT8 fake quantization (zero point 0, [-128, 127], scale = amax / 127,
 * round half to even). The toy stays self-contained so environment and agent tests do not depend on
 * the onnxruntime simulator.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const FP16_MAX = 65504;
const FP16_MIN_NORMAL = 2 ** -14;
const FP16_SUBNORMAL_STEP = 2 ** -24;

export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Nearest binary16 value of a float32, as a number; beyond the fp16 range it becomes ±Infinity. */
export function roundToFloat16(x: number): number {
  f32[0] = x;
  let bits = u32[0];
  const exp = (bits >>> 23) & 0xff;
  if (exp === 0xff) return f32[0];
  const a = Math.abs(f32[0]);
  if (a < FP16_MIN_NORMAL) {
    const q = roundHalfEven(a / FP16_SUBNORMAL_STEP) * FP16_SUBNORMAL_STEP;
    return x < 0 ? -q : q;
  }
  // Keep 10 of float32's 23 mantissa bits; a carry into the exponent is the correct rounding.
  const dropped = bits & 0x1fff;
  bits &= ~0x1fff;
  if (dropped > 0x1000 || (dropped === 0x1000 && (bits & 0x2000) !== 0)) bits += 0x2000;
  u32[0] = bits >>> 0;
  const r = f32[0];
  return Math.abs(r) > FP16_MAX ? (r > 0 ? Infinity : -Infinity) : r;
}

export function roundArrayToFloat16(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = roundToFloat16(x[i]);
  return out;
}

/** Quantize-dequantize with one scale for the whole tensor (activations). */
export function fakeQuantPerTensor(x: Float32Array, amax: number): Float32Array {
  const out = new Float32Array(x.length);
  if (!(amax > 0)) return out;
  const scale = amax / 127;
  for (let i = 0; i < x.length; i++) {
    const q = roundHalfEven(x[i] / scale);
    out[i] = (q > 127 ? 127 : q < -128 ? -128 : q) * scale;
  }
  return out;
}

/** Quantize-dequantize with one scale per output channel (weights laid out [outChannels, ...]). */
export function fakeQuantPerChannel(w: Float32Array, outChannels: number): Float32Array {
  const per = w.length / outChannels;
  const out = new Float32Array(w.length);
  for (let c = 0; c < outChannels; c++) {
    let amax = 0;
    for (let i = c * per; i < (c + 1) * per; i++) amax = Math.max(amax, Math.abs(w[i]));
    out.set(fakeQuantPerTensor(w.subarray(c * per, (c + 1) * per), amax), c * per);
  }
  return out;
}

export function absMax(x: Float32Array): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

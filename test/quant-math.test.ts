import { test } from 'node:test';
import assert from 'node:assert/strict';
import { roundHalfEven, quantize, fakeQuantize, scaleFromAmax, quantizePerChannel, roundToHalf, floatToHalfBits } from '../src/quant/int8.ts';
import { emptyHistogram, addToHistogram, percentileAmax, entropyAmax, mseAmax } from '../src/quant/amax.ts';

test('round half to even: ties go to the even neighbour', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6].map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, 3, -3]);
});

test('int8 quantization: scale = amax/127, ties to even, clamp to [-128, 127]', () => {
  assert.equal(scaleFromAmax(63.5), 0.5);
  assert.equal(quantize(1.25, 0.5), 2); // 2.5 -> 2
  assert.equal(quantize(1.75, 0.5), 4); // 3.5 -> 4
  assert.equal(quantize(-1.25, 0.5), -2);
  assert.equal(quantize(100, 0.5), 127);
  assert.equal(quantize(-100, 0.5), -128);
  assert.equal(quantize(-64.25, 0.5), -128); // -128.5 clamps
  assert.equal(fakeQuantize(0.8, 0.5), 1);
  assert.equal(scaleFromAmax(0) > 0, true, 'an all-zero tensor still gets a positive scale');
});

test('per-channel weights: one scale per output channel along the given axis', () => {
  // Conv weight [2 out, 1 in, 1, 2]: channel 0 amax 127 (scale 1), channel 1 amax 254 (scale 2)
  const conv = quantizePerChannel(new Float32Array([127, -63.5, 254, 127]), [2, 1, 1, 2], 0);
  assert.deepEqual(Array.from(conv.scales), [1, 2]);
  assert.deepEqual(Array.from(conv.q), [127, -64, 127, 64]); // -63.5 -> -64, 63.5 -> 64 (ties to even)
  // Gemm B [K=2, N=2] without transB: output channels are columns (axis 1)
  const gemm = quantizePerChannel(new Float32Array([63.5, 254, -127, -127]), [2, 2], 1);
  assert.deepEqual(Array.from(gemm.scales), [1, 2]);
  assert.deepEqual(Array.from(gemm.q), [64, 127, -127, -64]);
  // the same matrix stored transposed (Gemm transB=1, [N, K]): channels are rows (axis 0)
  const gemmT = quantizePerChannel(new Float32Array([63.5, -127, 254, -127]), [2, 2], 0);
  assert.deepEqual(Array.from(gemmT.scales), [1, 2]);
  assert.deepEqual(Array.from(gemmT.q), [64, -127, 127, -64]);
  // Depthwise conv weight [C=3, 1, 1, 1]: every channel its own scale, so each maps to +-127
  const dw = quantizePerChannel(new Float32Array([0.5, -3, 0.001]), [3, 1, 1, 1], 0);
  assert.deepEqual(Array.from(dw.q), [127, -127, 127]);
});

test('float16 rounding: nearest, ties to even, overflow to infinity, subnormals', () => {
  assert.equal(roundToHalf(1), 1);
  assert.equal(roundToHalf(1 + 2 ** -11), 1); // tie between 1 and 1+2^-10 -> even (1)
  assert.equal(roundToHalf(1 + 3 * 2 ** -11), 1 + 2 * 2 ** -10); // tie -> even mantissa
  assert.equal(roundToHalf(0.1), 0.0999755859375);
  assert.equal(roundToHalf(65520), Infinity);
  assert.equal(roundToHalf(65504), 65504);
  assert.equal(roundToHalf(2 ** -24), 2 ** -24);
  assert.equal(roundToHalf(2 ** -26), 0);
  assert.equal(floatToHalfBits(-2), 0xc000);
});

test('amax methods on a known histogram', () => {
  const h = emptyHistogram(10, 2048);
  const values: number[] = [];
  for (let i = 0; i < 10000; i++) values.push(((i % 1000) / 1000) * 1.0); // uniform on [0, 1)
  values.push(10); // one outlier at the top of the range
  addToHistogram(h, values);
  assert.equal(h.counts.reduce((a, b) => a + b, 0), 10001);
  const p = percentileAmax(h, 99.9);
  assert.ok(p > 0.99 && p < 1.01, `percentile 99.9 ${p}`);
  assert.ok(percentileAmax(h, 100) >= 9.99);
  const e = entropyAmax(h);
  assert.ok(e < 2, `entropy ignores the single outlier: ${e}`);
  const m = mseAmax(h);
  assert.ok(m > 9 && m <= 10, `one outlier of 10 costs more clipped than it costs in rounding: ${m}`);
  const uniform = emptyHistogram(1, 2048);
  addToHistogram(uniform, values.slice(0, 10000));
  assert.ok(mseAmax(uniform) > 0.95, 'a uniform distribution keeps (almost) its whole range');
});

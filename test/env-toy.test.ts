import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeQuantPerChannel, fakeQuantPerTensor, roundHalfEven, roundToFloat16 } from '../envs/toy/numerics.ts';
import { smallToyProblem, TinyConvNet } from '../envs/toy/index.ts';
import { uniformPolicy, type LayerPolicy, type Precision } from '../src/policy.ts';

test('roundToFloat16 rounds to the nearest binary16 value, ties to even, overflow to infinity', () => {
  assert.equal(roundToFloat16(1 / 3), 0.333251953125);
  assert.equal(roundToFloat16(65504), 65504);
  assert.equal(roundToFloat16(65519), 65504);
  assert.equal(roundToFloat16(65520), Infinity);
  assert.equal(roundToFloat16(-1e6), -Infinity);
  assert.equal(roundToFloat16(1 + 2 ** -11), 1); // halfway, even mantissa below
  assert.equal(roundToFloat16(1 + 3 * 2 ** -11), 1 + 2 ** -9); // halfway, even mantissa above
  assert.equal(roundToFloat16(2 ** -24), 2 ** -24); // smallest subnormal
  assert.equal(roundToFloat16(2 ** -26), 0);
  assert.equal(roundToFloat16(3 * 2 ** -25), 2 ** -23); // subnormal tie to even
});

test('int8 fake quantization: symmetric, scale = amax/127, clamp to [-128, 127], round half to even', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5].map(roundHalfEven), [0, 2, 2, 0, -2, -2]);
  // amax 127 makes the scale 1, so the expected values are exact.
  const q = fakeQuantPerTensor(Float32Array.from([127, -127, 0.5, 1.5, 2.5, -2.5, 200, -200]), 127);
  assert.deepEqual(Array.from(q), [127, -127, 0, 2, 2, -2, 127, -128]);
  const half = fakeQuantPerTensor(Float32Array.from([1, 0.5, -0.25]), 2);
  half.forEach((v, i) => assert.ok(Math.abs(v - [1, 0.5, -0.25][i]) <= 2 / 127 / 2 + 1e-7, 'error at most half a step'));
  // Each output channel has its own scale: amax 1 and amax 100.
  const w = fakeQuantPerChannel(Float32Array.from([1, -0.5, 100, 3]), 2);
  const expectedW = [1, -64 / 127, 100, (4 * 100) / 127]; // -63.5 rounds to the even -64; 3.81 to 4
  w.forEach((v, i) => assert.ok(Math.abs(v - expectedW[i]) < 1e-5, `${v} vs ${expectedW[i]}`));
});

test('the toy network agrees with itself in FP32, nearly so in FP16, and its planted outlier makes INT8 hurt', async () => {
  const { layers, evaluator } = smallToyProblem();
  const names = layers.map((l) => l.name);
  assert.equal(evaluator.fp32Score, 1);
  assert.equal((await evaluator.evaluate(uniformPolicy(names, 'fp32'))).score, 1);
  assert.ok((await evaluator.evaluate(uniformPolicy(names, 'fp16'))).score >= 0.98);
  // Layer 1 carries the outlier channel: quantizing its output tensor (int8 output) loses the others.
  const int8Output: LayerPolicy = { ...uniformPolicy(names, 'fp16'), [names[1]]: { precision: 'int8' } };
  const mixedOutput: LayerPolicy = { ...uniformPolicy(names, 'fp16'), [names[1]]: { precision: 'mixed' } };
  const a = (await evaluator.evaluate(int8Output)).score;
  const b = (await evaluator.evaluate(mixedOutput)).score;
  assert.ok(a < b, `int8 output (${a}) should score below mixed (${b}) on the outlier layer`);
  assert.ok((await evaluator.evaluate(uniformPolicy(names, 'int8'))).score < 0.95);
});

test('the prefix cache returns exactly what a fresh network computes', () => {
  const opts = { seed: 3, inputShape: [2, 6, 6] as [number, number, number], samples: 16 };
  const specs = [
    { kind: 'conv' as const, outChannels: 4, kernel: 3 },
    { kind: 'conv' as const, outChannels: 4, kernel: 3, depthwise: true },
    { kind: 'gemm' as const, outFeatures: 3 },
  ];
  const warm = new TinyConvNet({ ...opts, layers: specs });
  const P: Precision[][] = [['int8', 'int8', 'int8'], ['int8', 'fp16', 'mixed'], ['fp16', 'fp16', 'int8'], ['int8', 'fp16', 'int8']];
  for (const p of P) warm.forward(p);
  const runsBefore = warm.layerRuns;
  const cached = warm.forward(['int8', 'fp16', 'int8']);
  assert.equal(warm.layerRuns, runsBefore, 'a repeated policy reuses every layer');
  warm.forward(['int8', 'fp16', 'mixed']);
  assert.equal(warm.layerRuns, runsBefore + 1, 'a policy sharing two layers of prefix recomputes one');
  const fresh = new TinyConvNet({ ...opts, layers: specs }).forward(['int8', 'fp16', 'int8']);
  assert.deepEqual(Array.from(cached), Array.from(fresh));
});

test('toy latency: int8 < fp16 < fp32 and disagreeing neighbours pay reformats (non-additive)', async () => {
  const { layers, latency } = smallToyProblem();
  const names = layers.map((l) => l.name);
  const total = async (p: LayerPolicy): Promise<number> => (await latency.estimate(p)).totalMs;
  const [i8, f16, f32] = await Promise.all((['int8', 'fp16', 'fp32'] as const).map((p) => total(uniformPolicy(names, p))));
  assert.ok(i8 < f16 && f16 < f32, `${i8} < ${f16} < ${f32}`);
  const alternating: LayerPolicy = Object.fromEntries(names.map((n, i) => [n, { precision: (i % 2 ? 'fp16' : 'int8') as Precision }]));
  const est = await latency.estimate(alternating);
  assert.ok(est.perLayer.slice(1).every((l) => l.reformatMs > 0), 'every precision change costs a reformat');
  const u8 = await latency.estimate(uniformPolicy(names, 'int8'));
  const u16 = await latency.estimate(uniformPolicy(names, 'fp16'));
  const additive = names.reduce((s, _, i) => s + (i % 2 ? u16.perLayer[i].ms : u8.perLayer[i].ms), 0);
  assert.ok(est.totalMs > additive, 'the mix costs more than the sum of its layers');
});

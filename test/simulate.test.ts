import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discoverLayers } from '../src/onnx/layers.ts';
import { createSession, toOrtFeeds } from '../src/onnx/runtime.ts';
import { encodeModel, type NodeProto } from '../src/onnx/model.ts';
import { floatTensor, int8Tensor, makeAttr } from '../src/onnx/tensor.ts';
import { collectStatistics, calibrationTensors, CalibrationTable } from '../src/quant/calibrate.ts';
import { buildSimulatedModel, resolveAmax, type SimulationBase } from '../src/quant/simulate.ts';
import { quantizePerChannel, scaleFromAmax, roundArrayToHalf } from '../src/quant/int8.ts';
import { PolicyEvaluator, sliceFeeds, runModel } from '../src/quant/evaluator.ts';
import { loadMetric } from '../src/quant/metrics.ts';
import { uniformPolicy, type LayerPolicy } from '../src/policy.ts';
import { Graph } from '../src/onnx/graph.ts';
import { tinyCnn, tinyAttention, randomInput, makeModel, valueInfo, randomTensor } from './fixtures/models.ts';

const N = 12;
async function setup(model = tinyCnn(), dims = [N, 3, 8, 8], probe = [1, 3, 8, 8]): Promise<{ base: SimulationBase; x: Float32Array }> {
  const { graph, layers } = await discoverLayers(model, { inputShapes: { x: probe } });
  const x = randomInput(dims, 'calib');
  const stats = await collectStatistics(model, calibrationTensors(layers), dims[0], (s, e) => sliceFeeds({ count: dims[0], inputs: { x: { data: x, dims } } }, s, e));
  return { base: { model, graph, layers, calibration: new CalibrationTable(stats, dims[0]), defaultCalibration: { method: 'max' } }, x };
}

async function run(model: Uint8Array, x: Float32Array, dims: number[]): Promise<Float32Array> {
  const s = await createSession(model, { optimization: 'disabled' });
  const out = await s.run(toOrtFeeds({ x: { data: x, dims } }));
  await s.release();
  return Object.values(out)[0].data as Float32Array;
}

test('an int8 conv equals a QDQ graph built by hand (input, per-channel weight; no Q/DQ on its output, which no int8 layer reads)', async () => {
  // One conv + relu, so the hand graph is small enough to write out.
  const w = randomTensor('w', [4, 3, 3, 3], 'hand-w');
  const b = randomTensor('b', [4], 'hand-b', 0.1);
  const model = makeModel(
    [
      { name: 'conv', opType: 'Conv', input: ['x', 'w', 'b'], output: ['c'], attribute: [makeAttr.ints('pads', [1, 1, 1, 1])] },
      { name: 'relu', opType: 'Relu', input: ['c'], output: ['y'] },
    ],
    [valueInfo('x', ['N', 3, 6, 6])], [valueInfo('y', ['N', 4, 6, 6])], [w, b],
  );
  const dims = [N, 3, 6, 6];
  const { base, x } = await setup(model, dims, [1, 3, 6, 6]);
  const sim = buildSimulatedModel(base, { conv: { precision: 'int8' } });
  // Hand-built: amax by max calibration, weights per output channel on axis 0, bias stays float.
  const xAmax = base.calibration.stats['x'].absMax;
  const wq = quantizePerChannel(new Float32Array(w.rawData!.buffer.slice(w.rawData!.byteOffset, w.rawData!.byteOffset + w.rawData!.byteLength)), [4, 3, 3, 3], 0);
  const z = int8Tensor('z', [], new Int8Array(1));
  const hand = makeModel(
    [
      { opType: 'QuantizeLinear', input: ['x', 'sx', 'z'], output: ['xq'] },
      { opType: 'DequantizeLinear', input: ['xq', 'sx', 'z'], output: ['xd'] },
      { opType: 'DequantizeLinear', input: ['wq', 'sw', 'zw'], output: ['wd'], attribute: [makeAttr.int('axis', 0)] },
      { opType: 'Conv', input: ['xd', 'wd', 'b'], output: ['c'], attribute: [makeAttr.ints('pads', [1, 1, 1, 1])] },
      { opType: 'Relu', input: ['c'], output: ['y'] },
    ],
    [valueInfo('x', ['N', 3, 6, 6])], [valueInfo('y', ['N', 4, 6, 6])],
    [b, z, floatTensor('sx', [], [scaleFromAmax(xAmax)]),
      int8Tensor('wq', [4, 3, 3, 3], wq.q), floatTensor('sw', [4], wq.scales), int8Tensor('zw', [4], new Int8Array(4))],
  );
  const a = await run(encodeModel(sim), x, dims);
  const h = await run(encodeModel(hand), x, dims);
  assert.deepEqual(a, h);
  assert.equal(sim.graph!.node!.filter((n) => n.opType === 'QuantizeLinear').length, 1, 'only the input is quantized');
  // and it is really int8: the result differs from FP32
  const f = await run(encodeModel(model), x, dims);
  assert.ok(a.some((v, i) => v !== f[i]));
});

test('fp16 layers round input, weights, bias and output to half precision', async () => {
  const { base, x } = await setup();
  const sim = buildSimulatedModel(base, uniformPolicy(base.layers.map((l) => l.name), 'fp16'));
  const y = await run(encodeModel(sim), x, [N, 3, 8, 8]);
  const y32 = await run(encodeModel(base.model), x, [N, 3, 8, 8]);
  assert.deepEqual(Array.from(roundArrayToHalf(y)), Array.from(y), 'the last layer writes float16 values');
  const maxDiff = Math.max(...Array.from(y, (v, i) => Math.abs(v - y32[i])));
  assert.ok(maxDiff > 0 && maxDiff < 1e-2, `fp16 differs from fp32 by a little: ${maxDiff}`);
});

test('mixed layers read int8 but write float16; int8 layers write int8 only to the layers that quantize it', async () => {
  const { base } = await setup();
  const names = base.layers.map((l) => l.name);
  const quantized = (m: ReturnType<typeof buildSimulatedModel>) => m.graph!.node!.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.input![0]).sort();
  // Q/DQ on each layer's activation input, none on the model output the last layer writes.
  const inputs = base.layers.map((l) => l.input).sort();
  const int8 = buildSimulatedModel(base, uniformPolicy(names, 'int8'));
  assert.deepEqual(quantized(int8), inputs);
  assert.ok(!int8.graph!.node!.some((n) => n.opType === 'Cast'), 'int8 with FP32 other ops rounds nothing');
  const mixed = buildSimulatedModel(base, uniformPolicy(names, 'mixed'));
  assert.deepEqual(quantized(mixed), inputs, 'the same Q/DQ, now on float16-rounded values');
  const roundings = mixed.graph!.node!.filter((n) => n.opType === 'Cast' && n.output![0].endsWith('__float16')).map((n) => n.input![0]);
  assert.equal(roundings.length, names.length, 'each mixed layer rounds its result once');
});

test('a depthwise conv gets one weight scale per channel, Gemm transB on axis 0, MatMul on axis 1', async () => {
  const { base } = await setup();
  const sim = buildSimulatedModel(base, uniformPolicy(base.layers.map((l) => l.name), 'int8'));
  const dq = (w: string) => sim.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.input![0].startsWith(`${w}__int8`))!;
  const axis = (n: NodeProto) => Number(n.attribute!.find((a) => a.name === 'axis')!.i);
  assert.equal(axis(dq('w2')), 0);
  const scales = sim.graph!.initializer!.find((t) => t.name === dq('w2').input![1])!;
  assert.deepEqual(scales.dims!.map(Number), [8]);
  assert.equal(axis(dq('wg')), 0);
  assert.equal(axis(dq('wm')), 1);
});

test('a MatMul between two activations quantizes both operands per tensor', async () => {
  const model = tinyAttention();
  const { base, x } = await setup(model, [N, 6, 8], [1, 6, 8]);
  const sim = buildSimulatedModel(base, { scores: { precision: 'int8' } });
  const node = sim.graph!.node!.find((n) => n.name === 'scores')!;
  const producers = new Map(sim.graph!.node!.flatMap((n) => n.output!.map((o) => [o, n] as const)));
  assert.equal(producers.get(node.input![0])!.opType, 'DequantizeLinear');
  assert.equal(producers.get(node.input![1])!.opType, 'DequantizeLinear');
  assert.equal(producers.get(node.input![1])!.attribute?.length ?? 0, 0, 'per-tensor: no axis');
  const y = await run(encodeModel(sim), x, [N, 6, 8]);
  assert.equal(y.length, N * 6 * 8);
});

test('one amax per tensor; ReLU6 outputs never get an amax above 6', async () => {
  const { base } = await setup();
  const names = base.layers.map((l) => l.name);
  const policy: LayerPolicy = uniformPolicy(names, 'int8', { method: 'max' });
  const dw = base.layers.find((l) => l.activation === 'relu6')!;
  base.calibration.stats[dw.fusedOutput].absMax = 9; // pretend calibration saw beyond the clip
  const amax = resolveAmax(base, policy);
  assert.equal(amax[dw.fusedOutput], 6);
  const pw = base.layers[dw.index + 1];
  const viaPercentile = resolveAmax(base, { ...policy, [pw.name]: { precision: 'int8', calibration: { method: 'percentile', percentile: 99 } } });
  assert.ok(viaPercentile[pw.input] <= 6, 'the reader of a tensor sets its method, still capped by the bound');
});

test('the evaluator scores FP32 against itself perfectly, caches by policy, and int8 moves the score', async () => {
  const { base } = await setup();
  const data = { count: 20, inputs: { x: { data: randomInput([20, 3, 8, 8], 'eval'), dims: [20, 3, 8, 8] } } };
  const ev = await PolicyEvaluator.create(base, data, await loadMetric('cosine'), { batchSize: 7 });
  assert.ok(Math.abs(ev.fp32Score - 1) < 1e-6);
  const names = base.layers.map((l) => l.name);
  const fp32 = await ev.evaluate(uniformPolicy(names, 'fp32'));
  assert.ok(Math.abs(fp32.score - 1) < 1e-6);
  const int8 = await ev.evaluate(uniformPolicy(names, 'int8'));
  assert.ok(int8.score < 0.99999 && int8.score > 0.5, `int8 cosine ${int8.score}`);
  const again = await ev.evaluate(uniformPolicy(names, 'int8'));
  assert.equal(again.cached, true);
  assert.equal(again.score, int8.score);
  assert.equal(ev.evaluations, 2);
  assert.equal(ev.cacheHits, 1);
  // batching preserves sample order: batch 7 and batch 20 give the same outputs
  const a = await runModel(base.model, data, 7);
  const b = await runModel(base.model, data, 20);
  assert.deepEqual(a.map((s) => Array.from(s.logits.data)), b.map((s) => Array.from(s.logits.data)));
});

test('per-tensor weights (an option for other targets) use a single scale', async () => {
  const { base } = await setup();
  const sim = buildSimulatedModel({ ...base, weightGranularity: 'per-tensor' }, { conv1: { precision: 'int8' } });
  const dq = sim.graph!.node!.find((n) => n.opType === 'DequantizeLinear' && n.input![0].startsWith('w1__int8'))!;
  const scale = sim.graph!.initializer!.find((t) => t.name === dq.input![1])!;
  assert.deepEqual(scale.dims, []);
  const w1 = base.graph.constantValues('w1')!.data;
  const expected = Math.fround(Math.max(...Array.from(w1, Math.abs)) / 127);
  assert.equal(new Float32Array(scale.rawData!.slice().buffer)[0], expected);
});

test('the simulated graph keeps the base model untouched', async () => {
  const { base } = await setup();
  const before = encodeModel(base.model);
  buildSimulatedModel(base, uniformPolicy(base.layers.map((l) => l.name), 'int8'));
  assert.deepEqual(encodeModel(base.model), before);
  assert.ok(new Graph(base.model).nodes.length > 0);
});

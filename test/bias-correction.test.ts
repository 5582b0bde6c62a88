import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import { discoverLayers } from '../src/onnx/layers.ts';
import { Graph } from '../src/onnx/graph.ts';
import { makeAttr, floatTensor } from '../src/onnx/tensor.ts';
import type { ModelProto } from '../src/onnx/model.ts';
import { collectStatistics, calibrationTensors, CalibrationTable } from '../src/quant/calibrate.ts';
import { buildSimulatedModel, type SimulationBase } from '../src/quant/simulate.ts';
import { runModel, sliceFeeds, type SampleSet } from '../src/quant/evaluator.ts';
import { BiasCorrector, correctedModel, biasSite, type BiasCorrections } from '../src/quant/bias-correction.ts';
import { buildQdqModel } from '../src/export/qdq-onnx.ts';
import { uniformPolicy, type LayerPolicy } from '../src/policy.ts';
import { makeModel, valueInfo, randomTensor } from './fixtures/models.ts';

const N = 24;
const H = 6;

/**
 * Inputs with a long positive tail (lognormal): percentile calibration at 99 % clips the tail, so every quantized
 * input is smaller than its FP32 value on average and the conv's output mean drops by sum(W) * that shift, per
 * output channel: a systematic bias quantization noise alone would not make.
 */
function skewedInput(count: number, seed: string): Float32Array {
  const rng = seedrandom(seed);
  const x = new Float32Array(count * 3 * H * H);
  for (let i = 0; i < x.length; i++) {
    const u = Math.max(1e-12, rng());
    const g = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
    x[i] = Math.exp(0.9 * g) - 1;
  }
  return x;
}

/** Weights whose rows sum far from 0 (all positive), so the input shift reaches the output mean undamped. */
function positiveWeights(name: string, dims: number[], seed: string): ReturnType<typeof floatTensor> {
  const t = randomTensor(name, dims, seed, 0.4);
  const v = new Float32Array(t.rawData!.buffer.slice(t.rawData!.byteOffset, t.rawData!.byteOffset + t.rawData!.byteLength));
  return floatTensor(name, dims, v.map((w) => Math.abs(w) + 0.05));
}

/** conv1 (3->4, 3x3, no bias) -> relu -> conv2 (4->5, 1x1, bias): the first has no bias to start with. */
function twoConvs(): ModelProto {
  return makeModel(
    [
      { name: 'conv1', opType: 'Conv', input: ['x', 'w1'], output: ['c1'] },
      { name: 'relu', opType: 'Relu', input: ['c1'], output: ['r1'] },
      { name: 'conv2', opType: 'Conv', input: ['r1', 'w2', 'b2'], output: ['y'] },
    ],
    [valueInfo('x', ['N', 3, H, H])], [valueInfo('y', ['N', 5, H - 2, H - 2])],
    [positiveWeights('w1', [4, 3, 3, 3], 'bc-w1'), positiveWeights('w2', [5, 4, 1, 1], 'bc-w2'), randomTensor('b2', [5], 'bc-b2', 0.1)],
  );
}

async function setup(model: ModelProto, dims: number[], x: Float32Array): Promise<{ base: SimulationBase; set: SampleSet }> {
  const { graph, layers } = await discoverLayers(model, { inputShapes: { x: [1, ...dims.slice(1)] } });
  const set: SampleSet = { count: dims[0], inputs: { x: { data: x, dims } } };
  const stats = await collectStatistics(model, calibrationTensors(layers), dims[0], (s, e) => sliceFeeds(set, s, e));
  return { base: { model, graph, layers, calibration: new CalibrationTable(stats, dims[0]), defaultCalibration: { method: 'percentile', percentile: 99 } }, set };
}

const corrector = (base: SimulationBase, set: SampleSet, passes: number) => BiasCorrector.create(base.model, base.graph, base.layers, set, {
  passes,
  simulate: (p: LayerPolicy, bias: BiasCorrections, extra: string[]) => buildSimulatedModel(base, p, { extraOutputs: extra, bias }),
});

/** Per-channel mean of (FP32 - simulated) of tensor `t` (NCHW), with the given corrections in the simulation. */
async function meanError(base: SimulationBase, set: SampleSet, policy: LayerPolicy, t: string, bias?: BiasCorrections): Promise<number[]> {
  const out = (m: ModelProto) => runModel({ ...m, graph: { ...m.graph!, output: [{ name: t }] } }, set, 8);
  const ref = await out(base.model);
  const sim = await out(buildSimulatedModel(base, policy, { extraOutputs: [t], ...(bias ? { bias } : {}) }));
  const C = ref[0][t].dims[0];
  const per = ref[0][t].data.length / C;
  const sums = new Array<number>(C).fill(0);
  for (let i = 0; i < ref.length; i++) {
    for (let c = 0; c < C; c++) for (let j = 0; j < per; j++) sums[c] += ref[i][t].data[c * per + j] - sim[i][t].data[c * per + j];
  }
  return sums.map((s) => s / (ref.length * per));
}

const maxAbs = (v: ArrayLike<number>) => Math.max(...Array.from(v, Math.abs));

test('bias correction removes the mean shift that clipped inputs give a conv: the delta is the measured mean error, and the error after it is ~0', async () => {
  const dims = [N, 3, H, H];
  const { base, set } = await setup(twoConvs(), dims, skewedInput(N, 'bc-x'));
  const policy: LayerPolicy = { conv1: { precision: 'int8' }, conv2: { precision: 'fp32' } };
  const before = await meanError(base, set, policy, 'c1');
  // The clipped tail makes the quantized conv's output too small on every channel, well beyond rounding noise.
  assert.ok(before.every((e) => e > 0.05), `mean error before: ${before.map((e) => e.toFixed(4)).join(', ')}`);

  const bc = await corrector(base, set, 1);
  const corrections = await bc.corrections(policy);
  assert.deepEqual([...corrections.keys()], ['conv1'], 'only the INT8 layer is corrected');
  const delta = corrections.get('conv1')!;
  // The delta is the per-channel mean error itself (to the 6 digits policy.json keeps).
  delta.forEach((d, c) => assert.ok(Math.abs(d - before[c]) <= 1e-5 * Math.abs(before[c]) + 1e-7, `channel ${c}: delta ${d}, mean error ${before[c]}`));

  const after = await meanError(base, set, policy, 'c1', corrections);
  assert.ok(maxAbs(after) < 1e-3 * maxAbs(before), `mean error after: ${after.join(', ')} (before ${before.join(', ')})`);

  // conv1 had no bias: the simulated and the exported model both read a created one, equal to the delta.
  const qdq = buildQdqModel(base.model, base.graph, base.layers, {
    layers: base.layers.map((l) => ({ name: l.name, op: l.op, precision: policy[l.name].precision, macs: l.macs })),
    calibration: { method: 'percentile 99', amax: Object.fromEntries([...Object.entries(base.calibration.stats)].map(([t]) => [t, base.calibration.amax(t, base.defaultCalibration)])) },
    biasCorrection: bc.record(corrections),
  });
  const conv = qdq.model.graph!.node!.find((n) => n.name === 'conv1')!;
  assert.equal(conv.input!.length, 3);
  const bias = new Graph(qdq.model).constantValues(conv.input![2])!;
  assert.deepEqual(Array.from(bias.data), Array.from(delta));
});

test('sequential correction: a second pass measures the later layer with the earlier one corrected, and its mean error goes to ~0 too', async () => {
  const dims = [N, 3, H, H];
  const { base, set } = await setup(twoConvs(), dims, skewedInput(N, 'bc-x2'));
  const policy = uniformPolicy(base.layers.map((l) => l.name), 'int8');
  const before = await meanError(base, set, policy, 'y');
  const onePass = await (await corrector(base, set, 1)).corrections(policy);
  const sequential = await (await corrector(base, set, 2)).corrections(policy);
  // The first layer's delta does not depend on the pass; the second's does (it sees the corrected first layer).
  assert.deepEqual(Array.from(sequential.get('conv1')!), Array.from(onePass.get('conv1')!));
  const afterOne = await meanError(base, set, policy, 'y', onePass);
  const afterSeq = await meanError(base, set, policy, 'y', sequential);
  assert.ok(maxAbs(afterSeq) < 1e-3 * maxAbs(before), `sequential: ${afterSeq.join(', ')} (before ${before.join(', ')})`);
  // One pass corrects conv2 for a shift conv1's correction already removed: it over-corrects.
  assert.ok(maxAbs(afterOne) > 10 * maxAbs(afterSeq), `one pass ${maxAbs(afterOne)}, sequential ${maxAbs(afterSeq)}`);
  // conv2 has a bias: the corrected model keeps its names and adds the delta to it.
  const corrected = new Graph(correctedModel(base.graph, base.layers, sequential));
  const node = corrected.nodes.find((n) => n.name === 'conv2')!;
  const b2 = base.graph.constantValues('b2')!.data;
  const d2 = sequential.get('conv2')!;
  assert.deepEqual(Array.from(corrected.constantValues(node.input![2])!.data), Array.from(b2, (b, c) => Math.fround(b + d2[c])));
  assert.equal(corrected.nodes.find((n) => n.name === 'conv1')!.input!.length, 3);
});

test('bias sites: Gemm C divided by beta, MatMul through its bias Add, none for a MatMul without one', async () => {
  const model = makeModel(
    [
      { name: 'gemm', opType: 'Gemm', input: ['x', 'wg', 'cg'], output: ['g'], attribute: [makeAttr.float('beta', 0.5), makeAttr.int('transB', 1)] },
      { name: 'mm', opType: 'MatMul', input: ['g', 'wm'], output: ['m'] },
      { name: 'add', opType: 'Add', input: ['m', 'bm'], output: ['a'] },
      { name: 'mm2', opType: 'MatMul', input: ['a', 'wm2'], output: ['y'] },
    ],
    [valueInfo('x', ['N', 6])], [valueInfo('y', ['N', 3])],
    [randomTensor('wg', [5, 6], 'g1'), randomTensor('cg', [5], 'g2'), randomTensor('wm', [5, 4], 'g3'), randomTensor('bm', [4], 'g4'), randomTensor('wm2', [4, 3], 'g5')],
  );
  const { graph, layers } = await discoverLayers(model, { inputShapes: { x: [1, 6] } });
  const by = Object.fromEntries(layers.map((l) => [l.name, l]));
  assert.deepEqual(biasSite(graph, by.gemm), { nodeIndex: by.gemm.nodeIndex, inputIndex: 2, tensor: 'cg', channels: 5, beta: 0.5, output: 'g' });
  assert.equal(biasSite(graph, by.mm)?.tensor, 'bm');
  // The delta shows after the Add, so that is where the MatMul's error is measured.
  assert.equal(biasSite(graph, by.mm)?.output, 'a');
  assert.equal(biasSite(graph, by.mm2), undefined);
  const delta = Float32Array.from([1, 2, 3, 4, 5]);
  const md = Float32Array.from([0.5, -0.5, 1, -1]);
  const g = new Graph(correctedModel(graph, layers, new Map([['gemm', delta], ['mm', md]])));
  const cg = graph.constantValues('cg')!.data;
  assert.deepEqual(Array.from(g.constantValues(g.nodes.find((n) => n.name === 'gemm')!.input![2])!.data), Array.from(cg, (c, i) => Math.fround(c + delta[i] / 0.5)));
  const bm = graph.constantValues('bm')!.data;
  assert.deepEqual(Array.from(g.constantValues(g.nodes.find((n) => n.name === 'add')!.input![1])!.data), Array.from(bm, (b, i) => Math.fround(b + md[i])));
});

test('a MatMul corrected through its bias Add: the mean error after the Add goes to ~0, and two passes correct the Gemm before it too', async () => {
  const model = makeModel(
    [
      { name: 'gemm', opType: 'Gemm', input: ['x', 'wg'], output: ['g'], attribute: [makeAttr.int('transB', 1)] },
      { name: 'mm', opType: 'MatMul', input: ['g', 'wm'], output: ['m'] },
      { name: 'add', opType: 'Add', input: ['m', 'bm'], output: ['y'] },
    ],
    [valueInfo('x', ['N', 32])], [valueInfo('y', ['N', 16])],
    [positiveWeights('wg', [16, 32], 'm1'), positiveWeights('wm', [16, 16], 'm2'), randomTensor('bm', [16], 'm3')],
  );
  const rng = seedrandom('mm-x');
  const x = Float32Array.from({ length: N * 32 }, () => rng() * 4 - 1);
  const { base, set } = await setup(model, [N, 32], x);
  const policy = uniformPolicy(base.layers.map((l) => l.name), 'int8');
  const mean = async (bias?: BiasCorrections) => {
    const ref = await runModel(base.model, set, 8);
    const sim = await runModel(buildSimulatedModel(base, policy, bias ? { bias } : {}), set, 8);
    let s = 0;
    for (let i = 0; i < ref.length; i++) for (let j = 0; j < 16; j++) s += Math.abs(ref[i].y.data[j] - sim[i].y.data[j]);
    return s;
  };
  const corrections = await (await corrector(base, set, 2)).corrections(policy);
  assert.deepEqual([...corrections.keys()], ['gemm', 'mm']);
  const before = await meanError(base, set, policy, 'y');
  const after = await meanError(base, set, policy, 'y', corrections);
  // A channel whose remaining shift is below 1e-3 of its spread is left alone (the threshold): ~0 overall, not on each.
  const total = (v: number[]) => v.reduce((a, b) => a + Math.abs(b), 0);
  assert.ok(total(after) < 0.02 * total(before), `after ${after.join(', ')}, before ${before.join(', ')}`);
  assert.ok(await mean(corrections) < await mean(), 'the absolute error goes down too');
});

test('the magnitude rule: a layer whose shift is out of scale with its bias is not corrected (NNCF FastBiasCorrection)', async () => {
  const dims = [N, 3, H, H];
  const { base, set } = await setup(twoConvs(), dims, skewedInput(N, 'bc-x2'));
  const policy = uniformPolicy(base.layers.map((l) => l.name), 'int8');
  const make = (magnitude: number) => BiasCorrector.create(base.model, base.graph, base.layers, set, {
    passes: 2, magnitude, simulate: (p: LayerPolicy, bias: BiasCorrections, extra: string[]) => buildSimulatedModel(base, p, { extraOutputs: extra, bias }),
  });
  const all = await (await make(2)).corrections(policy);
  const d2 = all.get('conv2')!;
  const b2 = base.graph.constantValues('b2')!.data;
  const ratio = Math.max(...Array.from(d2, (d, c) => Math.abs(d / b2[c])));
  assert.ok(ratio < 2, `conv2's shift is ${ratio} times its bias`);
  // The rule is max |delta / bias| < magnitude: just above the layer's own ratio it is corrected, just below it is not.
  assert.ok((await (await make(ratio * 1.01)).corrections(policy)).has('conv2'));
  assert.equal((await (await make(ratio * 0.99)).corrections(policy)).has('conv2'), false);
});

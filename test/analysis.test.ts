import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discoverLayers } from '../src/onnx/layers.ts';
import type { ModelProto, NodeProto } from '../src/onnx/model.ts';
import { floatTensor, makeAttr } from '../src/onnx/tensor.ts';
import { Graph } from '../src/onnx/graph.ts';
import { collectStatistics, calibrationTensors, CalibrationTable } from '../src/quant/calibrate.ts';
import { PolicyEvaluator, sliceFeeds, type SampleSet } from '../src/quant/evaluator.ts';
import { loadMetric } from '../src/quant/metrics.ts';
import type { SimulationBase } from '../src/quant/simulate.ts';
import { buildSimulatedModel } from '../src/quant/simulate.ts';
import { uniformPolicy, type CalibrationChoice } from '../src/policy.ts';
import { analyzeLayers, cachedAnalysis, rankLayers, type Analysis } from '../src/analysis/analyze.ts';
import { cutBefore, CutWalker, extractSubgraph } from '../src/analysis/segments.ts';
import { tinyCnn, randomInput, makeModel, valueInfo, randomTensor } from './fixtures/models.ts';

/**
 * A residual block with a shape path across it: conv1 + ReLU, conv2 + Clip(0, 6), Add(skip), then Shape ->
 * Reshape of the sum (an int64 tensor produced before conv3 and read after it), conv3, flatten, Gemm.
 */
function residualModel(): ModelProto {
  const init = [
    randomTensor('w1', [6, 3, 3, 3], 'r-w1'), randomTensor('b1', [6], 'r-b1', 0.1),
    randomTensor('w2', [6, 6, 3, 3], 'r-w2'), randomTensor('b2', [6], 'r-b2', 0.1),
    randomTensor('w3', [6, 6, 1, 1], 'r-w3'),
    randomTensor('wg', [5, 6 * 16], 'r-wg'),
    floatTensor('zero', [], [0]), floatTensor('six', [], [6]),
  ];
  const pads = makeAttr.ints('pads', [1, 1, 1, 1]);
  const nodes: NodeProto[] = [
    { name: 'conv1', opType: 'Conv', input: ['x', 'w1', 'b1'], output: ['c1'], attribute: [pads] },
    { name: 'relu1', opType: 'Relu', input: ['c1'], output: ['r1'] },
    { name: 'shape', opType: 'Shape', input: ['r1'], output: ['s'] },
    { name: 'conv2', opType: 'Conv', input: ['r1', 'w2', 'b2'], output: ['c2'], attribute: [pads] },
    { name: 'clip2', opType: 'Clip', input: ['c2', 'zero', 'six'], output: ['r2'] },
    { name: 'add', opType: 'Add', input: ['r1', 'r2'], output: ['sum'] },
    { name: 'conv3', opType: 'Conv', input: ['sum', 'w3'], output: ['c3'] },
    { name: 'reshape', opType: 'Reshape', input: ['c3', 's'], output: ['c3r'] },
    { name: 'flat', opType: 'Flatten', input: ['c3r'], output: ['f'], attribute: [makeAttr.int('axis', 1)] },
    { name: 'fc', opType: 'Gemm', input: ['f', 'wg'], output: ['y'], attribute: [makeAttr.int('transB', 1)] },
  ];
  return makeModel(nodes, [valueInfo('x', ['N', 3, 4, 4])], [valueInfo('y', ['N', 5])], init);
}

interface Setup { base: SimulationBase; evaluator: PolicyEvaluator; data: SampleSet }

async function setup(model: ModelProto, sample: number[], opts: { calibration?: CalibrationChoice; calibData?: Float32Array; metric?: string } = {}): Promise<Setup> {
  const { graph, layers } = await discoverLayers(model, { inputShapes: { x: [1, ...sample] } });
  const nCalib = 16;
  const calibDims = [nCalib, ...sample];
  const calib = { count: nCalib, inputs: { x: { data: opts.calibData ?? randomInput(calibDims, 'calib'), dims: calibDims } } };
  const stats = await collectStatistics(model, calibrationTensors(layers), nCalib, (s, e) => sliceFeeds(calib, s, e));
  const base: SimulationBase = { model, graph, layers, calibration: new CalibrationTable(stats, nCalib), defaultCalibration: opts.calibration ?? { method: 'max' } };
  const nEval = 20;
  const data = { count: nEval, inputs: { x: { data: randomInput([nEval, ...sample], 'eval'), dims: [nEval, ...sample] } } };
  const evaluator = await PolicyEvaluator.create(base, data, await loadMetric(opts.metric ?? 'cosine'), { batchSize: 6 });
  return { base, evaluator, data };
}

const close = (a: number, b: number, tol = 1e-6) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b));


test('the cut before a layer holds the skip tensor and the int64 shape that cross it', async () => {
  const { graph } = await discoverLayers(residualModel(), { inputShapes: { x: [1, 3, 4, 4] } });
  const at = (name: string) => graph.nodes.findIndex((n) => n.name === name);
  assert.deepEqual(cutBefore(graph, 0), ['x']);
  assert.deepEqual(cutBefore(graph, at('conv2')).sort(), ['r1', 's']);
  assert.deepEqual(cutBefore(graph, at('conv3')).sort(), ['s', 'sum']);
  assert.deepEqual(cutBefore(graph, graph.nodes.length), ['y']);
});

test('a model run from a cut gives what the whole model gives', async () => {
  const model = residualModel();
  const { graph } = await discoverLayers(model, { inputShapes: { x: [1, 3, 4, 4] } });
  const data = { count: 10, inputs: { x: { data: randomInput([10, 3, 4, 4], 'cut'), dims: [10, 3, 4, 4] } } };
  const whole = CutWalker.start(model, data, 10, 4);
  const wholeOut: Float32Array[] = [];
  await whole.runEach(whole.subgraph(model, ['y']), (_, r) => { wholeOut.push(r.y.data as Float32Array); });
  const walker = CutWalker.start(model, data, 10, 4);
  await walker.advance(cutBefore(graph, graph.nodes.findIndex((n) => n.name === 'conv3')));
  assert.deepEqual([...walker.cut].sort(), ['s', 'sum']);
  const part = walker.subgraph(model, ['y']);
  assert.ok(part.graph!.node!.every((n) => ['conv3', 'reshape', 'flat', 'fc'].includes(n.name!)), 'only the nodes after the cut run');
  assert.deepEqual(part.graph!.initializer!.map((t) => t.name).sort(), ['w3', 'wg']);
  const cutOut: Float32Array[] = [];
  await walker.runEach(part, (_, r) => { cutOut.push(r.y.data as Float32Array); });
  assert.equal(cutOut.length, 3);
  assert.deepEqual(cutOut, wholeOut);
});

test('a cut tensor an int8 layer reads is fed as the float its producer stores; the models after the cut quantize it inside', async () => {
  const s = await setup(tinyCnn(), [3, 8, 8]);
  const names = s.base.layers.map((l) => l.name);
  const int8 = buildSimulatedModel(s.base, uniformPolicy(names, 'int8'));
  const pw3 = s.base.layers.find((l) => l.name === 'pw3')!;
  const walker = CutWalker.start(int8, s.data, 10, 4);
  await walker.advance(cutBefore(s.base.graph, pw3.nodeIndex));
  assert.deepEqual(walker.cut, ['r2']);
  // Q/DQ sit on the reading layer's input (src/quant/placement.ts), after the cut: every model is fed the float r2.
  const same = walker.subgraph(buildSimulatedModel(s.base, { ...uniformPolicy(names, 'int8'), fc: { precision: 'fp32' } }), ['logits']);
  assert.deepEqual(same.graph!.input!.map((v) => [v.name, v.type!.tensorType!.elemType]), [['r2', 1]]);
  assert.equal(same.graph!.input![0].type!.tensorType!.shape!.dim![0].dimParam, 'r2:0', 'the batch axis stays symbolic');
  assert.ok(same.graph!.node!.some((n) => n.opType === 'QuantizeLinear' && n.input![0] === 'r2'), 'pw3 quantizes r2 inside the part after the cut');
  const fp32 = walker.subgraph(s.base.model, ['logits']);
  assert.deepEqual(fp32.graph!.input!.map((v) => [v.name, v.type!.tensorType!.elemType]), [['r2', 1]]);
  const fed: number[] = [];
  await walker.runEach({ ...fp32, graph: { ...fp32.graph!, node: [{ opType: 'Identity', input: ['r2'], output: ['copy'] }], output: [{ name: 'copy' }], initializer: [] } }, (_, r) => { fed.push(...(r.copy.data as Float32Array)); });
  const whole: number[] = [];
  const w = CutWalker.start(int8, s.data, 10, 4);
  await w.runEach(w.subgraph(int8, ['r2']), (_, r) => { whole.push(...(r.r2.data as Float32Array)); });
  assert.deepEqual(fed, whole);
});

test('a subgraph that needs a tensor nobody feeds or computes is a bug, reported by name', () => {
  const model = residualModel();
  // Fed the sum alone, the shape path still needs x (Shape reads r1, upstream of the sum).
  assert.throws(() => extractSubgraph(model, [{ name: 'sum', type: { tensorType: { elemType: 1 } } }], ['y']), /tensor x is needed/);
});

for (const [label, make, sample] of [['tinyCnn', () => tinyCnn(), [3, 8, 8]], ['residual + shape path', residualModel, [3, 4, 4]]] as const) {
  // Exactly, not within a tolerance: a last-bit difference at a rounding tie moves an int8 value by a whole level.
  test(`${label}: per-layer scores from cuts equal whole-model evaluations of the same policies, bit for bit`, async () => {
    const s = await setup(make(), [...sample]);
    const fromCuts = await analyzeLayers(s, { samples: 14, statsSamples: 8, batchSize: 6 });
    const whole = await analyzeLayers(s, { samples: 14, statsSamples: 8, batchSize: 6, cuts: false });
    const names = s.base.layers.map((l) => l.name);
    assert.deepEqual(fromCuts.layers.map((l) => l.name), names);
    for (const [a, b] of fromCuts.layers.map((l, i) => [l, whole.layers[i]] as const)) {
      for (const k of ['int8Score', 'leaveOneOutScore', 'mse', 'kl', 'histogramOverlap'] as const) {
        assert.equal(a[k], b[k], `${a.name} ${k}: ${a[k]} (cuts) vs ${b[k]} (whole)`);
      }
    }
    // and both equal the evaluator's own whole-model scores of those policies
    for (const l of fromCuts.layers) {
      const alone = await s.evaluator.evaluate({ [l.name]: { precision: 'int8' } }, { samples: 14 });
      const leaveOut = await s.evaluator.evaluate({ ...uniformPolicy(names, 'int8'), [l.name]: { precision: 'fp32' } }, { samples: 14 });
      assert.equal(l.int8Score, alone.score, `${l.name} int8 alone`);
      assert.equal(l.leaveOneOutScore, leaveOut.score, `${l.name} leave-one-out`);
    }
  });
}

test('features: int8 moves every layer a little, Clip(0, 6) wastes half the range, amax per method, ranks 1..n', async () => {
  const s = await setup(tinyCnn(), [3, 8, 8]);
  const a = await analyzeLayers(s, { samples: 20, statsSamples: 12, batchSize: 8 });
  assert.equal(a.samples, 20);
  assert.equal(a.statsSamples, 12);
  assert.ok(close(a.fp32Score, 1), 'cosine of FP32 with itself');
  assert.ok(a.int8Score < 1);
  assert.equal(a.drop, 'relative');
  for (const l of a.layers) {
    assert.ok(l.int8Score < 1 && l.int8Drop > 0 && l.int8Drop < 0.1, `${l.name}: int8 alone ${l.int8Score}`);
    assert.ok(close(l.int8Drop, (a.fp32Score - l.int8Score) / a.fp32Score));
    assert.ok(close(l.leaveOneOutDrop, (l.leaveOneOutScore - a.int8Score) / a.fp32Score));
    assert.ok(l.mse > 0 && Number.isFinite(l.sqnrDb), `${l.name} mse ${l.mse}`);
    assert.ok(l.histogramOverlap > 0 && l.histogramOverlap <= 1 && l.kl >= 0);
    assert.ok(l.rangeWaste >= 0 && l.rangeWaste < 1);
    assert.ok(l.outlierFraction >= 0 && l.outlierFraction < 0.05);
    // max calibration clips nothing; every other method's amax is at most max's
    assert.equal(l.clippedFraction, 0);
    assert.equal(l.amax.input, l.inputAmax.max);
    for (const m of ['percentile-99.99', 'percentile-99.999', 'entropy', 'mse']) assert.ok(l.inputAmax[m] > 0 && l.inputAmax[m] <= l.inputAmax.max, `${l.name} ${m}`);
  }
  const dw = a.layers.find((l) => l.name === 'dw2')!;
  assert.deepEqual(dw.activationRange, [0, 6]);
  assert.ok(dw.rangeWaste >= 0.5, `Clip(0, 6) output in [0, max] uses at most half of [-amax, amax]: ${dw.rangeWaste}`);
  assert.ok(dw.flags.includes('range'));
  const conv1 = a.layers.find((l) => l.name === 'conv1')!;
  assert.ok(conv1.rangeWaste >= 0.5, 'ReLU outputs waste the negative half too');
  assert.deepEqual(a.layers.map((l) => l.rank).sort((x, y) => x - y), a.layers.map((_, i) => i + 1));
  assert.deepEqual(rankLayers(a.layers).map((l) => l.rank), a.layers.map((_, i) => i + 1));
});

test('a layer whose input calibration is ruined by one outlier ranks first, flagged by KL, with the worst SQNR', async () => {
  // One calibration value of 500 sets amax(x) under max calibration: x in [-1, 1] then rounds to 0 in int8.
  const calibData = randomInput([16, 3, 8, 8], 'calib');
  calibData[7] = 500;
  const s = await setup(tinyCnn(), [3, 8, 8], { calibData });
  const a = await analyzeLayers(s, { samples: 20, statsSamples: 20 });
  const top = rankLayers(a.layers)[0];
  assert.equal(top.name, 'conv1');
  assert.equal(top.rank, 1);
  assert.ok(top.int8Drop > 10 * Math.max(...a.layers.filter((l) => l !== top).map((l) => l.int8Drop)), `${top.int8Drop}`);
  assert.ok(top.leaveOneOutDrop > 0, 'leaving conv1 out of all-INT8 recovers accuracy');
  // The outlier also inflates the output's amax, so FP32 and int8 values share a few coarse levels and the
  // histograms still overlap much; the KL over those levels and the SQNR show the damage.
  assert.ok(top.flags.includes('kl'), `flags ${top.flags} (kl ${top.kl})`);
  for (const l of a.layers.filter((x) => x !== top)) {
    assert.ok(top.kl > l.kl && top.sqnrDb < l.sqnrDb && top.mse > l.mse, `${l.name}: kl ${l.kl}, sqnr ${l.sqnrDb}, mse ${l.mse}`);
  }
  assert.equal(top.inputAmax.max, 500);
  assert.ok(top.outlierFraction > 0, 'the outlier is beyond 4 std');
});

test('a metric where lower is better and FP32 scores 0 reports absolute drops with the right sign', async () => {
  const s = await setup(tinyCnn(), [3, 8, 8], { metric: 'mse' });
  const a = await analyzeLayers(s, { samples: 12, statsSamples: 6 });
  assert.equal(a.fp32Score, 0);
  assert.equal(a.drop, 'absolute');
  assert.equal(a.metric.higherIsBetter, false);
  for (const l of a.layers) assert.ok(l.int8Drop > 0 && close(l.int8Drop, l.int8Score), `${l.name} ${l.int8Drop}`);
});

test('cachedAnalysis runs once per evaluator and options', async () => {
  const s = await setup(tinyCnn(), [3, 8, 8]);
  const before = s.evaluator.evaluations;
  const [a, b] = await Promise.all([cachedAnalysis(s, { samples: 8 }), cachedAnalysis(s, { samples: 8 })]);
  assert.equal(a, b);
  assert.equal(s.evaluator.evaluations, before + 1, 'only the all-INT8 reference goes through the evaluator');
  const c: Analysis = await cachedAnalysis(s, { samples: 6 });
  assert.notEqual(c, a);
  assert.equal(c.samples, 6);
});

test('the analysis does not change the base model', async () => {
  const s = await setup(residualModel(), [3, 4, 4]);
  const nodes = s.base.model.graph!.node!.length;
  const outputs = s.base.model.graph!.output!.map((o) => o.name);
  await analyzeLayers(s, { samples: 6 });
  assert.equal(s.base.model.graph!.node!.length, nodes);
  assert.deepEqual(s.base.model.graph!.output!.map((o) => o.name), outputs);
  assert.ok(new Graph(buildSimulatedModel(s.base, {})).nodes.length > 0);
});

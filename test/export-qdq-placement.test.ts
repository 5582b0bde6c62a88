/**
 * The Q/DQ placement rules (src/quant/placement.ts), each on a model built in code, with the exported
 * model.qdq.onnx checked node by node and the simulation rendering the same placement: a residual block (the Conv
 * branch enters the Add unquantized, the skip branch is quantized; with a downsample Conv on the skip, the longer
 * branch is the fused one), a Concat of int8 results (one scale for all its inputs), small GEMMs / convs / GEMVs
 * (kept out of the search's INT8 actions), and a small ViT's attention MatMuls between activations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { discoverLayers } from '../src/onnx/layers.ts';
import { decodeModel, encodeModel, saveModel, type ModelProto, type NodeProto } from '../src/onnx/model.ts';
import { Graph } from '../src/onnx/graph.ts';
import { makeAttr, tensorToFloat32 } from '../src/onnx/tensor.ts';
import { collectStatistics, CalibrationTable } from '../src/quant/calibrate.ts';
import { autocastTensors, classifyOtherOps, collectRanges } from '../src/quant/autocast.ts';
import { int8Exclusion, quantizableTensors } from '../src/quant/placement.ts';
import { buildSimulatedModel, resolveAmax, type SimulationBase } from '../src/quant/simulate.ts';
import { runModel, sliceFeeds, type SampleSet } from '../src/quant/evaluator.ts';
import { buildQdqModel } from '../src/export/qdq-onnx.ts';
import { writeNpy } from '../src/data/npy.ts';
import { runSearch } from '../src/search/run.ts';
import type { Layer } from '../src/onnx/layer-types.ts';
import type { LayerPolicy, OtherOpsPrecision, PolicyFile, Precision } from '../src/policy.ts';
import { checkQdqRules } from './export-qdq-rules.ts';
import { makeModel, randomInput, randomTensor, valueInfo } from './fixtures/models.ts';
import { tinyVit } from './fixtures/vit.ts';

const N = 16;

interface Setup { base: SimulationBase; data: SampleSet; graph: Graph; layers: Layer[] }

async function setup(model: ModelProto, dims: number[], otherOps: OtherOpsPrecision = 'fp32'): Promise<Setup> {
  const { graph, layers } = await discoverLayers(model, { inputShapes: { x: [1, ...dims.slice(1)] } });
  const data: SampleSet = { count: dims[0], inputs: { x: { data: randomInput(dims, 'placement'), dims } } };
  const batches = (s: number, e: number) => sliceFeeds(data, s, e);
  const stats = await collectStatistics(model, quantizableTensors(graph, layers), dims[0], batches);
  const ranges = otherOps === 'fp16' ? await collectRanges(model, autocastTensors(graph, layers), dims[0], batches) : {};
  const base: SimulationBase = {
    model, graph, layers, calibration: new CalibrationTable(stats, dims[0]), defaultCalibration: { method: 'max' },
    otherOps: classifyOtherOps(otherOps, graph, layers, ranges),
  };
  return { base, data, graph, layers };
}

function policyFile(s: Setup, lp: LayerPolicy): PolicyFile {
  return {
    version: 1, model: { path: 'm.onnx', sha256: '' },
    layers: s.layers.map((l) => ({ name: l.name, op: l.op, precision: lp[l.name]?.precision ?? 'fp32', macs: l.macs })),
    calibration: { method: 'max', amax: resolveAmax(s.base, lp) }, otherOps: s.base.otherOps,
    metrics: { score: 0, fp32Score: 0, latencyMs: 0, fp16LatencyMs: 0, target: 't4' }, search: { agent: 'test', seed: 0, evaluations: 0, seconds: 0 },
  };
}

const uniform = (layers: Layer[], precision: Precision, overrides: Record<string, Precision> = {}): LayerPolicy =>
  Object.fromEntries(layers.map((l) => [l.name, { precision: overrides[l.name] ?? precision }]));

/** Exports the policy, checks the rules node by node, and compares the export's outputs with the simulation's. */
async function exportAndCompare(s: Setup, lp: LayerPolicy) {
  const { model, placement } = buildQdqModel(s.base.model, s.graph, s.layers, policyFile(s, lp));
  const checked = checkQdqRules(model, s.graph, s.layers, lp, placement.kernelOutput);
  const [sim, qdq] = [await runModel(buildSimulatedModel(s.base, lp), s.data, 8), await runModel(decodeModel(encodeModel(model)), s.data, 8)];
  let worst = 0;
  let range = 0;
  sim.forEach((o, i) => {
    for (const k of Object.keys(o)) o[k].data.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - qdq[i][k].data[j])); range = Math.max(range, Math.abs(v)); });
  });
  return { model, placement, ...checked, worst, range, view: new Graph(model) };
}

const producerOf = (view: Graph, t: string) => view.producer.get(t);
/** The tensor a DequantizeLinear's QuantizeLinear reads (through a Cast to float32 where the tensor is float16). */
function quantizedSource(view: Graph, t: string): string | undefined {
  const dq = producerOf(view, t);
  if (dq?.opType !== 'DequantizeLinear') return undefined;
  const q = producerOf(view, dq.input![0])!;
  const src = q.input![0];
  const c = producerOf(view, src);
  return c?.opType === 'Cast' ? c.input![0] : src;
}
const scaleOf = (model: ModelProto, view: Graph, t: string) => {
  const dq = producerOf(view, t)!;
  return tensorToFloat32(model.graph!.initializer!.find((i) => i.name === dq.input![1])!)[0];
};
const nodeNamed = (view: Graph, name: string) => view.nodes.find((n) => n.name === name)!;

function conv(name: string, x: string, cin: number, cout: number, k: number, y = name): NodeProto {
  return { name, opType: 'Conv', input: [x, `${name}.w`, `${name}.b`], output: [y], attribute: [makeAttr.ints('kernel_shape', [k, k]), makeAttr.ints('pads', new Array(4).fill((k - 1) / 2))] };
}
function convWeights(name: string, cin: number, cout: number, k: number) {
  return [randomTensor(`${name}.w`, [cout, cin, k, k], `${name}.w`, Math.sqrt(3 / (cin * k * k))), randomTensor(`${name}.b`, [cout], `${name}.b`, 0.1)];
}

/** x -> conv_a -> relu -> conv_b -> Add(., skip) -> relu -> conv_c; the skip is x, or conv_d(x) with a downsample. */
function residualBlock(downsample: boolean): ModelProto {
  const nodes: NodeProto[] = [
    conv('conv_a', 'x', 16, 16, 3), { name: 'relu_a', opType: 'Relu', input: ['conv_a'], output: ['relu_a'] },
    conv('conv_b', 'relu_a', 16, 16, 3),
    ...(downsample ? [conv('conv_d', 'x', 16, 16, 1)] : []),
    { name: 'residual', opType: 'Add', input: ['conv_b', downsample ? 'conv_d' : 'x'], output: ['sum'] },
    { name: 'relu_out', opType: 'Relu', input: ['sum'], output: ['block_out'] },
    conv('conv_c', 'block_out', 16, 16, 1, 'y'),
  ];
  const init = [...convWeights('conv_a', 16, 16, 3), ...convWeights('conv_b', 16, 16, 3), ...convWeights('conv_c', 16, 16, 1), ...(downsample ? convWeights('conv_d', 16, 16, 1) : [])];
  return makeModel(nodes, [valueInfo('x', ['N', 16, 8, 8])], [valueInfo('y', ['N', 16, 8, 8])], init);
}

test('residual block: the Conv branch enters the Add unquantized (Conv+Add fuse), the skip branch is quantized', async () => {
  for (const otherOps of ['fp32', 'fp16'] as const) {
    const s = await setup(residualBlock(false), [N, 16, 8, 8], otherOps);
    const lp = uniform(s.layers, 'int8');
    const r = await exportAndCompare(s, lp);
    const add = nodeNamed(r.view, 'residual');
    assert.equal(add.input![0], 'conv_b', `${otherOps}: conv_b's result goes into the Add as it is, no Q/DQ, no Cast`);
    assert.equal(quantizedSource(r.view, add.input![1]), 'x', `${otherOps}: the skip branch is quantized`);
    assert.equal(add.input![1], nodeNamed(r.view, 'conv_a').input![0], 'one Q/DQ for x, shared by conv_a and the skip');
    // The Add and its ReLU compute in the int8 kernel's float32 epilogue; conv_c quantizes the block's result.
    assert.equal(r.types.get('sum'), 1);
    assert.equal(quantizedSource(r.view, nodeNamed(r.view, 'conv_c').input![0]), 'block_out');
    assert.equal(r.q, 3, 'Q/DQ on x, relu_a and block_out only (the earlier placement had 5: also conv_b and y)');
    if (otherOps === 'fp32') assert.equal(r.worst, 0, 'bit-identical to the simulation');
    else assert.ok(r.worst <= 0.01 * r.range, `within float16 rounding: ${r.worst}`);
    // With conv_b in FP16 nothing fuses in INT8: the skip stays float.
    const f = await exportAndCompare(s, uniform(s.layers, 'int8', { conv_b: 'fp16' }));
    const add16 = nodeNamed(f.view, 'residual');
    assert.equal(quantizedSource(f.view, add16.input![1]), undefined, `${otherOps}: no Q/DQ on the skip of an FP16 branch`);
  }
});

test('residual block with a downsample Conv: the longer branch is fused, the downsample result is quantized', async () => {
  const s = await setup(residualBlock(true), [N, 16, 8, 8]);
  const r = await exportAndCompare(s, uniform(s.layers, 'int8'));
  const add = nodeNamed(r.view, 'residual');
  assert.equal(add.input![0], 'conv_b');
  assert.equal(quantizedSource(r.view, add.input![1]), 'conv_d', 'conv_d writes INT8 for the fused Add');
  assert.equal(r.placement.kernelOutput.get('conv_b'), 'block_out');
  assert.equal(r.placement.kernelOutput.get('conv_d'), 'conv_d');
  assert.ok(r.placement.int8Stored.has('conv_d'), 'every reader of conv_d reads it in INT8');
  assert.equal(r.worst, 0);
});

test('Concat of int8 results: every input quantized with the one scale of the Concat\'s quantized result', async () => {
  const nodes: NodeProto[] = [
    conv('conv1', 'x', 16, 16, 3), { name: 'relu1', opType: 'Relu', input: ['conv1'], output: ['r1'] },
    conv('conv2', 'x', 16, 16, 1), { name: 'relu2', opType: 'Relu', input: ['conv2'], output: ['r2'] },
    { name: 'cat', opType: 'Concat', input: ['r1', 'r2'], output: ['cat'], attribute: [makeAttr.int('axis', 1)] },
    conv('conv3', 'cat', 32, 16, 1, 'y'),
  ];
  const model = makeModel(nodes, [valueInfo('x', ['N', 16, 8, 8])], [valueInfo('y', ['N', 16, 8, 8])], [...convWeights('conv1', 16, 16, 3), ...convWeights('conv2', 16, 16, 1), ...convWeights('conv3', 32, 16, 1)]);
  for (const otherOps of ['fp32', 'fp16'] as const) {
    const s = await setup(model, [N, 16, 8, 8], otherOps);
    const r = await exportAndCompare(s, uniform(s.layers, 'int8'));
    const cat = nodeNamed(r.view, 'cat');
    assert.deepEqual(cat.input!.map((t) => quantizedSource(r.view, t)), ['r1', 'r2']);
    assert.equal(quantizedSource(r.view, nodeNamed(r.view, 'conv3').input![0]), 'cat');
    const scales = [...cat.input!, nodeNamed(r.view, 'conv3').input![0]].map((t) => scaleOf(r.model, r.view, t));
    assert.equal(new Set(scales).size, 1, `${otherOps}: one scale for the Concat's inputs and result: ${scales}`);
    const amax = Math.max(...['r1', 'r2', 'cat'].map((t) => s.base.calibration.stats[t].absMax));
    assert.equal(scales[0], Math.fround(amax / 127), 'the largest amax of the group (max calibration)');
    if (otherOps === 'fp32') assert.equal(r.worst, 0);
    // No quantized reader of the Concat: its inputs stay float.
    const f = await exportAndCompare(s, uniform(s.layers, 'int8', { conv3: 'fp16' }));
    assert.deepEqual(nodeNamed(f.view, 'cat').input!.map((t) => quantizedSource(f.view, t)), [undefined, undefined]);
  }
});

test('small GEMMs, GEMVs and convs with few channels are excluded from INT8 (ModelOpt\'s rules); the search never picks int8 for them', async () => {
  const nodes: NodeProto[] = [
    conv('stem', 'x', 3, 16, 3),
    conv('dw_ok', 'stem', 16, 16, 3), conv('squeeze', 'dw_ok', 16, 8, 1), conv('narrow', 'squeeze', 8, 6, 3),
    { name: 'gap', opType: 'GlobalAveragePool', input: ['narrow'], output: ['g'] },
    { name: 'flat', opType: 'Flatten', input: ['g'], output: ['f'], attribute: [makeAttr.int('axis', 1)] },
    { name: 'k_small', opType: 'MatMul', input: ['f', 'k_small.w'], output: ['k'] },
    { name: 'gemv', opType: 'Gemm', input: ['k', 'gemv.w', 'gemv.b'], output: ['logits'] },
  ];
  nodes[1].attribute!.push(makeAttr.int('group', 16));
  const init = [
    ...convWeights('stem', 3, 16, 3), randomTensor('dw_ok.w', [16, 1, 3, 3], 'dw', 0.5), randomTensor('dw_ok.b', [16], 'dwb', 0.1),
    ...convWeights('squeeze', 16, 8, 1), ...convWeights('narrow', 8, 6, 3), randomTensor('k_small.w', [6, 32], 'km', 0.5), randomTensor('gemv.w', [32, 32], 'gw', 0.3), randomTensor('gemv.b', [32], 'gb', 0.1),
  ];
  const model = makeModel(nodes, [valueInfo('x', ['N', 3, 8, 8])], [valueInfo('logits', ['N', 32])], init);
  const { graph, layers } = await discoverLayers(model, { inputShapes: { x: [1, 3, 8, 8] } });
  const why = Object.fromEntries(layers.map((l) => [l.name, int8Exclusion(l, graph)]));
  assert.equal(why.stem, undefined, 'a 3-channel first layer with 16 outputs is fine (ModelOpt: first layer, OC % 8 = 0)');
  assert.equal(why.dw_ok, undefined, 'a depthwise 3x3 conv with 16 channels is fine');
  assert.equal(why.squeeze, undefined, '16 -> 8 channels: one side >= 16 and a multiple of 8');
  assert.match(why.narrow!, /8 input \/ 6 output channels/);
  assert.match(why.k_small!, /K=6/);
  assert.match(why.gemv!, /GEMV/);
  // The search's action set masks int8 / mixed for them; the uniform int8 agent falls back to fp16 there.
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-small-'));
  saveModel(model, join(dir, 'm.onnx'));
  writeNpy(join(dir, 'x.npy'), { dtype: 'float32', shape: [24, 3, 8, 8], data: randomInput([24, 3, 8, 8], 'small') });
  const out = await runSearch({ model: join(dir, 'm.onnx'), data: join(dir, 'x.npy'), out: join(dir, 'run'), agent: 'int8', 'calib-samples': 8, 'eval-samples': 16, 'screen-samples': 0, metric: 'cosine', 'max-drop': 1 }, { quiet: true, log: () => {} });
  const chosen = Object.fromEntries(out.policy!.layers.map((l) => [l.name, l.precision]));
  assert.deepEqual(chosen, { stem: 'int8', dw_ok: 'int8', squeeze: 'int8', narrow: 'fp16', k_small: 'fp16', gemv: 'fp16' });
  // A policy that still puts them in INT8 is exported as it says, with a warning.
  const forced = buildQdqModel(out.setup.exp.base.model, graph, layers, { ...out.policy!, layers: out.policy!.layers.map((l) => ({ ...l, precision: 'int8' as const })), calibration: { method: 'max', amax: resolveAmax(out.setup.exp.base, uniform(out.setup.exp.loaded.layers, 'int8')) } });
  assert.ok(forced.warnings.some((w) => /3 layer\(s\) get int8 although TensorRT has no fast INT8 kernel/.test(w)), forced.warnings.join('\n'));
});

test('ViT: attention MatMuls quantize both activations per tensor; Softmax, LayerNorm and Gelu run in FP16; the residual skip is quantized', async () => {
  const s = await setup(tinyVit(), [8, 3, 32, 32], 'fp16');
  const lp = uniform(s.layers, 'int8', { head: 'fp16' });
  const r = await exportAndCompare(s, lp);
  for (const b of [0, 1]) {
    const scores = nodeNamed(r.view, `blocks.${b}.attn.scores`);
    assert.deepEqual(scores.input!.map((t) => quantizedSource(r.view, t)), [`blocks.${b}.attn.q_heads`, `blocks.${b}.attn.k_heads`]);
    for (const t of scores.input!) assert.equal(r.view.constantValues(producerOf(r.view, t)!.input![1])!.data.length, 1, 'per-tensor scale');
    const mix = nodeNamed(r.view, `blocks.${b}.attn.mix`);
    assert.deepEqual(mix.input!.map((t) => quantizedSource(r.view, t)), [`blocks.${b}.attn.softmax`, `blocks.${b}.attn.v_heads`]);
    // Nothing quantizes the Softmax's input: it reads the scores' float result.
    const softmax = nodeNamed(r.view, `blocks.${b}.attn.softmax`);
    assert.equal(quantizedSource(r.view, softmax.input![0]), undefined);
    assert.equal(r.types.get(`blocks.${b}.attn.softmax`), 10, 'Softmax computes in float16');
    assert.equal(r.types.get(`blocks.${b}.norm1`), 10, 'LayerNormalization computes in float16');
    assert.equal(r.types.get(`blocks.${b}.mlp.gelu`), 1, 'Gelu is fc1\'s fused activation: the int8 kernel\'s float32 epilogue');
    const residual = nodeNamed(r.view, `blocks.${b}.attn.residual`);
    assert.equal(residual.input![0], `blocks.${b}.attn.proj.bias_add`, 'proj enters its residual Add unquantized');
    assert.ok(quantizedSource(r.view, residual.input![1]), 'the skip branch is quantized');
  }
  assert.ok(r.worst <= 0.01 * r.range, `export vs simulation within float16 rounding: ${r.worst} of ${r.range}`);
  // --other-ops fp32 and no FP16 layer: bit-identical.
  const s32 = await setup(tinyVit(), [8, 3, 32, 32], 'fp32');
  const r32 = await exportAndCompare(s32, uniform(s32.layers, 'int8', { head: 'mixed' }));
  assert.equal(r32.worst, 0);
});

/**
 * Models as old and new exporters write them: opset-6 attributes later opsets removed, Upsample, If subgraphs
 * (their layers stay FP32 and info says so), and the models trtmix refuses with one line (already quantized,
 * float16, ones onnxruntime itself cannot run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel, saveModel, structuralCopy, opsetVersion, type ModelProto } from '../src/onnx/model.ts';
import { upgradeOpset } from '../src/onnx/opset.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { Graph, implicitInputs } from '../src/onnx/graph.ts';
import { createSession, ort } from '../src/onnx/runtime.ts';
import { writeNpy } from '../src/data/npy.ts';
import { runSearch } from '../src/search/run.ts';
import { randomInput } from './fixtures/models.ts';
import { fp16Mlp, ifPostprocess, opset6Legacy, qdqMlp, upsampleOpset9 } from './fixtures/user-models.ts';
import { assertUserError, trtmix } from './cli-helpers.ts';

async function run(model: ModelProto | Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>) {
  const s = await createSession(model, { optimization: 'basic' });
  try {
    const r = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)])));
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data as Float32Array]));
  } finally {
    await s.release();
  }
}

function folder(): string {
  return mkdtempSync(join(tmpdir(), 'trtmix-models-'));
}

test('opset 6: Gemm broadcast and Add broadcast with an axis mean at opset 13 what they meant', async () => {
  const model = upgradeOpset(structuralCopy(opset6Legacy()));
  assert.equal(opsetVersion(model), 13);
  assert.ok(model.graph!.node!.every((n) => !(n.attribute ?? []).some((a) => a.name === 'broadcast' || (n.opType === 'Add' && a.name === 'axis'))));
  const x = randomInput([2, 5], 'o6-x');
  const img = randomInput([2, 3, 4, 4], 'o6-img');
  const out = await run(model, { x: { data: x, dims: [2, 5] }, img: { data: img, dims: [2, 3, 4, 4] } });
  const init = Object.fromEntries(opset6Legacy().graph!.initializer!.map((t) => [t.name!, new Float32Array(t.rawData!.slice().buffer)]));
  for (let r = 0; r < 2; r++) {
    for (let o = 0; o < 6; o++) {
      let v = init['fc.bias'][o];
      for (let k = 0; k < 5; k++) v += x[r * 5 + k] * init['fc.weight'][o * 5 + k];
      assert.ok(Math.abs(out.y[r * 6 + o] - v) < 1e-5, `gemm [${r},${o}]`);
    }
  }
  // The bias belongs to the channel axis (axis=1), not to the last one as numpy broadcasting would read [3].
  for (let i = 0; i < img.length; i++) assert.ok(Math.abs(out.z[i] - (img[i] + init['channel.bias'][Math.floor(i / 16) % 3])) < 1e-6, `add ${i}`);
  const { layers } = await discoverLayers(model);
  assert.deepEqual(layers.map((l) => l.name), ['gemm']);
});

test('Upsample (opset 9) becomes a Resize that onnxruntime computes identically', async () => {
  const original = upsampleOpset9();
  const upgraded = upgradeOpset(structuralCopy(original));
  assert.deepEqual(upgraded.graph!.node!.map((n) => n.opType), ['Conv', 'Resize', 'Conv']);
  const feeds = { x: { data: randomInput([2, 3, 6, 6], 'up-x'), dims: [2, 3, 6, 6] } };
  assert.deepEqual((await run(upgraded, feeds)).y, (await run(encodeModel(original), feeds)).y);
});

test('an If subgraph: its MatMul stays FP32, info says so, and the search runs around it', async () => {
  const model = ifPostprocess();
  const graph = new Graph(model);
  const post = graph.nodes.find((n) => n.opType === 'If')!;
  assert.deepEqual(implicitInputs(post).sort(), ['box.w', 'pooled'], 'the branch reads main-graph values by name');
  assert.ok(graph.consumersOf('pooled').includes(post), 'and so the If counts among their readers');
  const dir = folder();
  const path = join(dir, 'det.onnx');
  saveModel(model, path);
  const info = await trtmix(['info', '--model', path, '--input-shape', 'x:1x3x8x8']);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /2 quantizable layers/);
  assert.match(info.stdout, /1 more layer sits inside If post and stays FP32: trtmix decides only the layers of the main graph \(boxes\)/);
  const json = JSON.parse((await trtmix(['info', '--model', path, '--input-shape', 'x:1x3x8x8', '--json'])).stdout);
  assert.deepEqual(json.controlFlowLayers, [{ name: 'boxes', op: 'MatMul', parent: 'post', parentOp: 'If' }]);
  const data = join(dir, 'x.npy');
  writeNpy(data, { dtype: 'float32', shape: [32, 3, 8, 8], data: randomInput([32, 3, 8, 8], 'if-data') });
  const r = await runSearch({ model: path, data, out: join(dir, 'run'), 'calib-samples': 8, 'eval-samples': 16, 'screen-samples': 0, 'analysis-samples': 8, agent: 'greedy', 'max-evaluations': 3, metric: 'cosine' }, { quiet: true, log: () => {} });
  assert.equal(r.status, 'done');
  assert.deepEqual(r.policy!.layers.map((l) => l.name), ['conv', 'head']);
});

test('models trtmix refuses, each with one line: already quantized, float16, not loadable by onnxruntime', async () => {
  const dir = folder();
  const save = (name: string, m: ModelProto) => { const p = join(dir, name); saveModel(m, p); return p; };
  assertUserError(await trtmix(['info', '--model', save('qdq.onnx', qdqMlp())]), /the model is already quantized \(1 QuantizeLinear, 1 DequantizeLinear\); trtmix decides per layer where INT8 goes, starting from the FP32 model: pass the model as exported before quantization/);
  assertUserError(await trtmix(['info', '--model', save('half.onnx', fp16Mlp())]), /the model computes in float16 \(the weights of \/fc1\/MatMul are float16\); .*export it in float32 \(model\.float\(\) before torch\.onnx\.export\)/);
  const unknown = qdqMlp();
  unknown.graph!.node = unknown.graph!.node!.slice(2);
  unknown.graph!.node[0].input = ['x', 'fc1.weight'];
  unknown.graph!.node.splice(1, 0, { name: 'odd', opType: 'NoSuchOp', input: ['h1'], output: ['h1x'] });
  unknown.graph!.node[2].input = ['h1x', 'fc1.bias'];
  assertUserError(await trtmix(['info', '--model', save('unknown.onnx', unknown)]), /onnxruntime cannot load the model: .*NoSuchOp/);
  writeFileSync(join(dir, 'notes.txt'), 'x');
});

test('a Gemm between batch reshapes (how exporters write a Linear on [batch, tokens, features]) is one layer with per-sample MACs', async () => {
  const { makeModel, randomTensor, valueInfo } = await import('./fixtures/models.ts');
  const { int64Tensor, makeAttr } = await import('../src/onnx/tensor.ts');
  const model = makeModel([
    { name: 'flatten', opType: 'Reshape', input: ['x', 'flat_shape'], output: ['x2'] },
    { name: '/proj/Gemm', opType: 'Gemm', input: ['x2', 'proj.weight', 'proj.bias'], output: ['y2'], attribute: [makeAttr.int('transB', 1)] },
    { name: 'unflatten', opType: 'Reshape', input: ['y2', 'out_shape'], output: ['y'] },
  ], [valueInfo('x', [4, 6, 8])], [valueInfo('y', [4, 6, 5])], [
    randomTensor('proj.weight', [5, 8], 'gr-w'), randomTensor('proj.bias', [5], 'gr-b'), int64Tensor('flat_shape', [2], [-1, 8]), int64Tensor('out_shape', [3], [4, 6, 5]),
  ], 17);
  const { layers, inputShapes } = await discoverLayers(model);
  assert.deepEqual(inputShapes, { x: [4, 6, 8] });
  assert.equal(layers.length, 1);
  assert.deepEqual(layers[0].inputShape, [24, 8]);
  assert.equal(layers[0].macs, 6 * 8 * 5, 'per sample: 6 tokens x 8 inputs x 5 outputs');
  assert.equal(layers[0].weightAxis, 0);
});

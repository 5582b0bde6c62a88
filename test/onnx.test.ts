import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, saveModel, encodeModel, decodeModel, opsetVersion } from '../src/onnx/model.ts';
import { Graph, trtLayerName, topologicalSort } from '../src/onnx/graph.ts';
import { upgradeOpset } from '../src/onnx/opset.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { createSession, toOrtFeeds } from '../src/onnx/runtime.ts';
import { UserError } from '../src/errors.ts';
import { PPOCR_MODELS } from '../src/examples.ts';
import { tinyCnn, tinyAttention, randomInput, valueInfo } from './fixtures/models.ts';

async function run(model: Uint8Array, name: string, data: Float32Array, dims: number[]) {
  const s = await createSession(model, { optimization: 'disabled' });
  const out = await s.run(toOrtFeeds({ [name]: { data, dims } }));
  await s.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

for (const example of Object.values(PPOCR_MODELS)) {
  test(`decode -> encode -> run gives identical outputs: ${example.id}`, async () => {
    const original = readFileSync(example.path);
    const model = loadModel(example.path);
    const dir = mkdtempSync(join(tmpdir(), 'trtmix-'));
    saveModel(model, join(dir, 'copy.onnx'));
    const copy = readFileSync(join(dir, 'copy.onnx'));
    const dims = example.inputShape;
    const x = randomInput(dims, example.id);
    const a = await run(original, 'x', x, dims);
    const b = await run(copy, 'x', x, dims);
    assert.deepEqual(Object.keys(b), Object.keys(a));
    for (const k of Object.keys(a)) assert.deepEqual(b[k], a[k], `output ${k} differs after the round trip`);
  });
}

test('opset upgrade to 13 keeps the PP-OCR recognizer (opset 9: Clip, Slice, Squeeze, Softmax) numerically identical', async () => {
  const rec = PPOCR_MODELS.rec;
  const model = loadModel(rec.path);
  assert.equal(opsetVersion(model), 9);
  const upgraded = upgradeOpset(loadModel(rec.path));
  assert.equal(opsetVersion(upgraded), 13);
  const x = randomInput(rec.inputShape, 'upgrade');
  const a = await run(readFileSync(rec.path), 'x', x, rec.inputShape);
  const b = await run(encodeModel(upgraded), 'x', x, rec.inputShape);
  for (const k of Object.keys(a)) {
    let maxDiff = 0;
    for (let i = 0; i < a[k].length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[k][i] - b[k][i]));
    assert.ok(maxDiff < 1e-6, `output ${k} moved by ${maxDiff}`);
  }
});

test('unnamed nodes get TensorRT parser names: node_of_<first output>', () => {
  const g = new Graph(tinyCnn());
  const names = g.nodes.map(trtLayerName);
  assert.ok(names.includes('node_of_logits'));
  assert.ok(names.includes('conv1'));
});

test('topological order puts producers first even when the file lists nodes out of order', () => {
  const model = tinyCnn();
  model.graph!.node = [...model.graph!.node!].reverse();
  const order = topologicalSort(model.graph!).map((n) => n.name);
  assert.ok(order.indexOf('conv1') < order.indexOf('relu1'));
  assert.ok(order.indexOf('fc') < order.indexOf(''));
});

test('a cycle in the graph is a user error', () => {
  const model = tinyCnn();
  model.graph!.node![0].input = ['logits', 'w1', 'b1'];
  assert.throws(() => topologicalSort(model.graph!), UserError);
});

test('layer discovery on a small CNN: ops, shapes, depthwise, axes, MACs, fused activations', async () => {
  const { layers } = await discoverLayers(tinyCnn(), { inputShapes: { x: [1, 3, 8, 8] } });
  assert.deepEqual(layers.map((l) => l.name), ['conv1', 'dw2', 'pw3', 'fc', 'node_of_logits']);
  const [c1, dw, pw, fc, mm] = layers;
  assert.deepEqual(c1.outputShape, [1, 8, 8, 8]);
  assert.equal(c1.macs, 8 * 8 * 8 * 3 * 9);
  assert.equal(c1.params, 8 * 3 * 9 + 8);
  assert.equal(c1.activation, 'relu');
  assert.equal(c1.fusedOutput, 'r1');
  assert.equal(dw.depthwise, true);
  assert.equal(dw.groups, 8);
  assert.deepEqual(dw.stride, [2, 2]);
  assert.deepEqual(dw.outputShape, [1, 8, 4, 4]);
  assert.equal(dw.macs, 8 * 4 * 4 * 1 * 9);
  assert.equal(dw.activation, 'relu6');
  assert.deepEqual(dw.activationRange, [0, 6]);
  assert.equal(pw.activation, 'swish');
  assert.equal(pw.fusedOutput, 'r3');
  assert.equal(fc.op, 'Gemm');
  assert.equal(fc.weightAxis, 0, 'Gemm with transB=1 stores output channels on axis 0');
  assert.equal(fc.macs, 16 * 10);
  assert.equal(mm.weightAxis, 1, 'MatMul weight [K, N]: output channels on axis 1');
  assert.equal(mm.weightIsConstant, true);
  assert.ok(layers.every((l, i) => l.index === i));
});

test('MatMul between two activations is flagged as such', async () => {
  const { layers } = await discoverLayers(tinyAttention(), { inputShapes: { x: [1, 6, 8] } });
  const scores = layers.find((l) => l.name === 'scores')!;
  assert.equal(scores.weightIsConstant, false);
  assert.deepEqual(scores.weightShape, [1, 8, 6]);
  assert.equal(scores.macs, 6 * 6 * 8);
  assert.equal(layers.find((l) => l.name === 'q')!.weightIsConstant, true);
});

test('PP-OCR weights arrive through Constant nodes and are still seen as weights', async () => {
  const model = upgradeOpset(loadModel(PPOCR_MODELS.rec.path));
  const { layers } = await discoverLayers(model, { inputShapes: { x: PPOCR_MODELS.rec.inputShape } });
  assert.equal(layers.length, 51);
  assert.equal(layers.filter((l) => l.op === 'Conv').length, 38);
  assert.equal(layers.filter((l) => !l.weightIsConstant).length, 4, 'two attention blocks, two activation MatMuls each');
  assert.ok(layers.filter((l) => l.activation === 'hardswish').length >= 20);
});

test('bad model files are user errors with one clear line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-'));
  assert.throws(() => loadModel(join(dir, 'missing.onnx')), /does not exist/);
  writeFileSync(join(dir, 'empty.onnx'), '');
  assert.throws(() => loadModel(join(dir, 'empty.onnx')), /empty/);
  writeFileSync(join(dir, 'text.onnx'), 'this is not a protobuf at all, just some text\n');
  assert.throws(() => loadModel(join(dir, 'text.onnx')), (e: Error) => e instanceof UserError && /not an ONNX model/.test(e.message));
  const truncated = encodeModel(tinyCnn()).slice(0, 100);
  assert.throws(() => decodeModel(truncated), UserError);
  assert.throws(() => loadModel(dir), /not a file/);
});

test('dynamic input dims need --input-shape; a wrong shape is refused', async () => {
  const model = tinyAttention();
  model.graph!.input = [valueInfo('x', ['N', 'T', 8])];
  await assert.rejects(discoverLayers(model), /dynamic dims.*--input-shape x:1xNx8/);
  const { layers } = await discoverLayers(model, { inputShapes: { x: [1, 6, 8] } });
  assert.equal(layers.length, 4);
  await assert.rejects(discoverLayers(tinyCnn({ batch: 1 }), { inputShapes: { x: [1, 4, 8, 8] } }), /does not match/);
  await assert.rejects(discoverLayers(tinyCnn(), { inputShapes: { y: [1, 3, 8, 8] } }), /model's inputs are x/);
});

test('a model without quantizable layers is refused', async () => {
  const model = tinyAttention();
  model.graph!.node = [{ name: 'id', opType: 'Relu', input: ['x'], output: ['y'] }];
  await assert.rejects(discoverLayers(model, { inputShapes: { x: [1, 6, 8] } }), /no quantizable layers/);
});

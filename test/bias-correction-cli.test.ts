import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { decodeModel, saveModel } from '../src/onnx/model.ts';
import { Graph } from '../src/onnx/graph.ts';
import { floatTensor } from '../src/onnx/tensor.ts';
import { writeNpy } from '../src/data/npy.ts';
import type { PolicyFile } from '../src/policy.ts';
import { makeModel, randomTensor, valueInfo } from './fixtures/models.ts';
import { trtmix } from './cli-helpers.ts';

const N = 64;
const H = 6;
let dir: string;
let model: string;
let data: string;

/**
 * conv1 (3->16, 3x3, no bias) -> relu -> conv2 (16->16, 1x1, bias), positive weights: a clipped input's shift reaches
 * every output channel. conv2's bias is large enough that its shift stays within the magnitude rule (below 2x the bias).
 */
function skewModel() {
  const positive = (name: string, dims: number[], seed: string) => {
    const t = randomTensor(name, dims, seed, 0.3);
    const v = new Float32Array(t.rawData!.buffer.slice(t.rawData!.byteOffset, t.rawData!.byteOffset + t.rawData!.byteLength));
    return floatTensor(name, dims, v.map((w) => Math.abs(w) + 0.02));
  };
  return makeModel(
    [
      { name: 'conv1', opType: 'Conv', input: ['x', 'w1'], output: ['c1'] },
      { name: 'relu', opType: 'Relu', input: ['c1'], output: ['r1'] },
      { name: 'conv2', opType: 'Conv', input: ['r1', 'w2', 'b2'], output: ['y'] },
    ],
    [valueInfo('x', ['N', 3, H, H])], [valueInfo('y', ['N', 16, H - 2, H - 2])],
    [positive('w1', [16, 3, 3, 3], 'cli-w1'), positive('w2', [16, 16, 1, 1], 'cli-w2'), floatTensor('b2', [16], Array.from({ length: 16 }, (_, c) => 2 + 0.1 * c))],
  );
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trtmix-bias-'));
  model = join(dir, 'skew.onnx');
  data = join(dir, 'skew.npy');
  saveModel(skewModel(), model);
  // Uniform on [-1, 3]: percentile calibration at 90 % clips the top of the positive side in every sample, a shift of
  // every sample's mean (a rare heavy tail would shift the mean over samples, not each sample's).
  const rng = seedrandom('cli-skew');
  const x = new Float32Array(N * 3 * H * H);
  for (let i = 0; i < x.length; i++) x[i] = rng() * 4 - 1;
  writeNpy(data, { dtype: 'float32', shape: [N, 3, H, H], data: x });
});

const search = (out: string, ...extra: string[]) => trtmix([
  'search', '--model', model, '--data', data, '--metric', 'sqnr', '--max-drop', '0.99', '--calibration', 'percentile', '--percentile', '90',
  '--calib-samples', '24', '--eval-samples', '24', '--screen-samples', '0', '--analysis-samples', '8', '--agent', 'int8',
  '--other-ops', 'fp32', '--out', out, '--json', ...extra,
]);

test('search --bias-correction: policy.json records the deltas, model.qdq.onnx and model.corrected.onnx carry them, the commands build from the corrected model, replay reproduces the score', async () => {
  const plainOut = join(dir, 'plain');
  const out = join(dir, 'corrected');
  const plain = await search(plainOut);
  assert.equal(plain.code, 0, plain.stderr);
  const r = await search(out, '--bias-correction', '--bias-passes', '2');
  assert.equal(r.code, 0, r.stderr);
  const policy = JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8')) as PolicyFile;
  const plainPolicy = JSON.parse(readFileSync(join(plainOut, 'policy.json'), 'utf8')) as PolicyFile;
  assert.equal(plainPolicy.biasCorrection, undefined);
  assert.equal(policy.layers.every((l) => l.precision === 'int8'), true);
  const bc = policy.biasCorrection!;
  assert.deepEqual(Object.keys(bc.layers), ['conv1', 'conv2']);
  assert.equal(bc.samples, 24);
  assert.equal(bc.layers.conv1.length, 16);
  // The clipped tail makes every conv1 channel too small: every delta is positive.
  assert.ok(bc.layers.conv1.every((d) => d > 0), `conv1 deltas ${bc.layers.conv1.join(', ')}`);
  // Removing the mean error raises the SQNR against FP32 (two passes: conv2 measured with conv1 corrected, the sequential correction).
  assert.ok(policy.metrics.score > plainPolicy.metrics.score + 0.3, `corrected ${policy.metrics.score} dB, plain ${plainPolicy.metrics.score} dB`);

  // model.qdq.onnx: conv1 reads a created bias equal to its delta; conv2's is b2 + delta.
  const qdq = new Graph(decodeModel(readFileSync(join(out, 'model.qdq.onnx'))));
  const conv1 = qdq.nodes.find((n) => n.name === 'conv1')!;
  assert.deepEqual(Array.from(qdq.constantValues(conv1.input![2])!.data), bc.layers.conv1.map(Math.fround));
  const b2 = new Graph(skewModel()).constantValues('b2')!.data;
  const conv2 = qdq.nodes.find((n) => n.name === 'conv2')!;
  assert.deepEqual(Array.from(qdq.constantValues(conv2.input![2])!.data), Array.from(b2, (b, c) => Math.fround(b + Math.fround(bc.layers.conv2[c]))));
  // The implicit path: model.corrected.onnx has the same biases, and every command builds from it.
  const corrected = new Graph(decodeModel(readFileSync(join(out, 'model.corrected.onnx'))));
  assert.deepEqual(Array.from(corrected.constantValues(corrected.nodes.find((n) => n.name === 'conv1')!.input![2])!.data), bc.layers.conv1.map(Math.fround));
  for (const f of ['trtexec.txt', 'polygraphy.txt']) assert.match(readFileSync(join(out, f), 'utf8'), /model\.corrected\.onnx/, f);
  assert.match(readFileSync(join(out, 'build_engine.py'), 'utf8'), /model\.corrected\.onnx/);
  assert.equal(existsSync(join(plainOut, 'model.corrected.onnx')), false);

  const replay = await trtmix(['replay', join(out, 'policy.json'), '--model', model, '--data', data, '--metric', 'sqnr', '--json']);
  assert.equal(replay.code, 0, replay.stderr);
  const rep = JSON.parse(replay.stdout);
  assert.ok(rep.reproduced.score, `replay ${rep.score}, recorded ${policy.metrics.score}`);
  assert.equal(rep.score, policy.metrics.score);
});

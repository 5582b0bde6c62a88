/**
 * Models whose weights live in external data (`model.onnx.data`, PyTorch's default since 2.6): found beside the
 * model wherever trtmix runs from, never copied into a session's protobuf, and written back beside the exports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, truncateSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeModel, encodeModel, loadModel, saveModel, savesExternalData } from '../src/onnx/model.ts';
import { hasExternalData, isExternal } from '../src/onnx/external-data.ts';
import { createSession, sessionBytes, toOrtFeeds, ort } from '../src/onnx/runtime.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { buildSimulatedModel, type SimulationBase } from '../src/quant/simulate.ts';
import { CalibrationTable, calibrationTensors, collectStatistics } from '../src/quant/calibrate.ts';
import { sliceFeeds } from '../src/quant/evaluator.ts';
import { uniformPolicy } from '../src/policy.ts';
import { writeNpy } from '../src/data/npy.ts';
import { UserError } from '../src/errors.ts';
import { randomInput } from './fixtures/models.ts';
import { tinyMlp } from './fixtures/user-models.ts';
import { assertUserError, FAST, trtmix } from './cli-helpers.ts';

/** tinyMlp saved as an exporter with external data writes it: model.onnx + model.onnx.data in `dir`. */
function exportWithExternalData(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'model.onnx');
  saveModel(tinyMlp(), path, { externalData: true });
  return path;
}

async function outputs(model: Parameters<typeof createSession>[0], x: Float32Array, n: number): Promise<Float32Array> {
  const s = await createSession(model);
  try {
    return (await s.run(toOrtFeeds({ x: { data: x, dims: [n, 64] } }))).logits.data as Float32Array;
  } finally {
    await s.release();
  }
}

test('saveModel with external data writes model.onnx.data beside it, which onnxruntime finds from the model path', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-ext-'));
  const path = exportWithExternalData(join(dir, 'export'));
  assert.ok(existsSync(`${path}.data`));
  const onnx = decodeModel(readFileSync(path));
  const external = onnx.graph!.initializer!.filter(isExternal);
  assert.deepEqual(external.map((t) => t.name).sort(), ['fc1.weight', 'fc2.weight', 'head.weight'], 'weights of 1 KiB and more are external, small biases inline');
  assert.ok(statSync(path).size < 2048, 'the .onnx holds the graph, not the weights');
  // onnxruntime itself, from the file path: the locations are relative to the model, as the ONNX spec says.
  const x = randomInput([3, 64], 'ext-x');
  const fromPath = await ort.InferenceSession.create(path);
  const direct = (await fromPath.run({ x: new ort.Tensor('float32', x, [3, 64]) })).logits.data as Float32Array;
  await fromPath.release();
  assert.deepEqual(await outputs(encodeModel(tinyMlp()), x, 3), direct);
});

test('loadModel resolves external data beside the model whatever the working folder, and sessions read it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-ext-'));
  const path = exportWithExternalData(join(dir, 'export'));
  const cwd = process.cwd();
  process.chdir(tmpdir());
  try {
    const model = loadModel(join(dir, 'export', 'model.onnx'));
    assert.ok(hasExternalData(model));
    const x = randomInput([5, 64], 'ext-y');
    assert.deepEqual(await outputs(model, x, 5), await outputs(encodeModel(tinyMlp()), x, 5));
  } finally {
    process.chdir(cwd);
  }
  assert.ok(existsSync(path));
});

test('a simulated model of any policy reaches onnxruntime as a graph without weight bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-ext-'));
  const model = loadModel(exportWithExternalData(join(dir, 'export')));
  const { graph, layers, inputShapes } = await discoverLayers(model);
  assert.deepEqual(inputShapes, { x: [1, 64] });
  const data = { count: 16, inputs: { x: { data: randomInput([16, 64], 'ext-calib'), dims: [16, 64] } } };
  const stats = await collectStatistics(model, calibrationTensors(layers), 16, (s, e) => sliceFeeds(data, s, e));
  const base: SimulationBase = { model, graph, layers, calibration: new CalibrationTable(stats, 16), defaultCalibration: { method: 'max' } };
  const weightBytes = (64 * 64 + 32 * 64 + 32 * 8) * 4;
  for (const precision of ['int8', 'fp16', 'mixed'] as const) {
    const sim = buildSimulatedModel(base, uniformPolicy(layers.map((l) => l.name), precision));
    const bytes = sessionBytes(sim);
    assert.ok(bytes.length < weightBytes / 4, `${precision}: ${bytes.length} bytes of protobuf for ${weightBytes} bytes of fp32 weights`);
    const y = await outputs(sim, data.inputs.x.data, 16);
    assert.equal(y.length, 16 * 8);
    assert.ok(y.every(Number.isFinite));
  }
});

test('savesExternalData: a model that came with external data, or would not fit one protobuf, is saved with it', () => {
  assert.equal(savesExternalData(tinyMlp()), false);
  const big = tinyMlp();
  // 600M float32 weights (2.4 GB) declared by reference only: nothing is read to decide.
  big.graph!.initializer!.push({ name: 'huge', dims: [600_000_000], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: 'derived.bin' }, { key: 'offset', value: '0' }, { key: 'length', value: '2400000000' }] });
  assert.equal(savesExternalData(big), true);
});

test('a missing or truncated .data file is one line naming the file and the fix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-ext-'));
  const path = exportWithExternalData(join(dir, 'export'));
  renameSync(`${path}.data`, join(dir, 'model.onnx.data'));
  assert.throws(() => loadModel(path), (e: Error) => e instanceof UserError && /model\.onnx keeps its weights in model\.onnx\.data, which is not beside it \(looked for .*export\/model\.onnx\.data\); copy model\.onnx\.data into the model's folder/.test(e.message));
  renameSync(join(dir, 'model.onnx.data'), `${path}.data`);
  truncateSync(`${path}.data`, 1000);
  assert.throws(() => loadModel(path), (e: Error) => e instanceof UserError && /model\.onnx\.data holds 1000 bytes, but model\.onnx reads initializer .* up to byte \d+; the data file is truncated or belongs to another export/.test(e.message));
});

test('trtmix search on a model with external data, run from another folder, ends with model.qdq.onnx and its .data', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-ext-cli-'));
  exportWithExternalData(join(dir, 'export'));
  writeNpy(join(dir, 'x.npy'), { dtype: 'float32', shape: [32, 64], data: randomInput([32, 64], 'ext-cli') });
  const work = join(dir, 'elsewhere');
  mkdirSync(work);
  // Relative paths from a folder that is neither the model's nor trtmix's.
  const r = await trtmix(['search', '--model', '../export/model.onnx', '--data', '../x.npy', ...FAST, '--agent', 'greedy', '--max-evaluations', '3', '--out', 'run', '--json'], { cwd: work });
  assert.equal(r.code, 0, r.stderr);
  const run = join(work, 'run');
  assert.ok(existsSync(join(run, 'model.qdq.onnx.data')), 'the exported model keeps its weights beside it, as the user\'s did');
  const qdq = await ort.InferenceSession.create(join(run, 'model.qdq.onnx'));
  const y = await qdq.run({ x: new ort.Tensor('float32', randomInput([2, 64], 'ext-q'), [2, 64]) });
  await qdq.release();
  assert.ok((y.logits.data as Float32Array).every(Number.isFinite));
  const e = await trtmix(['export', join(run, 'policy.json'), '--model', '../export/model.onnx', '--format', 'qdq-onnx'], { cwd: work });
  assertUserError(e, /keeps its weights in external data, and so does its model\.qdq\.onnx; name where to write it with --out/);
  const info = await trtmix(['info', '--model', join(dir, 'export', 'model.onnx'), '--json'], { cwd: tmpdir() });
  assert.equal(info.code, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout).layers.length, 3);
});

/**
 * Bad models, data, labels, targets and metrics at the command line: each is one `trtmix: ...` line on stderr, exit
 * code 2, no stack trace unless --verbose (issue 7). The library-level checks live in onnx/data/simulate tests; these
 * make sure the message reaches the user the way the contract says.
 */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeNpy } from '../src/data/npy.ts';
import { randomInput } from './fixtures/models.ts';
import { assertUserError, FAST, hasStack, trtmix, workspace, type Workspace } from './cli-helpers.ts';

let ws: Workspace;
const files: Record<string, string> = {};

before(() => {
  ws = workspace('cli-input');
  const put = (name: string, content: string | Uint8Array) => (files[name] = join(ws.dir, name), writeFileSync(files[name], content), files[name]);
  put('garbage.onnx', 'this is not a protobuf at all\n');
  put('truncated.onnx', new Uint8Array(Buffer.from('\x08\x08\x12\x0ctrtmix-tests\x3a\xff\x01\x0a', 'latin1')));
  put('image.onnx', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]));
  files.folder = join(ws.dir, 'a-folder.onnx');
  mkdirSync(files.folder);
  put('throws.mjs', "export default { name: 'my-metric', score() { return helper(); } };\nfunction helper() { throw new Error('labels[0] is undefined'); }\n");
  put('nan-metric.mjs', "export default { name: 'nan-metric', score() { return NaN; } };\n");
  put('no-default.mjs', 'export const score = () => 1;\n');
  put('labels-47.txt', `${Array.from({ length: 47 }, (_, i) => String(i % 4)).join('\n')}\n`);
  files.wrongShape = join(ws.dir, 'wrong-shape.npy');
  writeNpy(files.wrongShape, { dtype: 'float32', shape: [48, 3, 9, 8], data: randomInput([48, 3, 9, 8], 'shape') });
  files.int32 = join(ws.dir, 'int32.npy');
  writeNpy(files.int32, { dtype: 'int32', shape: [48, 3, 8, 8], data: new Int32Array(48 * 3 * 8 * 8) });
  files.nan = join(ws.dir, 'nan.npy');
  const withNan = randomInput([48, 3, 8, 8], 'nan');
  withNan[5 * 192 + 17] = Number.NaN;
  writeNpy(files.nan, { dtype: 'float32', shape: [48, 3, 8, 8], data: withNan });
});

const search = (...extra: string[]) => trtmix(['search', '--model', ws.model, '--data', ws.data, ...FAST, '--agent', 'int8', '--out', join(ws.dir, `run-${extra.join('-').replace(/[^a-z0-9]/gi, '')}`), ...extra]);

describe('model files', { concurrency: 2 }, () => {
  test('a missing model file', async () => {
    assertUserError(await trtmix(['info', '--model', join(ws.dir, 'nope.onnx')]), /model file .*nope\.onnx does not exist; check the --model path/);
  });
  test('a corrupt model file', async () => {
    assertUserError(await trtmix(['search', '--model', files['garbage.onnx'], '--data', ws.data, ...FAST]), /garbage\.onnx is not an ONNX model \(protobuf decoding failed/);
  });
  test('a model file cut short', async () => {
    assertUserError(await trtmix(['info', '--model', files['truncated.onnx']]), /truncated\.onnx is not an ONNX model/);
  });
  test('a file that is not ONNX (a PNG) and a folder', async () => {
    assertUserError(await trtmix(['analyze', '--model', files['image.onnx'], '--data', ws.data, ...FAST.slice(0, 4)]), /image\.onnx is not an ONNX model/);
    assertUserError(await trtmix(['info', '--model', files.folder]), /is not a file; pass the \.onnx file itself/);
  });
  test('a model without quantizable layers', async () => {
    assertUserError(await trtmix(['info', '--model', ws.noLayers]), /no quantizable layers \(Conv, ConvTranspose, Gemm, MatMul\)/);
    const data = join(ws.dir, 'relu-x.npy');
    writeNpy(data, { dtype: 'float32', shape: [8, 4], data: randomInput([8, 4], 'relu') });
    assertUserError(await trtmix(['search', '--model', ws.noLayers, '--data', data, ...FAST]), /no quantizable layers/);
  });
});

describe('targets and metrics', { concurrency: 2 }, () => {
  test('an unknown target is refused before any calibration', async () => {
    const r = await search('--target', 'v100');
    assertUserError(r, /unknown latency target "v100"; known targets: .*orin-agx.*t4.*ort-cpu, profile:DIR/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'nothing ran before the refusal');
    assertUserError(await trtmix(['latency', '--model', ws.model, '--target', 'rtx9090']), /unknown latency target "rtx9090"/);
  });
  test('a calibration --layer-calibration does not know is refused before any calibration', async () => {
    const r = await search('--layer-calibration', 'mse', 'kl');
    assertUserError(r, /--layer-calibration kl is not a calibration; write max, mse, entropy or percentile:99.999 \(or none\)/);
    assert.equal(r.stderr.trim().split('\n').length, 1, 'nothing ran before the refusal');
    assertUserError(await trtmix(['compare', '--model', ws.model, '--layer-calibration', 'percentile:42']), /the percentile must be above 50/);
  });
  test('an unknown metric', async () => {
    assertUserError(await search('--metric', 'top5'), /unknown metric top5; use one of top1, agreement, cosine, sqnr, mse, iou, or a plugin file/);
  });
  test('a metric plugin that throws: its message in one line, its stack with --verbose', async () => {
    const r = await search('--metric', files['throws.mjs']);
    assertUserError(r, /metric my-metric threw: labels\[0\] is undefined; fix the metric plugin/);
    const verbose = await search('--metric', files['throws.mjs'], '--verbose');
    assert.equal(verbose.code, 2);
    assert.ok(hasStack(verbose.stderr));
    assert.match(verbose.stderr, /Caused by: Error: labels\[0\] is undefined\n\s+at helper \(file:\/\/.*throws\.mjs:2:/, 'the plugin line that threw');
  });
  test('a metric plugin that returns NaN, or exports no default', async () => {
    assertUserError(await search('--metric', files['nan-metric.mjs']), /metric nan-metric returned NaN instead of a finite number/);
    assertUserError(await search('--metric', files['no-default.mjs']), /must default-export \{ name, higherIsBetter\?, score/);
  });
});

describe('data and labels', { concurrency: 2 }, () => {
  test('data of the wrong shape', async () => {
    assertUserError(await trtmix(['search', '--model', ws.model, '--data', files.wrongShape, ...FAST]), /wrong-shape\.npy has shape \[48,3,9,8\] but model input 'x' expects \[N,3,8,8\]/);
  });
  test('data of the wrong dtype', async () => {
    assertUserError(await trtmix(['analyze', '--model', ws.model, '--data', files.int32, ...FAST.slice(0, 4)]), /int32\.npy is int32, but model input 'x' takes float32; convert with x\.astype\(np\.float32\)/);
  });
  test('NaN in the data', async () => {
    assertUserError(await trtmix(['search', '--model', ws.model, '--data', files.nan, ...FAST]), /nan\.npy: input 'x' has NaN in sample 5/);
  });
  test('labels count mismatch', async () => {
    assertUserError(
      await trtmix(['search', '--model', ws.model, '--data', ws.data, '--labels', files['labels-47.txt'], '--metric', 'top1', ...FAST]),
      /labels-47\.txt has 47 labels but x\.npy has 48 samples; give exactly one label per sample/,
    );
  });
  test('a missing data file, and --model without --data', async () => {
    assertUserError(await trtmix(['analyze', '--model', ws.model, '--data', join(ws.dir, 'none.npy')]), /data file .*none\.npy does not exist; check the --data path/);
    assertUserError(await trtmix(['search', '--model', ws.model]), /--data is required with --model/);
  });
  test('--verbose adds the stack trace to a user error; --quiet leaves only the error line', async () => {
    const verbose = await trtmix(['search', '--model', ws.model, '--data', files.nan, ...FAST, '--verbose']);
    assert.equal(verbose.code, 2);
    assert.match(verbose.stderr, /^trtmix: .*has NaN/m);
    assert.ok(hasStack(verbose.stderr), verbose.stderr);
    const quiet = await trtmix(['search', '--model', ws.model, '--data', ws.data, '--labels', files['labels-47.txt'], ...FAST, '--quiet']);
    assert.equal(quiet.code, 2);
    assert.equal(quiet.stderr.trimEnd().split('\n').length, 1, quiet.stderr);
  });
});

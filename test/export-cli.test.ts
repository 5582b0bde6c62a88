import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCalibrationCache } from '../src/export/index.ts';
import { encodeModel } from '../src/onnx/model.ts';
import { exportFixture, type ExportFixture } from './export-fixture.ts';
import { trtmixSync as trtmix } from './cli-helpers.ts';

let fx: ExportFixture;
let dir: string;
let modelPath: string;
let policyPath: string;


before(async () => {
  fx = await exportFixture();
  dir = mkdtempSync(join(tmpdir(), 'trtmix-export-cli-'));
  modelPath = join(dir, 'model.onnx');
  policyPath = join(dir, 'policy.json');
  writeFileSync(modelPath, fx.bytes);
  writeFileSync(policyPath, JSON.stringify({ ...fx.policy, model: { path: modelPath, sha256: fx.sha256 } }));
});

test('trtmix export --format trtexec prints a command per TensorRT generation on stdout', () => {
  const r = trtmix('export', policyPath, '--model', modelPath, '--format', 'trtexec');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  const commands = lines.filter((l) => l.startsWith('trtexec '));
  assert.equal(commands.length, 3, r.stdout);
  assert.ok(lines[0].startsWith('# TensorRT 11'));
  assert.ok(commands[0].startsWith('trtexec --onnx=model.qdq.onnx'), 'TensorRT 11 builds the QDQ model');
  assert.ok(commands[1].startsWith('trtexec --onnx=model.qdq.onnx --stronglyTyped'));
  const line = commands[2];
  assert.ok(line.startsWith(`trtexec --onnx=${modelPath} --fp16 --int8 --precisionConstraints=obey`));
  assert.match(line, /--layerPrecisions=conv1:int8,conv10:int8,/);
  assert.match(line, /--calib=calibration\.cache/);
  assert.ok(lines.some((l) => l.startsWith('# trtexec --onnx=model.qdq.onnx') && l.includes('--exportProfile')));
  assert.match(r.stderr, /write it with: trtmix export .* --format calib-cache/);
});

test('trtmix export --out writes the file atomically; the model defaults to the policy\'s', () => {
  const out = join(dir, 'cache', 'calibration.cache');
  const r = trtmix('export', policyPath, '--format', 'calib-cache', '--trt-version', '10.3.0', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  const cache = parseCalibrationCache(readFileSync(out, 'utf8'));
  assert.equal(cache.versionCode, 100300);
  assert.equal(cache.scales.get('x'), Math.fround(fx.policy.calibration.amax.x / 127));
  assert.deepEqual(readdirSync(join(dir, 'cache')), ['calibration.cache']);
});

test('--json reports format, destination and warnings as one document', () => {
  const out = join(dir, 'build_engine.py');
  const r = trtmix('export', policyPath, '--model', modelPath, '--format', 'trt-python', '--out', out, '--json');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { format: 'trt-python', out, warnings: [] });
  assert.match(readFileSync(out, 'utf8'), /^#!\/usr\/bin\/env python3/);
});

test('another model is refused (exit 2, one line) unless --force', () => {
  const other = join(dir, 'other.onnx');
  writeFileSync(other, encodeModel({ ...fx.model, producerName: 'another exporter' }));
  const r = trtmix('export', policyPath, '--model', other, '--format', 'json');
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.match(r.stderr, /not the model the policy was searched on.*--force/);
  const forced = trtmix('export', policyPath, '--model', other, '--format', 'json', '--force');
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stderr, /sha256 differs/);
  assert.notEqual(JSON.parse(forced.stdout).model.sha256, fx.sha256);
});

test('bad input is a one-line user error: a missing policy, not a policy, an unknown format', () => {
  const missing = trtmix('export', join(dir, 'nope.json'), '--model', modelPath, '--format', 'json');
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /does not exist/);
  const notPolicy = join(dir, 'not-policy.json');
  writeFileSync(notPolicy, '{"version": 1}');
  const bad = trtmix('export', notPolicy, '--model', modelPath, '--format', 'json');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /not a trtmix policy/);
  const format = trtmix('export', policyPath, '--model', modelPath, '--format', 'tflite');
  assert.equal(format.status, 2);
});

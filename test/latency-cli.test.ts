import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel } from '../src/onnx/model.ts';
import { sha256Hex } from '../src/export/policy-file.ts';
import { spearman } from '../src/latency/validate.ts';
import { tinyCnn } from './fixtures/models.ts';
import { trtmixSync as trtmix } from './cli-helpers.ts';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'trt-profile-tinycnn');
const LAYERS = ['conv1', 'dw2', 'pw3', 'fc', 'node_of_logits'];
let dir: string;
let modelPath: string;
let policyPath: string;


before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trtmix-latency-cli-'));
  modelPath = join(dir, 'tiny.onnx');
  const bytes = encodeModel(tinyCnn());
  writeFileSync(modelPath, bytes);
  policyPath = join(dir, 'policy.json');
  const precisions = ['int8', 'fp16', 'int8', 'mixed', 'fp16'];
  writeFileSync(policyPath, JSON.stringify({
    version: 1,
    model: { path: modelPath, sha256: sha256Hex(bytes) },
    layers: LAYERS.map((name, i) => ({ name, op: 'Conv', precision: precisions[i], macs: 0 })),
    calibration: { method: 'entropy', amax: {} },
    metrics: { score: 0, fp32Score: 0, latencyMs: 0, fp16LatencyMs: 0, target: 't4' },
    search: { agent: 'fp16', seed: 0, evaluations: 0, seconds: 0 },
  }));
});

test('trtmix latency --json follows the DESIGN.md shape, with the policy beside the uniform ones', () => {
  const r = trtmix('latency', '--model', modelPath, '--target', 'orin-agx', '--policy', policyPath, '--json');
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.target, 'orin-agx');
  assert.equal(doc.batch, 1);
  assert.deepEqual(Object.keys(doc.totals), ['fp32', 'fp16', 'int8', 'policy']);
  assert.deepEqual(doc.layers.map((l: { name: string }) => l.name), LAYERS);
  assert.deepEqual(doc.layers.map((l: { policyPrecision: string }) => l.policyPrecision), ['int8', 'fp16', 'int8', 'mixed', 'fp16']);
  for (const c of ['fp32', 'fp16', 'int8', 'policy']) {
    const sum = doc.layers.reduce((s: number, l: Record<string, number>) => s + l[c], 0) + doc.otherMs[c];
    assert.ok(Math.abs(sum - doc.totals[c]) < 1e-9, `${c}: layers sum to ${sum}, total ${doc.totals[c]}`);
  }
  assert.equal(doc.layers[0].op, 'Conv');
  assert.equal(doc.layers[3].op, 'Gemm');
});

test('--batch scales the roofline work and is reported', () => {
  const one = JSON.parse(trtmix('latency', '--model', modelPath, '--target', 't4', '--json').stdout);
  const r = trtmix('latency', '--model', modelPath, '--target', 't4', '--batch', '16', '--json');
  assert.equal(r.status, 0, r.stderr);
  const sixteen = JSON.parse(r.stdout);
  assert.equal(sixteen.batch, 16);
  assert.ok(sixteen.totals.fp16 > one.totals.fp16);
});

test('an unknown target exits 2 with one line naming the known targets', () => {
  const r = trtmix('latency', '--model', modelPath, '--target', 'rtx4090');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^trtmix: unknown latency target "rtx4090"; known targets: a10, a100, h100, h200, l4, orin-agx, orin-nano, t4, xavier-agx, ort-cpu, profile:DIR\n/);
  assert.equal(r.stdout, '');
});

test('trtmix latency --validate profile:DIR reports the rank correlation of roofline and profile per layer', () => {
  const r = trtmix('latency', '--model', modelPath, '--validate', `profile:${FIXTURE}`, '--target', 't4', '--json');
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.target, 't4');
  assert.equal(doc.correlation.fp16.layers, 5);
  assert.equal(doc.correlation.int8.layers, 5);
  assert.equal(doc.correlation.pooled.layers, 10);
  for (const p of ['fp16', 'int8'] as const) {
    const rows = doc.rows.filter((x: { precision: string }) => x.precision === p);
    const rho = spearman(rows.map((x: { rooflineMs: number }) => x.rooflineMs), rows.map((x: { profileMs: number }) => x.profileMs));
    assert.ok(Math.abs(doc.correlation[p].rho - rho) < 1e-12);
    assert.ok(rho >= -1 && rho <= 1);
  }
  assert.deepEqual(doc.unmapped, []);
  const text = trtmix('latency', '--model', modelPath, '--validate', `profile:${FIXTURE}`, '--target', 't4');
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^Spearman rank correlation of t4 roofline per-layer estimates with profile:/);
  assert.match(text.stdout, /\n {2}fp16 -?\d\.\d{3} over 5 layers; median \|roofline \/ profile - 1\| \d+\.\d\d; roofline total \d+\.\d\dx the profile's\n {2}int8 -?\d\.\d{3} over 5 layers/);
  for (const p of ['fp16', 'int8'] as const) {
    const rows = doc.rows.filter((x: { precision: string }) => x.precision === p);
    const ratio = rows.reduce((s: number, x: { rooflineMs: number }) => s + x.rooflineMs, 0) / rows.reduce((s: number, x: { profileMs: number }) => s + x.profileMs, 0);
    assert.ok(Math.abs(doc.correlation[p].totalRatio - ratio) < 1e-12);
    assert.ok(doc.correlation[p].medianRelativeError >= 0);
  }
});

test('--target profile:DIR prices the uniform policies from the imported builds', () => {
  const r = trtmix('latency', '--model', modelPath, '--target', `profile:${FIXTURE}`, '--json');
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.target, `profile:${FIXTURE}`);
  assert.equal(doc.layers[0].name, 'conv1');
  assert.ok(doc.totals.int8 < doc.totals.fp16, 'the hand-written int8 build is faster');
  const bad = trtmix('latency', '--model', modelPath, '--validate', 'ort-cpu');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--validate takes profile:DIR/);
});

test('the built-in recognizer prints a per-layer table with totals', () => {
  const r = trtmix('latency', '--target', 't4');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /target t4, batch 1, inputs x:1x3x48x320/);
  const total = r.stdout.split('\n').find((l) => /^\s+total\s/.test(l))!;
  const [fp32, fp16, int8] = total.trim().split(/\s+/).slice(1).map(Number);
  assert.ok(int8 < fp16 && fp16 < fp32, total);
});

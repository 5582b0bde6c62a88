import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeNpy } from '../src/data/npy.ts';
import type { Dataset } from '../src/data/dataset.ts';
import { resolveAmax } from '../src/quant/simulate.ts';
import { prepareExperiment } from '../src/cli/experiment.ts';
import { createLatencyModel } from '../src/latency/index.ts';
import { uniformPolicy, type LayerPolicy, type PolicyFile } from '../src/policy.ts';
import { searchDataRecord } from '../src/export/replay.ts';
import { encodeModel } from '../src/onnx/model.ts';
import { exportFixture, type ExportFixture } from './export-fixture.ts';
import { randomInput } from './fixtures/models.ts';
import { trtmixSync as trtmix } from './cli-helpers.ts';

const N = 40;
let fx: ExportFixture;
let dir: string;
let modelPath: string;
let dataPath: string;
let policyPath: string;
let policy: PolicyFile;


function writeData(path: string, seed: string, count: number): Dataset {
  const data = randomInput([count, 3, 8, 8], seed, 2);
  writeNpy(path, { dtype: 'float32', shape: [count, 3, 8, 8], data });
  return { count, inputs: { x: { data, dims: [count, 3, 8, 8] } } };
}

/** What a search would have saved: calibration on one part of the data, the score on the other, a t4 latency. */
before(async () => {
  fx = await exportFixture();
  dir = mkdtempSync(join(tmpdir(), 'trtmix-replay-'));
  modelPath = join(dir, 'model.onnx');
  dataPath = join(dir, 'data.npy');
  policyPath = join(dir, 'policy.json');
  writeFileSync(modelPath, fx.bytes);
  writeData(dataPath, 'replay-data', N);
  // What a search does (src/cli/experiment.ts): split, calibrate, score policies on the evaluation samples.
  const exp = await prepareExperiment({ model: modelPath, data: dataPath, metric: 'cosine', 'calib-samples': 16, 'eval-samples': 24, 'batch-size': 8, seed: 0, calibration: 'max' });
  const base = exp.base;
  const lp: LayerPolicy = {
    conv1: { precision: 'int8' }, conv10: { precision: 'mixed', calibration: { method: 'percentile', percentile: 99.9 } },
    'block:conv': { precision: 'fp16' }, fc: { precision: 'int8' }, gram: { precision: 'int8', calibration: { method: 'mse' } },
  };
  const evaluator = exp.evaluator;
  const { score } = await evaluator.evaluate(lp);
  const latency = await createLatencyModel('t4', exp.loaded.layers, { model: exp.loaded.model, graph: exp.loaded.graph, inputShapes: { x: [1, 3, 8, 8] }, simulation: base });
  const names = fx.layers.map((l) => l.name);
  policy = {
    version: 1,
    model: { path: modelPath, sha256: fx.sha256 },
    layers: fx.layers.map((l) => ({ name: l.name, op: l.op, precision: lp[l.name].precision, macs: l.macs, ...(lp[l.name].calibration ? { calibration: lp[l.name].calibration } : {}) })),
    calibration: { method: 'max', amax: resolveAmax(base, lp) },
    otherOps: base.otherOps,
    metrics: {
      score, fp32Score: evaluator.fp32Score, latencyMs: (await latency.estimate(lp)).totalMs,
      fp16LatencyMs: (await latency.estimate(uniformPolicy(names, 'fp16'))).totalMs, target: 't4',
    },
    search: { agent: 'test', seed: 0, evaluations: 1, seconds: 0, data: searchDataRecord(exp) },
  };
  writeFileSync(policyPath, JSON.stringify(policy));
});

test('on the search\'s data, replay gives the recorded score (within 1e-6) and latency back', () => {
  const r = trtmix('replay', policyPath, '--model', modelPath, '--data', dataPath, '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.searchData, true);
  assert.equal(out.samples, 24);
  assert.equal(out.metric, 'cosine');
  assert.ok(out.reproduced.score && out.reproduced.scoreDiff <= 1e-6, `score off by ${out.reproduced.scoreDiff}`);
  assert.equal(out.reproduced.latency, true);
  assert.equal(out.latencyMs, policy.metrics.latencyMs);
  assert.equal(out.fp32Score, policy.metrics.fp32Score);
});

test('on other data, replay reports score, FP32 score, drop, latency and the per-layer table', () => {
  const other = join(dir, 'other.npy');
  writeData(other, 'other-data', 12);
  const r = trtmix('replay', policyPath, '--model', modelPath, '--data', other, '--json');
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.searchData, false);
  assert.equal(out.samples, 12);
  assert.equal(out.recorded, undefined);
  assert.equal(out.fp32Score, 1, 'cosine of FP32 against itself');
  assert.ok(out.score > 0.9 && out.score <= 1);
  assert.ok(Math.abs(out.drop - (out.fp32Score - out.score)) < 1e-12);
  assert.ok(out.latencyMs > 0 && out.fp16LatencyMs > 0);
  assert.deepEqual(out.layers.map((l: { name: string; precision: string }) => [l.name, l.precision]), policy.layers.map((l) => [l.name, l.precision]));
  assert.equal(out.layers.find((l: { name: string }) => l.name === 'conv10').calibration, 'percentile 99.9');
  assert.match(r.stderr, /not the data the search scored/);
  const text = trtmix('replay', policyPath, '--model', modelPath, '--data', other);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /cosine [01]\.\d{4} \[[01]\.\d{4}, [01]\.\d{4}\]\s+FP32 1\.0000\s+drop -?[01]\.\d{4} \(-?\d+\.\d\d % \[/);
  assert.ok(out.ci95[0] <= out.score && out.score <= out.ci95[1], 'the 95 % interval holds the score');
  assert.match(text.stdout, /block:conv\s+Conv\s+fp16/);
});

test('a recorded score the replay cannot give back fails with exit code 1', () => {
  const tampered = join(dir, 'tampered.json');
  writeFileSync(tampered, JSON.stringify({ ...policy, metrics: { ...policy.metrics, score: policy.metrics.score + 1e-3 } }));
  const r = trtmix('replay', tampered, '--model', modelPath, '--data', dataPath);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /NOT reproduced/);
  assert.match(r.stderr, /did not give the recorded score back/);
});

test('replay refuses another model (exit 2) unless --force', () => {
  const other = join(dir, 'other.onnx');
  writeFileSync(other, encodeModel({ ...fx.model, producerName: 'someone else' }));
  const r = trtmix('replay', policyPath, '--model', other, '--data', dataPath);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /not the model the policy was searched on/);
  const forced = trtmix('replay', policyPath, '--model', other, '--data', dataPath, '--force', '--json');
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stderr, /sha256 differs/);
});

/**
 * Replay of a policy of the built-in example (PP-OCRv4 recognizer, character accuracy): with no --model and no
 * --data it finds the example's model and lines, recognizes them as the search's data, and gives the recorded
 * score back. The "search" here is the shared experiment pipeline scoring one seeded policy.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { prepareExperiment } from '../src/cli/experiment.ts';
import { resolveAmax } from '../src/quant/simulate.ts';
import { createLatencyModel } from '../src/latency/index.ts';
import { DEFAULT_ACTIONS, uniformPolicy, type LayerPolicy, type PolicyFile } from '../src/policy.ts';
import { searchDataRecord } from '../src/export/replay.ts';
import { sha256Hex } from '../src/export/policy-file.ts';
import { BIN } from './cli-helpers.ts';

let policyPath: string;
let policy: PolicyFile;

before(async () => {
  const exp = await prepareExperiment({ 'calib-samples': 8, 'eval-samples': 24, 'batch-size': 8, seed: 3 });
  const { layers } = exp.loaded;
  const rng = seedrandom('replay-ppocr');
  const lp: LayerPolicy = Object.fromEntries(layers.map((l) => [l.name, { precision: DEFAULT_ACTIONS[Math.floor(rng() * DEFAULT_ACTIONS.length)] }]));
  const { score } = await exp.evaluator.evaluate(lp);
  const latency = await createLatencyModel('orin-agx', layers, { model: exp.loaded.model, graph: exp.loaded.graph, inputShapes: exp.loaded.inputShapes, simulation: exp.base });
  const names = layers.map((l) => l.name);
  policy = {
    version: 1,
    model: { path: exp.loaded.path, sha256: sha256Hex(readFileSync(exp.loaded.path)) },
    layers: layers.map((l) => ({ name: l.name, op: l.op, precision: lp[l.name].precision, macs: l.macs })),
    calibration: { method: 'percentile', amax: resolveAmax(exp.base, lp) },
    otherOps: exp.base.otherOps,
    metrics: {
      score, fp32Score: exp.evaluator.fp32Score, latencyMs: (await latency.estimate(lp)).totalMs,
      fp16LatencyMs: (await latency.estimate(uniformPolicy(names, 'fp16'))).totalMs, target: 'orin-agx',
    },
    search: { agent: 'test', seed: 3, evaluations: 1, seconds: 0, data: searchDataRecord(exp) },
  };
  policyPath = join(mkdtempSync(join(tmpdir(), 'trtmix-replay-ppocr-')), 'policy.json');
  writeFileSync(policyPath, JSON.stringify(policy));
});

test('replaying a built-in example policy with no --model / --data gives its recorded score and latency back', () => {
  const r = spawnSync(process.execPath, [BIN, 'replay', policyPath, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.data, 'builtin:ppocr-rec');
  assert.equal(out.searchData, true);
  assert.equal(out.samples, 24);
  assert.equal(out.metric, 'char-accuracy');
  assert.ok(out.reproduced.score, `score ${out.score} vs recorded ${policy.metrics.score}`);
  assert.ok(Math.abs(out.score - policy.metrics.score) <= 1e-6);
  assert.equal(out.reproduced.latency, true);
  assert.equal(out.target, 'orin-agx');
  assert.ok(out.score > 0.5, 'the recognizer still reads the lines under this policy');
});

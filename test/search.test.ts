import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { runSearch } from '../src/search/run.ts';
import { buildQdqModel } from '../src/export/qdq-onnx.ts';
import { runModel } from '../src/quant/evaluator.ts';
import { buildSimulatedModel, resolveAmax } from '../src/quant/simulate.ts';
import type { PolicyFile } from '../src/policy.ts';
import { tinyCnnFixture } from './fixtures/models.ts';

const fixture = () => tinyCnnFixture('trtmix-search-', 'search-data');

const quiet = { quiet: true, log: () => {} };
const withoutTiming = (p: PolicyFile) => ({ ...p, search: { ...p.search, seconds: 0 } });

test('the same seed gives the same policy.json and history (timing fields aside)', async () => {
  const { dir, model, data } = fixture();
  const args = (out: string) => ({
    model, data, out: join(dir, out), agent: 'dqn', episodes: 25, seed: 3, 'calib-samples': 16, 'eval-samples': 24,
    'screen-samples': 8, 'analysis-samples': 8, metric: 'cosine', 'max-drop': 0.002, target: 't4', 'time-limit': '10m',
  });
  const a = await runSearch(args('a'), quiet);
  const b = await runSearch(args('b'), quiet);
  assert.equal(a.status, 'done');
  assert.ok(a.policy, 'a feasible policy was found');
  assert.deepEqual(withoutTiming(b.policy!), withoutTiming(a.policy!));
  const strip = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => {
    const { seconds, wallSeconds, ...rest } = JSON.parse(l);
    return rest;
  });
  assert.deepEqual(strip(join(dir, 'b', 'history.jsonl')), strip(join(dir, 'a', 'history.jsonl')));
  for (const f of ['policy.json', 'trtexec.txt', 'precision.json', 'build_engine.py', 'polygraphy.txt', 'model.qdq.onnx', 'calibration.cache', 'history.jsonl', 'report.html', 'checkpoint.json', 'analysis.json']) {
    assert.ok(existsSync(join(dir, 'a', f)), `${f} is written`);
  }
  const cp = JSON.parse(readFileSync(join(dir, 'a', 'checkpoint.json'), 'utf8'));
  assert.equal(cp.status, 'done');
});

test('a search refuses to overwrite another search unless resumed, and resumes a finished one to the same policy', async () => {
  const { dir, model, data } = fixture();
  const args = { model, data, out: join(dir, 'r'), agent: 'greedy', seed: 0, 'calib-samples': 16, 'eval-samples': 16, 'screen-samples': 0, 'analysis-samples': 8, metric: 'cosine', 'max-drop': 0.01 };
  const first = await runSearch(args, quiet);
  await assert.rejects(runSearch(args, quiet), /already holds a search.*--resume/);
  await assert.rejects(runSearch({ ...args, resume: true, 'max-drop': 0.02 }, quiet), /other options \(maxDrop\)/);
  const again = await runSearch({ ...args, resume: true }, quiet);
  assert.deepEqual(withoutTiming(again.policy!), withoutTiming(first.policy!));
  // Every search evaluation was answered from history.jsonl; only the best policy is run once more, for its intervals.
  assert.equal(again.setup.exp.evaluator.evaluations, 1, 'every evaluation was answered from history.jsonl');
});

test('model.qdq.onnx of a search result reproduces the simulated outputs of its policy', async () => {
  const { dir, model, data } = fixture();
  for (const otherOps of ['fp32', 'fp16'] as const) {
    const out = await runSearch({ model, data, out: join(dir, `q-${otherOps}`), agent: 'int8', seed: 0, 'calib-samples': 16, 'eval-samples': 16, 'screen-samples': 0, metric: 'cosine', 'max-drop': 0.5, 'other-ops': otherOps }, quiet);
    const exp = out.setup.exp;
    const policy = out.policy!;
    assert.equal(policy.otherOps?.precision, otherOps, 'policy.json records the other ops\' precision');
    // The int8 agent leaves the two small GEMMs (N = 10 and 4) in FP16: they are not offered INT8.
    assert.deepEqual(policy.layers.map((l) => l.precision), ['int8', 'int8', 'int8', 'fp16', 'fp16']);
    const outputsOf = async (p: PolicyFile) => {
      const qdq = buildQdqModel(exp.loaded.model, exp.loaded.graph, exp.loaded.layers, p).model;
      const sim = buildSimulatedModel(exp.base, Object.fromEntries(p.layers.map((l) => [l.name, { precision: l.precision }])));
      return [(await runModel(qdq, exp.split.eval, 8)), (await runModel(sim, exp.split.eval, 8))].map((o) => o.map((s) => Array.from(s.logits.data)));
    };
    const [a, b] = await outputsOf(policy);
    const range = Math.max(...b.flat().map(Math.abs));
    const worst = Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));
    assert.ok(worst <= 0.01 * range, `${otherOps}: within float16 rounding (${worst} of ${range})`);
    if (otherOps === 'fp32') {
      const lp = Object.fromEntries(policy.layers.map((l) => [l.name, { precision: 'int8' as const }]));
      const [c, d] = await outputsOf({ ...policy, layers: policy.layers.map((l) => ({ ...l, precision: 'int8' })), calibration: { ...policy.calibration, amax: resolveAmax(exp.base, lp) } });
      assert.deepEqual(c, d, 'all-int8, FP32 other ops: bit-identical');
    }
  }
});

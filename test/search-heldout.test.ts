/**
 * The held-out test score of a search: recorded in policy.json with its intervals, computed on samples no choice saw
 * (the search's history is the same whatever the test samples are), --confidence checking the floor on the
 * pessimistic end of the paired drop interval, and a plain failure when the test drop breaks the floor.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveModel } from '../src/onnx/model.ts';
import { writeNpy } from '../src/data/npy.ts';
import { takeSamples } from '../src/data/dataset.ts';
import { runSearch } from '../src/search/run.ts';
import { prepareExperiment } from '../src/cli/experiment.ts';
import { PolicyEvaluator } from '../src/quant/evaluator.ts';
import type { PolicyFile, LayerPolicy } from '../src/policy.ts';
import { UserError } from '../src/errors.ts';
import { tinyCnn, randomInput } from './fixtures/models.ts';
import { assertUserError, trtmix } from './cli-helpers.ts';

const N = 120;
let dir: string;
let model: string;
let data: string;
/** Other inputs for the same model, four times the scale: INT8 ranges calibrated on `data` clip them. */
let shifted: string;
const quiet = { quiet: true, log: () => {} };
const base = () => ({ model, data, metric: 'cosine', 'calib-samples': 16, 'eval-samples': 32, 'screen-samples': 0, 'analysis-samples': 8, seed: 0, target: 't4' });

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'trtmix-heldout-'));
  model = join(dir, 'tiny.onnx');
  saveModel(tinyCnn(), model);
  data = join(dir, 'x.npy');
  writeNpy(data, { dtype: 'float32', shape: [N, 3, 8, 8], data: randomInput([N, 3, 8, 8], 'heldout-x') });
  shifted = join(dir, 'shifted.npy');
  writeNpy(shifted, { dtype: 'float32', shape: [40, 3, 8, 8], data: randomInput([40, 3, 8, 8], 'heldout-shifted', 4) });
});

const policyOf = (out: string): PolicyFile => JSON.parse(readFileSync(join(out, 'policy.json'), 'utf8'));
const historyOf = (out: string) => readFileSync(join(out, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => {
  const { seconds, wallSeconds, ...rest } = JSON.parse(l);
  return rest;
});
const layerPolicy = (p: PolicyFile): LayerPolicy => Object.fromEntries(p.layers.map((l) => [l.name, { precision: l.precision, ...(l.calibration ? { calibration: l.calibration } : {}) }]));

test('policy.json: the test split is disjoint from calibration and search, and metrics.test is the policy and FP32 on it', async () => {
  const out = join(dir, 'split');
  const r = await runSearch({ ...base(), agent: 'dqn', episodes: 6, 'max-drop': 0.5, out }, quiet);
  const p = policyOf(out);
  const d = p.search.data as { calibIndices: number[]; evalIndices: number[]; testIndices: number[] };
  assert.deepEqual([d.calibIndices.length, d.evalIndices.length, d.testIndices.length], [16, 32, N - 48]);
  const all = [...d.calibIndices, ...d.evalIndices, ...d.testIndices];
  assert.equal(new Set(all).size, N, 'no sample in two splits');
  assert.ok(all.every((i) => Number.isInteger(i) && i >= 0 && i < N));
  // The recorded figures are those of the chosen policy and of FP32 on exactly the recorded test samples.
  const test = p.metrics.test as { score: number; fp32Score: number; drop: number; samples: number; ci95: number[]; dropCi95: number[]; withinFloor: boolean };
  const exp = r.setup.exp;
  const independent = await PolicyEvaluator.create(exp.base, takeSamples(exp.data, d.testIndices), exp.metric);
  assert.equal(test.samples, N - 48);
  assert.equal(test.fp32Score, independent.fp32Score);
  assert.equal(test.score, (await independent.evaluate(layerPolicy(p))).score);
  assert.ok(Math.abs(test.drop - (test.fp32Score - test.score) / test.fp32Score) < 1e-12);
  assert.ok(test.ci95[0] <= test.score && test.score <= test.ci95[1]);
  assert.ok(test.dropCi95[0] <= test.drop && test.drop <= test.dropCi95[1]);
  assert.equal(test.withinFloor, true);
  const ci = p.metrics.searchCi95 as number[];
  assert.ok(ci[0] <= p.metrics.score && p.metrics.score <= ci[1] && ci[1] > ci[0]);
  assert.equal(p.metrics.searchSamples, 32);
  assert.equal(p.search.confidence, null);

  // Nothing the search chose depends on the test samples: with a separate --test-data file instead (the calibration and
  // search samples stay the same) the history and the chosen policy are the same.
  const other = join(dir, 'other');
  await runSearch({ ...base(), agent: 'dqn', episodes: 6, 'max-drop': 0.5, out: other, 'test-data': shifted }, quiet);
  assert.deepEqual(historyOf(other), historyOf(out));
  const q = policyOf(other);
  assert.deepEqual(q.layers, p.layers);
  const qd = q.search.data as { calibIndices: number[]; evalIndices: number[]; testIndices: number[]; test: { source: string; sha256: string } };
  assert.deepEqual([qd.calibIndices, qd.evalIndices, qd.testIndices], [d.calibIndices, d.evalIndices, []]);
  assert.equal(qd.test.source, shifted);
  assert.equal((q.metrics.test as { samples: number }).samples, 40);

  // replay gives both back, with the recorded intervals: the search and test splits of the search's data, and the
  // test score on the --test-data file.
  const json = async (args: string[]) => {
    const r = await trtmix(['replay', ...args, '--metric', 'cosine', '--json']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const again = await json([join(out, 'policy.json'), '--data', data]);
  assert.equal(again.searchData, true);
  assert.deepEqual([again.score, again.ci95, again.relativeDropCi95], [p.metrics.score, p.metrics.searchCi95, p.metrics.searchDropCi95]);
  assert.deepEqual([again.test.samples, again.test.score, again.test.ci95, again.test.dropCi95, again.test.reproduced], [test.samples, test.score, test.ci95, test.dropCi95, true]);
  const onTestFile = await json([join(other, 'policy.json'), '--data', shifted]);
  assert.deepEqual([onTestFile.testData, onTestFile.searchData, onTestFile.reproduced.score], [true, false, true]);
  assert.deepEqual(onTestFile.ci95, (q.metrics.test as { ci95: number[] }).ci95);
});

test('--confidence 0.95: a policy is feasible only when the upper end of its paired drop interval is within the floor', async () => {
  // First the all-INT8 policy's point drop and its bound, with a floor nothing breaks.
  const probe = join(dir, 'probe');
  await runSearch({ ...base(), agent: 'int8', 'max-drop': 1, confidence: 0.95, out: probe }, quiet);
  const int8 = policyOf(probe);
  const drop = int8.metrics.drop as number;
  const bound = int8.metrics.dropBound as number;
  assert.ok(bound > drop && drop > 0, `drop ${drop}, bound ${bound}`);
  // A floor between the two: all-INT8 meets it on the point estimate, not at 95 % confidence.
  const maxDrop = (drop + bound) / 2;
  const plain = join(dir, 'plain');
  await runSearch({ ...base(), agent: 'greedy', 'max-drop': maxDrop, out: plain }, quiet);
  // "All-INT8" is INT8 wherever INT8 suits: the fixture's narrow Gemm and MatMul stay FP16 (int8Exclusion).
  const precisions = (p: PolicyFile) => p.layers.map((l) => l.precision);
  assert.ok(precisions(int8).includes('int8'));
  assert.deepEqual(precisions(policyOf(plain)), precisions(int8), 'without --confidence all-INT8 is chosen');
  const sure = join(dir, 'sure');
  await runSearch({ ...base(), agent: 'greedy', 'max-drop': maxDrop, confidence: 0.95, out: sure }, quiet);
  const history = historyOf(sure).filter((h) => h.confirmed);
  assert.ok(history.length >= 2);
  for (const h of history) assert.equal(h.feasible, h.dropBound <= maxDrop + 1e-9, `evaluation ${h.evaluation}: bound ${h.dropBound}`);
  assert.equal(history[0].feasible, false, 'all-INT8, greedy\'s start, fails the floor at 95 % confidence');
  const p = policyOf(sure);
  assert.notDeepEqual(precisions(p), precisions(int8), 'with --confidence a layer leaves INT8');
  assert.ok((p.metrics.dropBound as number) <= maxDrop);
  assert.equal(p.search.confidence, 0.95);
});

test('a test drop over the floor is reported plainly, in policy.json and by exit code 1', async () => {
  const probe = join(dir, 'shifted-probe');
  const args = ['search', '--model', model, '--data', data, '--test-data', shifted, '--metric', 'cosine', '--calib-samples', '16', '--eval-samples', '32', '--screen-samples', '0', '--agent', 'int8'];
  const first = await trtmix([...args, '--max-drop', '1', '--out', probe, '--json']);
  assert.equal(first.code, 0, first.stderr);
  const doc = JSON.parse(first.stdout);
  assert.ok(doc.test.drop > doc.drop, `test drop ${doc.test.drop} vs search drop ${doc.drop}: the shifted inputs clip`);
  const maxDrop = (doc.drop + doc.test.drop) / 2;
  const out = join(dir, 'shifted-run');
  const r = await trtmix([...args, '--max-drop', String(maxDrop), '--out', out]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout.split('\n')[0], /^search done, but the best policy breaks the [0-9.]+ % floor on the held-out test samples \(drop [0-9.]+ % \[/);
  assert.match(r.stdout, /on the held-out test samples \(40, never used for a choice\): cosine /);
  assert.equal((policyOf(out).metrics.test as { withinFloor: boolean }).withinFloor, false);
});

test('--test-data, --test-labels, --test-samples and --confidence: bad combinations are refused in one line', async () => {
  const refuse = async (args: Record<string, unknown>, ...patterns: RegExp[]) => {
    await assert.rejects(prepareExperiment({ ...base(), ...args } as never), (e: unknown) => {
      assert.ok(e instanceof UserError, String(e));
      for (const p of patterns) assert.match(e.message, p);
      return true;
    });
  };
  await refuse({ 'test-labels': join(dir, 'l.txt') }, /--test-labels was given without --test-data/);
  await refuse({ 'test-data': shifted, 'test-samples': 10 }, /either --test-samples .* or --test-data/);
  await refuse({ 'test-data': join(dir, 'missing.npy') }, /test data file .*missing\.npy does not exist/);
  const labels = join(dir, 'labels.txt');
  writeFileSync(labels, `${Array.from({ length: N }, (_, i) => i % 4).join('\n')}\n`);
  await refuse({ labels, metric: 'top1', 'test-data': shifted }, /the test data needs labels like --data \(metric top1 reads them\); pass --test-labels/);
  await refuse({ 'calib-samples': 100, 'eval-samples': 100 }, /120 samples, fewer than the 100 calibration \+ 100 search/);
  await refuse({ model: undefined, data: undefined, 'test-data': shifted }, /--test-data was given without --model/);
  const r = await trtmix(['search', '--model', model, '--data', data, '--confidence', '95', '--out', join(dir, 'c95')]);
  assertUserError(r, /--confidence must be a level between 0 and 1, e.g\. 0\.95, got 95 \(write 0\.95\)/);
});

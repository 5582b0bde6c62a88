import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selectLadder, measureSafeEnd, type LadderCandidate, type LadderStep } from '../src/search/pareto.ts';
import { runSearch, type HistoryLine } from '../src/search/run.ts';
import { EXPORT_FILE_NAMES } from '../src/export/index.ts';
import { PrecisionEnv } from '../envs/precision-env.ts';
import { smallToyProblem } from '../envs/toy/index.ts';
import { uniformPolicy, type PolicyFile } from '../src/policy.ts';
import { ladderFixture } from './pareto-fixture.ts';
import { assertUserError, trtmix } from './cli-helpers.ts';

const point = (key: string, latencyMs: number, score: number, feasible = true): LadderCandidate => ({ key, latencyMs, score, feasible });

test('the ladder is the feasible Pareto front faster than all-FP16, fastest first, then all-FP16', () => {
  const safe = point('fp16', 10, 0.95);
  const ladder = selectLadder([
    point('a', 5, 0.90), point('b', 6, 0.89) /* slower and worse than a */, point('c', 7, 0.93), point('d', 8, 0.97) /* beats fp16 */,
    point('e', 4, 0.99, false) /* infeasible */, point('f', 12, 0.99) /* slower than the safe end */, safe,
  ], safe, { higherIsBetter: true, maxSteps: 8 });
  assert.deepEqual(ladder.map((s) => s.key), ['a', 'c', 'd', 'fp16']);
  const lower = selectLadder([point('a', 5, 0.3), point('b', 6, 0.1), point('c', 7, 0.2), safe], { ...safe, score: 0.05 }, { higherIsBetter: false, maxSteps: 8 });
  assert.deepEqual(lower.map((s) => s.key), ['a', 'b', 'fp16'], 'lower-is-better metrics: a lower score is a better step');
  assert.deepEqual(selectLadder([], safe, { higherIsBetter: true, maxSteps: 8 }).map((s) => s.key), ['fp16'], 'nothing feasible: the safe end alone');
});

test('a long front is thinned to --pareto-steps, keeping the fastest step, the chosen policy and all-FP16, spread over the rest', () => {
  // 21 front points on a straight line from (1 ms, 0.80) to (3 ms, 1.00), all-FP16 at 4 ms.
  const front = Array.from({ length: 21 }, (_, i) => point(`p${i}`, 1 + i / 10, 0.8 + i / 100));
  const safe = point('fp16', 4, 1.001);
  const ladder = selectLadder([...front, safe], safe, { higherIsBetter: true, maxSteps: 5, chosenKey: 'p3' });
  assert.equal(ladder.length, 5);
  assert.deepEqual(ladder.map((s) => s.key).filter((k) => ['p0', 'p3', 'fp16'].includes(k)), ['p0', 'p3', 'fp16']);
  const latencies = ladder.map((s) => s.latencyMs);
  assert.deepEqual(latencies, [...latencies].sort((a, b) => a - b), 'still fastest first');
  const gaps = latencies.slice(1).map((l, i) => l - latencies[i]);
  assert.ok(Math.max(...gaps) <= 1.5, `no large hole between kept steps: ${latencies.join(', ')}`);
});

test('the safe end is scored on the full data even when screening and the budget would skip it, once', async () => {
  const problem = smallToyProblem();
  let full = 0;
  const evaluator = { ...problem.evaluator, fp32Score: problem.evaluator.fp32Score, fp32SubsetScore: problem.evaluator.fp32SubsetScore, higherIsBetter: problem.evaluator.higherIsBetter,
    evaluate: (p: Parameters<typeof problem.evaluator.evaluate>[0], o?: { subset?: boolean }) => { if (!o?.subset) full++; return problem.evaluator.evaluate(p, o); } };
  const env = await PrecisionEnv.create({ layers: problem.layers, evaluator, latency: problem.latency, subset: true, budget: 0.9, maxDrop: 0.05 });
  const fp16 = uniformPolicy(env.layerNames, 'fp16');
  const skipped = await env.evaluatePolicy(fp16);
  assert.equal(skipped.scored, false, 'over the budget: priced, never scored');
  const safe = await measureSafeEnd(env);
  assert.equal(safe.confirmed, true);
  assert.ok(Number.isFinite(safe.score));
  assert.equal(safe.feasible, false, 'all-FP16 breaks the 0.9 budget, and says so');
  assert.equal(full, 1);
  assert.equal(await measureSafeEnd(env), safe, 'asked again: the same record, no new evaluation');
  assert.equal(full, 1);
  assert.equal(env.best, undefined, 'an infeasible safe end never becomes best');
});

const quiet = { quiet: true, log: () => {} };
const searchArgs = (f: ReturnType<typeof ladderFixture>, out: string) => ({
  model: f.model, data: f.data, out: join(f.dir, out), agent: 'random', episodes: 30, seed: 0, 'calib-samples': 16, 'eval-samples': 32,
  'screen-samples': 0, metric: 'cosine', 'max-drop': 0.05, target: 't4',
});

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

test('every search writes pareto/: the measured front, each step with its policy and every export, and the report links it', async () => {
  const f = ladderFixture();
  const run = join(f.dir, 'run');
  const outcome = await runSearch(searchArgs(f, 'run'), quiet);
  const steps = readJson<LadderStep[]>(join(run, 'pareto', 'index.json'));
  assert.deepEqual(outcome.ladder, steps);
  assert.ok(steps.length >= 3, `a ladder with steps between all-INT8 and all-FP16: ${steps.map((s) => s.latencyMs).join(', ')}`);
  const latencies = steps.map((s) => s.latencyMs);
  assert.deepEqual(latencies, [...latencies].sort((a, b) => a - b), 'fastest first');
  assert.deepEqual(steps.map((s) => s.allFp16), [...steps.slice(1).map(() => false), true], 'all-FP16 is the last step, and only it');
  assert.equal(steps.filter((s) => s.chosen).length, 1, 'the chosen policy is on the ladder');

  const history = readFileSync(join(run, 'history.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as HistoryLine);
  const measured = history.filter((h) => h.confirmed && h.feasible);
  for (const [i, s] of steps.entries()) {
    const policy = readJson<PolicyFile>(join(run, 'pareto', s.dir, 'policy.json'));
    for (const file of Object.values(EXPORT_FILE_NAMES)) assert.ok(existsSync(join(run, 'pareto', s.dir, file)), `${s.dir}/${file}`);
    assert.equal(policy.metrics.score, s.score);
    assert.equal(policy.metrics.latencyMs, s.latencyMs);
    const own = measured.find((h) => h.precisions.join() === policy.layers.map((l) => l.precision).join() && h.score === s.score);
    assert.ok(own, `${s.dir} is a policy the search measured`);
    if (!s.allFp16) {
      const dominating = measured.find((h) => h.latencyMs <= s.latencyMs && h.score! >= s.score && (h.latencyMs < s.latencyMs || h.score! > s.score));
      assert.equal(dominating, undefined, `no measured policy beats ${s.dir} on both axes`);
      assert.ok(i === 0 || s.score > steps[i - 1].score, 'each slower step scores better');
    } else {
      assert.ok(policy.layers.every((l) => l.precision === 'fp16'));
    }
    const trtexec = readFileSync(join(run, 'pareto', s.dir, 'trtexec.txt'), 'utf8');
    assert.ok(trtexec.includes(`--saveEngine=${join(run, 'pareto', s.dir, 'model.engine')}`), `the step's commands write its own engine:\n${trtexec}`);
    if (policy.layers.some((l) => l.precision === 'int8')) assert.ok(trtexec.includes(`--calib=${join(run, 'pareto', s.dir, 'calibration.cache')}`), 'and read its own calibration cache');
  }
  const chosen = steps.find((s) => s.chosen)!;
  assert.deepEqual(readJson(join(run, 'pareto', chosen.dir, 'policy.json')), readJson(join(run, 'policy.json')), 'the chosen step is the run\'s policy.json');
  assert.equal(JSON.parse(readFileSync(join(run, 'grafana-dashboard.json'), 'utf8')).uid, 'trtmix-monitor', 'the dashboard is in every search output, --metrics-port or not');
  const html = readFileSync(join(run, 'report.html'), 'utf8');
  for (const s of steps) assert.ok(html.includes(`href="pareto/${s.dir}/policy.json"`), `report.html links ${s.dir}`);

  // Resuming the finished search writes the same ladder again, and no step of an older one survives.
  mkdirSync(join(run, 'pareto', 'step-99'));
  await runSearch({ ...searchArgs(f, 'run'), resume: true }, quiet);
  assert.deepEqual(readJson(join(run, 'pareto', 'index.json')), steps);
  assert.deepEqual(readdirSync(join(run, 'pareto')).sort(), [...steps.map((s) => s.dir), 'index.json'].sort());

  // The ladder replayed: on the search's data every step gives its score back; on other data one table of all steps.
  const index = join(run, 'pareto', 'index.json');
  const same = await trtmix(['replay', index, '--data', f.data]);
  assert.equal(same.code, 0, same.stderr);
  for (const s of steps) assert.match(same.stdout, new RegExp(`^\\s*\\d+\\s+${s.dir}\\b.*\\byes$`, 'm'), `${s.dir} reproduced:\n${same.stdout}`);
  const other = await trtmix(['replay', index, '--data', f.newData, '--json']);
  assert.equal(other.code, 0, other.stderr);
  const doc = JSON.parse(other.stdout) as { steps: Array<{ dir: string; searchData: boolean; samples: number; score: number; latencyMs: number }> };
  assert.deepEqual(doc.steps.map((s) => s.dir), steps.map((s) => s.dir));
  assert.ok(doc.steps.every((s) => !s.searchData && s.samples === 24 && Number.isFinite(s.score)));
  assert.deepEqual(doc.steps.map((s) => s.latencyMs), latencies, 'latency is the policy\'s, whatever the data');
});

test('a damaged ladder index or a bad --pareto-steps is one clear line, exit 2', async () => {
  const f = ladderFixture();
  await assert.rejects(runSearch({ ...searchArgs(f, 'x'), 'pareto-steps': 1 }, quiet), /--pareto-steps must be a whole number >= 2/);
  const index = join(f.dir, 'index.json');
  writeFileSync(index, JSON.stringify([{ score: 1, latencyMs: 1 }]));
  assertUserError(await trtmix(['replay', index, '--data', f.data]), /index\.json: step 1 has no dir, score or latencyMs; pass the pareto\/index\.json a trtmix search wrote/);
  writeFileSync(index, JSON.stringify([{ dir: 'step-01', score: 1, latencyMs: 1 }]));
  assertUserError(await trtmix(['replay', index, '--data', f.data]), /step step-01 has no policy\.json/);
});

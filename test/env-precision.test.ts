import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrecisionEnv, type PrecisionEnvOptions } from '../envs/precision-env.ts';
import { checkEnv } from '../envs/check-env.ts';
import { RecordEpisodeStatistics, ScaleReward } from '../envs/wrappers.ts';
import { smallToyProblem } from '../envs/toy/index.ts';
import type { PolicyEvaluator } from '../envs/types.ts';
import { policyKey, uniformPolicy, type LayerPolicy } from '../src/policy.ts';
import { UserError } from '../src/errors.ts';

const problem = smallToyProblem();

/** Counts every call that reaches the evaluator (what the environment's cache must save). */
function countingEvaluator(inner: PolicyEvaluator): PolicyEvaluator & { calls: { full: number; subset: number } } {
  const calls = { full: 0, subset: 0 };
  return {
    calls,
    fp32Score: inner.fp32Score,
    fp32SubsetScore: inner.fp32SubsetScore,
    higherIsBetter: inner.higherIsBetter,
    evaluate(policy, opts) {
      if (opts?.subset) calls.subset++;
      else calls.full++;
      return inner.evaluate(policy, opts);
    },
  };
}

async function makeEnv(extra: Partial<PrecisionEnvOptions> = {}) {
  const evaluator = countingEvaluator(problem.evaluator);
  const env = await PrecisionEnv.create({ layers: problem.layers, evaluator, latency: problem.latency, ...extra });
  return { env, evaluator };
}

/** All 3^L action vectors. */
function allActionVectors(L: number, n: number): number[][] {
  const out: number[][] = [];
  for (let c = 0; c < n ** L; c++) out.push(Array.from({ length: L }, (_, i) => Math.floor(c / n ** (L - 1 - i)) % n));
  return out;
}

test('checkEnv passes on PrecisionEnv: plain, with a budget and floor, with subset screening, and wrapped', async () => {
  await checkEnv((await makeEnv()).env);
  await checkEnv((await makeEnv({ budget: 0.8, maxDrop: 0.02 })).env);
  await checkEnv((await makeEnv({ subset: true, maxDrop: 0.05 })).env, { seed: 3 });
  await checkEnv(new RecordEpisodeStatistics(new ScaleReward((await makeEnv()).env, 10)));
});

test('one step per layer, reward only at the end, equal to R = 0.6 dAcc - 0.4 dLat', async () => {
  const { env } = await makeEnv();
  const names = problem.layers.map((l) => l.name);
  const [obs0, info0] = env.reset({ seed: 0 });
  assert.equal(obs0.length, env.observationSpace.shape[0]);
  assert.equal(info0.layer, names[0]);
  const actions = [0, 1, 2, 0];
  for (let t = 0; t < names.length; t++) {
    const [, reward, terminated, truncated, info] = await env.step(actions[t]);
    assert.equal(truncated, false);
    if (t < names.length - 1) {
      assert.equal(reward, 0);
      assert.equal(terminated, false);
      assert.equal(info.layer, names[t + 1]);
      continue;
    }
    assert.equal(terminated, true);
    const policy = env.policyFromActions(actions);
    assert.deepEqual(Object.values(policy).map((d) => d.precision), ['int8', 'mixed', 'fp16', 'int8']);
    const score = (await problem.evaluator.evaluate(policy)).score;
    const latency = (await problem.latency.estimate(policy)).totalMs;
    const fp16 = (await problem.latency.estimate(uniformPolicy(names, 'fp16'))).totalMs;
    const expected = 0.6 * (score - 1) - 0.4 * ((latency - fp16) / fp16);
    assert.ok(Math.abs(reward - expected) < 1e-12, `${reward} vs ${expected}`);
    assert.equal(info.reward, reward);
    assert.equal(info.feasible, true);
  }
  await assert.rejects(env.step(0), /call reset\(\) first/);
});

test('the observation carries layer type, sensitivity features, progress and the previous action', async () => {
  const sensitivity = problem.layers.map((_, i) => ({ kl: i === 1 ? 0.9 : 0.1, histogramOverlap: 1 - i / 10 }));
  const { env } = await makeEnv({ sensitivity });
  const f = (name: string): number => env.featureNames.indexOf(name);
  assert.ok(f('sensitivity.kl') >= 0 && f('sensitivity.histogramOverlap') >= 0 && f('op.Gemm') >= 0);
  let [obs] = env.reset();
  assert.equal(obs[f('op.Conv')], 1);
  assert.equal(obs[f('progress')], 0);
  assert.equal(obs[f('prevAction.0')] + obs[f('prevAction.1')] + obs[f('prevAction.2')], 0);
  [obs] = await env.step(2);
  assert.equal(obs[f('sensitivity.kl')], 1, 'the most sensitive layer scales to 1');
  assert.equal(obs[f('prevAction.2')], 1);
  assert.equal(obs[f('progress')], 0.25);
  assert.equal(obs[f('prefix.0.2')], 1);
  await env.step(0);
  [obs] = await env.step(0);
  assert.equal(obs[f('op.Gemm')], 1, 'the last layer is the classifier');
  // Sensitivity may also be keyed by layer name.
  const byName = Object.fromEntries(problem.layers.map((l, i) => [l.name, sensitivity[i]]));
  const { env: env2 } = await makeEnv({ sensitivity: byName });
  assert.deepEqual(Array.from(env2.reset()[0]), Array.from(env.reset()[0]));
});

test('every policy is measured once: repeats are cache hits, counted', async () => {
  const { env, evaluator } = await makeEnv();
  const p = env.policyFromActions([0, 0, 2, 2]);
  const a = await env.evaluatePolicy(p);
  const b = await env.evaluatePolicy({ ...p });
  assert.equal(a, b);
  const [c, d] = await Promise.all([env.evaluatePolicy(env.policyFromActions([1, 1, 1, 1])), env.evaluatePolicy(env.policyFromActions([1, 1, 1, 1]))]);
  assert.equal(c, d, 'concurrent requests share one measurement');
  assert.equal(evaluator.calls.full, 2);
  assert.deepEqual({ evaluations: env.stats.evaluations, cacheHits: env.stats.cacheHits }, { evaluations: 2, cacheHits: 2 });
  assert.equal(env.history.length, 2);
  assert.equal(a.key, policyKey(env.layerNames, p));
  env.reset();
  for (const x of [0, 0, 2, 2]) await env.step(x);
  assert.equal(evaluator.calls.full, 2, 'an episode ending in a known policy costs nothing');
  assert.equal(env.stats.cacheHits, 3);
});

test('the budget mask never hides a policy within budget, and masked episodes respect the lower bound', async () => {
  const { env } = await makeEnv({ budget: 0.8 });
  const budgetMs = env.constraints.budgetMs;
  let within = 0;
  let masked = 0;
  for (const actions of allActionVectors(4, 3)) {
    const ms = await env.latencyOf(env.policyFromActions(actions));
    env.reset();
    let legal = true;
    for (const a of actions) {
      if (!env.actionMask()[a]) {
        legal = false;
        break;
      }
      await env.step(a);
    }
    if (ms <= budgetMs) {
      within++;
      assert.ok(legal, `policy ${actions} is within budget (${ms} <= ${budgetMs}) but was masked`);
    }
    if (!legal) {
      masked++;
      assert.ok(env.latencyLowerBound(actions) > budgetMs, 'only policies whose lower bound breaks the budget are masked');
    }
  }
  assert.ok(within > 0 && masked > 0, `the budget should bind (within ${within}, masked ${masked})`);
  assert.ok(env.stats.skippedOverBudget > 0, 'some reachable policies are over budget once reformats count');
});

test('best is the highest-reward policy within both constraints; over-budget policies are never scored', async () => {
  const { env, evaluator } = await makeEnv({ budget: 0.9, maxDrop: 0.02 });
  const records = [];
  for (const actions of allActionVectors(4, 3)) records.push(await env.evaluatePolicy(env.policyFromActions(actions)));
  const feasible = records.filter((r) => r.latencyMs <= env.constraints.budgetMs && -r.dAcc <= 0.02);
  assert.ok(feasible.length > 0 && feasible.length < records.length);
  const top = feasible.reduce((a, b) => (b.reward > a.reward ? b : a));
  assert.equal(env.best?.key, top.key);
  const overBudget = records.filter((r) => r.latencyMs > env.constraints.budgetMs);
  assert.ok(overBudget.length > 0);
  assert.ok(overBudget.every((r) => !r.scored && !r.feasible && Number.isNaN(r.reward) && r.trainingReward <= -0.4 * r.dLat - 0.2));
  assert.equal(evaluator.calls.full, records.length - overBudget.length);
  assert.equal(env.stats.skippedOverBudget, overBudget.length);
  const unconstrainedBest = records.filter((r) => r.scored).reduce((a, b) => (b.reward > a.reward ? b : a));
  if (unconstrainedBest.key !== top.key) assert.equal(unconstrainedBest.feasible, false);
  for (const r of records.filter((x) => x.scored && !x.feasible)) assert.ok(r.trainingReward < r.reward - 0.2 + 1e-12);
});

test('subset screening confirms only promising policies on the full data, and only those can be best', async () => {
  const { env, evaluator } = await makeEnv({ subset: { confirmTopK: 3 }, maxDrop: 0.05 });
  for (const actions of allActionVectors(4, 3)) await env.evaluatePolicy(env.policyFromActions(actions));
  assert.equal(evaluator.calls.subset, 81);
  assert.ok(evaluator.calls.full > 0 && evaluator.calls.full < 30, `confirmed ${evaluator.calls.full} of 81`);
  assert.equal(env.stats.evaluations, evaluator.calls.full);
  assert.equal(env.stats.subsetEvaluations, 81);
  assert.ok(env.best?.confirmed && Number.isFinite(env.best.score));
  for (const r of env.records()) assert.equal(r.confirmed, Number.isFinite(r.score));
});

test('restore fills the cache from an earlier run without evaluating', async () => {
  const first = await makeEnv({ maxDrop: 0.05 });
  for (const actions of [[0, 0, 0, 0], [2, 2, 2, 2], [0, 1, 2, 2]]) await first.env.evaluatePolicy(first.env.policyFromActions(actions));
  const saved = JSON.parse(JSON.stringify(first.env.history.map((r) => ({ policy: r.policy, score: r.score, latencyMs: r.latencyMs }))));
  const second = await makeEnv({ maxDrop: 0.05 });
  second.env.restore(saved);
  assert.equal(second.env.best?.key, first.env.best?.key);
  await second.env.evaluatePolicy(second.env.policyFromActions([0, 1, 2, 2]));
  assert.equal(second.evaluator.calls.full, 0);
  assert.equal(second.env.stats.evaluations, 0);
});

test('two environments built alike produce the same episodes (determinism)', async () => {
  const run = async (): Promise<string> => {
    const { env } = await makeEnv({ budget: 0.85, maxDrop: 0.05 });
    const trace: number[] = [];
    for (let episode = 0; episode < 5; episode++) {
      env.reset({ seed: episode });
      for (;;) {
        const [obs, reward, done] = await env.step(env.actionSpace.sample(env.actionMask()));
        trace.push(reward, ...obs);
        if (done) break;
      }
    }
    return JSON.stringify(trace);
  };
  assert.equal(await run(), await run());
});

test('the action set can carry calibration choices and fp32; policies round-trip through actions', async () => {
  const { env } = await makeEnv({ actions: ['int8', { precision: 'int8', calibration: { method: 'max' } }, 'mixed', 'fp16', 'fp32'] });
  assert.equal(env.actionSpace.n, 5);
  const policy: LayerPolicy = env.policyFromActions([1, 0, 3, 4]);
  assert.deepEqual(policy[env.layerNames[0]], { precision: 'int8', calibration: { method: 'max' } });
  assert.deepEqual(env.actionsFromPolicy(policy), [1, 0, 3, 4]);
  assert.notEqual(policyKey(env.layerNames, policy), policyKey(env.layerNames, env.policyFromActions([0, 0, 3, 4])));
  await assert.rejects(
    PrecisionEnv.create({ layers: problem.layers, evaluator: problem.evaluator, latency: problem.latency, actions: [{ precision: 'fp16', calibration: { method: 'max' } }] }),
    /calibration applies to int8\/mixed/,
  );
  const limited = await makeEnv({ allowAction: (layer, o) => !(layer.op === 'Gemm' && o.precision === 'int8') });
  limited.env.reset();
  for (let t = 0; t < 3; t++) await limited.env.step(0);
  assert.deepEqual(limited.env.actionMask(), [false, true, true]);
  await assert.rejects(limited.env.step(0), /masked for layer gemm3/);
});

test('bad constraints are user errors with a fix in the message', async () => {
  const bad: Array<[Partial<PrecisionEnvOptions>, RegExp]> = [
    [{ budget: 0.7, budgetMs: 1 }, /either --budget-ms .* or --budget/],
    [{ budget: 0 }, /--budget must be a positive fraction/],
    [{ budgetMs: -2 }, /--budget-ms must be a positive/],
    [{ maxDrop: -0.1 }, /--max-drop must be/],
    [{ layers: [] }, /no quantizable layers/],
  ];
  for (const [opts, msg] of bad) {
    await assert.rejects(makeEnv(opts), (e: unknown) => e instanceof UserError && msg.test(e.message));
  }
});

test('RecordEpisodeStatistics reports the return and length of each episode', async () => {
  const env = new RecordEpisodeStatistics((await makeEnv()).env);
  env.reset();
  let info: Record<string, unknown> = {};
  let total = 0;
  for (let t = 0; t < 4; t++) {
    const out = await env.step(2);
    total += out[1];
    info = out[4];
  }
  assert.deepEqual(info.episode, { r: total, l: 4 });
  assert.deepEqual(env.returnQueue, [total]);
});

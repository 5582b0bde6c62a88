/**
 * Rounds of K proposals (the vector env): results are consumed in proposal order, so what the search measures and
 * chooses depends on K and the seed, never on which evaluation finishes first. The evaluator here is the real toy
 * network's; `delayed` only makes its answers arrive late, in an order drawn from another seed, as workers would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import { PrecisionEnv, type PrecisionEnvOptions } from '../envs/precision-env.ts';
import { PrecisionVectorEnv } from '../envs/vector-env.ts';
import { toyProblem } from '../envs/toy/index.ts';
import type { PolicyEvaluator } from '../envs/types.ts';
import { createAgent, type SearchBudget } from '../agents/index.ts';
import { DQN } from '../agents/dqn/dqn.ts';
import { ScaleReward } from '../envs/wrappers.ts';

/** The same scores, each answered after a delay drawn from `order` (0-8 ms), with a count of jobs at once. */
function delayed(inner: PolicyEvaluator, order: string | undefined): PolicyEvaluator & { peak: number } {
  const rng = seedrandom(order ?? 'none');
  let running = 0;
  const out = {
    peak: 0,
    fp32Score: inner.fp32Score,
    fp32SubsetScore: inner.fp32SubsetScore,
    higherIsBetter: inner.higherIsBetter,
    async evaluate(policy: Parameters<PolicyEvaluator['evaluate']>[0], opts?: { subset?: boolean }) {
      running++;
      out.peak = Math.max(out.peak, running);
      try {
        const r = await inner.evaluate(policy, opts);
        if (order !== undefined) await new Promise((res) => setTimeout(res, Math.floor(rng() * 9)));
        return r;
      } finally {
        running--;
      }
    },
  };
  return out;
}

const problem = toyProblem({
  seed: 7,
  inputShape: [2, 8, 8],
  layers: [
    { kind: 'conv', outChannels: 6, kernel: 3, activation: 'relu' },
    { kind: 'conv', outChannels: 8, kernel: 3, stride: 2, activation: 'relu' },
    { kind: 'conv', outChannels: 8, kernel: 3, activation: 'relu' },
    { kind: 'conv', outChannels: 8, kernel: 1, activation: 'relu' },
    { kind: 'conv', outChannels: 8, kernel: 3, activation: 'relu' },
    { kind: 'gemm', outFeatures: 5 },
  ],
  outliers: [{ layer: 1, channel: 3, gain: 30 }, { layer: 4, channel: 2, gain: 20 }],
  samples: 64,
  subsetSamples: 16,
  calibrationSamples: 32,
});

async function makeEnv(order: string | undefined, extra: Partial<PrecisionEnvOptions> = {}) {
  const evaluator = delayed(problem.evaluator, order);
  const env = await PrecisionEnv.create({ layers: problem.layers, evaluator, latency: problem.latency, maxDrop: 0.02, subset: true, ...extra });
  return { env, evaluator };
}

/** What decides a search: every record in history order (key, scores, ordinal) and the best. */
function trace(env: PrecisionEnv) {
  return {
    history: env.history.map((r) => [r.key, r.confirmed, r.score, r.subsetScore ?? null, r.evaluation, r.feasible]),
    best: env.best?.key ?? null,
    stats: env.stats,
  };
}

async function searched(agent: string, budget: SearchBudget, order: string | undefined, extra: Partial<PrecisionEnvOptions> = {}) {
  const { env, evaluator } = await makeEnv(order, extra);
  const a = createAgent(agent, { seed: 3, dqn: { hyperparameters: { learningStarts: 20 } } });
  const result = await a.search(env, budget);
  (a as { dispose?: () => void }).dispose?.();
  return { trace: trace(env), best: result.best?.key ?? null, evaluations: result.evaluations, peak: evaluator.peak };
}

test('a round of one is one sequential measurement: evaluateRound([p]) and evaluatePolicy leave the same ledger', async () => {
  const policies = Array.from({ length: 12 }, (_, n) => {
    const rng = seedrandom(`p${n % 9}`); // repeats, so the cache answers some
    return Object.fromEntries(problem.layers.map((l) => [l.name, { precision: (['int8', 'mixed', 'fp16'] as const)[Math.floor(rng() * 3)] }]));
  });
  const a = await makeEnv(undefined);
  for (const p of policies) await a.env.evaluatePolicy(p);
  const b = await makeEnv('shuffled');
  for (const p of policies) await b.env.evaluateRound([p]);
  assert.deepEqual(trace(b.env), trace(a.env));
});

test('a round measures its policies at once and gives the same records whatever order the scores arrive in', async () => {
  const rng = seedrandom('round');
  const policies = Array.from({ length: 8 }, () => Object.fromEntries(problem.layers.map((l) => [l.name, { precision: (['int8', 'mixed', 'fp16'] as const)[Math.floor(rng() * 3)] }])));
  policies.push(policies[2]); // asked twice in one round: measured once
  const runs = [];
  for (const order of [undefined, 'a', 'b']) {
    const { env, evaluator } = await makeEnv(order);
    const records = await env.evaluateRound(policies);
    assert.equal(records.length, policies.length);
    assert.equal(records[8], records[2]);
    if (order !== undefined) assert.ok(evaluator.peak > 1, `the round's jobs ran at once (peak ${evaluator.peak})`);
    runs.push(trace(env));
  }
  assert.deepEqual(runs[1], runs[0]);
  assert.deepEqual(runs[2], runs[0]);
  assert.equal(runs[0].stats.cacheHits, 1);
});

test('learnVector with one slot is learn(): the same episodes, measurements and best policy', async () => {
  const hyper = { seed: 5, learningStarts: 10, explorationInitialEps: 0.5 };
  const a = await makeEnv(undefined);
  const dqnA = await DQN.create(a.env, hyper);
  await dqnA.learn(new ScaleReward(a.env, 10), { totalTimesteps: 30 * problem.layers.length, maxEvaluations: 12 });
  const b = await makeEnv(undefined);
  const dqnB = await DQN.create(b.env, hyper);
  await dqnB.learnVector(new PrecisionVectorEnv(b.env, 1, 10), { totalTimesteps: 30 * problem.layers.length, maxEvaluations: 12 });
  assert.deepEqual(trace(b.env), trace(a.env));
  assert.equal(dqnB.numTimesteps, dqnA.numTimesteps);
  dqnA.dispose();
  dqnB.dispose();
});

for (const agent of ['dqn', 'greedy', 'knapsack', 'bisect', 'random', 'best-calibration']) {
  test(`${agent} with 4 proposals per round: the same search whatever order the evaluations finish in`, async () => {
    const budget: SearchBudget = { maxEvaluations: 14, episodes: 40, proposals: 4 };
    const reference = await searched(agent, budget, undefined);
    const late = await searched(agent, budget, 'late');
    const later = await searched(agent, budget, 'later');
    assert.deepEqual(late.trace, reference.trace);
    assert.deepEqual(later.trace, reference.trace);
    assert.ok(reference.evaluations <= 14, `the budget holds (${reference.evaluations})`);
    if (agent !== 'best-calibration') assert.ok(late.peak > 1, `${agent} measured several policies at once (peak ${late.peak})`);
  });
}

test('the DQN with 4 episodes per round differs from one at a time (the round width is part of the search)', async () => {
  const one = await searched('dqn', { maxEvaluations: 14, episodes: 40, proposals: 1 }, undefined);
  const four = await searched('dqn', { maxEvaluations: 14, episodes: 40, proposals: 4 }, undefined);
  assert.notDeepEqual(four.trace.history, one.trace.history);
});

test('a round of proposals never spends more evaluations than the budget leaves', async () => {
  for (const max of [3, 5, 7]) {
    const { env } = await makeEnv('x', { subset: false });
    const a = createAgent('random', { seed: 1 });
    const r = await a.search(env, { maxEvaluations: max, episodes: 100, proposals: 4 });
    assert.equal(r.evaluations, max);
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrecisionEnv } from '../envs/precision-env.ts';
import { ScaleReward } from '../envs/wrappers.ts';
import { smallToyProblem } from '../envs/toy/index.ts';
import { DQN, type DQNHyperparameters } from '../agents/dqn/dqn.ts';
import { ExhaustiveAgent } from '../agents/baselines/exhaustive.ts';

const problem = smallToyProblem();
const makeEnv = () => PrecisionEnv.create({ layers: problem.layers, evaluator: problem.evaluator, latency: problem.latency, maxDrop: 0.02 });
const hyper: Partial<DQNHyperparameters> = {
  learningStarts: 32, batchSize: 32, trainFreq: 1, gradientSteps: 1, targetUpdateInterval: 100, explorationFraction: 0.9,
  explorationFinalEps: 0.05, nSteps: 3, replayBestEvery: 5, policyKwargs: { netArch: [32, 32] },
};

async function weights(agent: DQN): Promise<number[][]> {
  return Promise.all(agent.policy.online.getWeights().map(async (w) => Array.from(await w.data())));
}

test('DQN finds the exhaustive optimum of a 4-layer problem with fewer evaluations than exhaustive search', async () => {
  const reference = await makeEnv();
  const exhaustive = await new ExhaustiveAgent().search(reference);
  assert.ok(exhaustive.best, 'the problem has a feasible policy');
  const env = await makeEnv();
  const agent = await DQN.create(env, { ...hyper, seed: 1 });
  await agent.learn(new ScaleReward(env, 10), {
    totalTimesteps: 4 * 1000,
    maxEvaluations: 40,
    demonstrations: [env.uniformActions('fp16')!, env.uniformActions('int8')!],
  });
  assert.equal(env.best?.key, exhaustive.best.key, `dqn best ${env.best?.key} (${env.best?.reward}) vs optimum ${exhaustive.best.key} (${exhaustive.best.reward})`);
  assert.ok(env.stats.evaluations < exhaustive.evaluations, `${env.stats.evaluations} evaluations vs ${exhaustive.evaluations}`);
  // After training, the greedy policy itself is the optimum.
  let [obs] = env.reset();
  const actions: number[] = [];
  for (;;) {
    const a = agent.predict(obs, { mask: env.actionMask() });
    actions.push(a);
    const [next, , done] = await env.step(a);
    obs = next;
    if (done) break;
  }
  assert.deepEqual(actions, exhaustive.best.actions);
  agent.dispose();
});

test('the same seed gives the same training run: same policies measured, same weights', async () => {
  const run = async () => {
    const env = await makeEnv();
    const agent = await DQN.create(env, { ...hyper, seed: 5 });
    await agent.learn(env, { totalTimesteps: 300 });
    const out = { keys: env.history.map((r) => r.key), weights: await weights(agent), best: agent.bestEpisode };
    agent.dispose();
    return out;
  };
  const [a, b] = [await run(), await run()];
  assert.deepEqual(a, b);
  const env = await makeEnv();
  const other = await DQN.create(env, { ...hyper, seed: 6 });
  await other.learn(env, { totalTimesteps: 300 });
  assert.notDeepEqual(await weights(other), a.weights, 'another seed trains differently');
  other.dispose();
});

test('a saved and reloaded agent continues exactly as one that never stopped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'trtmix-dqn-'));
  try {
    const envA = await makeEnv();
    const uninterrupted = await DQN.create(envA, { ...hyper, seed: 2 });
    await uninterrupted.learn(envA, { totalTimesteps: 160 });
    await uninterrupted.learn(envA, { totalTimesteps: 160 });

    const envB = await makeEnv();
    const first = await DQN.create(envB, { ...hyper, seed: 2 });
    await first.learn(envB, { totalTimesteps: 160 });
    await first.save(dir);
    first.dispose();
    const resumed = await DQN.load(dir);
    await resumed.learn(envB, { totalTimesteps: 160 });

    assert.equal(resumed.numTimesteps, uninterrupted.numTimesteps);
    assert.equal(resumed.nUpdates, uninterrupted.nUpdates);
    assert.deepEqual(await weights(resumed), await weights(uninterrupted));
    resumed.dispose();
    uninterrupted.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('predict respects the action mask and learning never takes a masked action', async () => {
  const env = await PrecisionEnv.create({ layers: problem.layers, evaluator: problem.evaluator, latency: problem.latency, budget: 0.85 });
  const agent = await DQN.create(env, { ...hyper, seed: 0 });
  const [obs] = env.reset();
  const q = agent.policy.qValues(obs);
  const worst = q.indexOf(Math.min(...q));
  const onlyWorst = Array.from(q, (_, a) => a === worst);
  assert.equal(agent.predict(obs, { mask: onlyWorst }), worst);
  // env.step throws on a masked action, so a full run is the check.
  await agent.learn(env, { totalTimesteps: 200 });
  assert.ok(env.stats.skippedOverBudget + env.stats.evaluations > 0);
  assert.ok(env.history.every((r) => env.latencyLowerBound(r.actions) <= env.constraints.budgetMs * (1 + 1e-9)));
  agent.dispose();
});

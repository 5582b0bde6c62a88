import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import { PrecisionEnv, type PrecisionEnvOptions } from '../envs/precision-env.ts';
import type { PolicyEvaluator } from '../envs/types.ts';
import { smallToyProblem } from '../envs/toy/index.ts';
import type { Layer } from '../src/onnx/layer-types.ts';
import type { LatencyModel } from '../src/latency/types.ts';
import type { LayerPolicy, Precision } from '../src/policy.ts';
import { UserError } from '../src/errors.ts';
import { AGENT_NAMES, createAgent } from '../agents/index.ts';
import { BisectAgent, markedActions } from '../agents/baselines/bisect.ts';
import { ExhaustiveAgent } from '../agents/baselines/exhaustive.ts';
import { GreedyAgent } from '../agents/baselines/greedy.ts';
import { KnapsackAgent, solveAdditive, type AdditiveProblem } from '../agents/baselines/knapsack.ts';
import { RandomAgent } from '../agents/baselines/random.ts';
import { RulesAgent } from '../agents/baselines/rules.ts';

/** n identical conv layers; what differs between them is in the synthetic evaluator and latency model. */
function syntheticLayers(n: number): Layer[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `l${i}`, index: i, nodeIndex: i, op: 'Conv', input: `t${i}`, weight: `w${i}`, weightIsConstant: true, output: `o${i}`,
    fusedOutput: `t${i + 1}`, inputShape: [1, 8, 8, 8], weightShape: [8, 8, 3, 3], outputShape: [1, 8, 8, 8], inChannels: 8,
    outChannels: 8, kernel: [3, 3], stride: [1, 1], dilation: [1, 1], groups: 1, depthwise: false, weightAxis: 0, macs: 4608, params: 584,
  }));
}

/** Additive accuracy: each int8/mixed layer i costs drop[i] (mixed half of it); counts its calls. */
function additiveEvaluator(layers: Layer[], drop: number[]): PolicyEvaluator & { calls: number } {
  return {
    calls: 0,
    fp32Score: 1,
    higherIsBetter: true,
    async evaluate(policy: LayerPolicy) {
      this.calls++;
      let score = 1;
      layers.forEach((l, i) => {
        const p = policy[l.name]?.precision;
        if (p === 'int8') score -= drop[i];
        if (p === 'mixed') score -= drop[i] / 2;
      });
      return { score };
    },
  };
}

const SPEED: Record<Precision, number> = { int8: 0.5, mixed: 0.7, fp16: 1, fp32: 2 };
function additiveLatency(layers: Layer[], ms: number[]): LatencyModel {
  return {
    target: 'synthetic',
    async estimate(policy) {
      const perLayer = layers.map((l, i) => {
        const precision = policy[l.name]?.precision ?? 'fp32';
        return { name: l.name, ms: ms[i] * SPEED[precision], precision, reformatMs: 0 };
      });
      return { totalMs: perLayer.reduce((s, l) => s + l.ms, 0), perLayer };
    },
  };
}

async function syntheticEnv(drop: number[], ms: number[], extra: Partial<PrecisionEnvOptions> = {}) {
  const layers = syntheticLayers(drop.length);
  const evaluator = additiveEvaluator(layers, drop);
  const env = await PrecisionEnv.create({ layers, evaluator, latency: additiveLatency(layers, ms), ...extra });
  return { env, evaluator };
}

const toy = smallToyProblem();
const toyEnv = (extra: Partial<PrecisionEnvOptions> = {}) =>
  PrecisionEnv.create({ layers: toy.layers, evaluator: toy.evaluator, latency: toy.latency, maxDrop: 0.02, ...extra });

test('every agent createAgent knows runs in the same environment and reports only feasible bests', async () => {
  const sensitivity = toy.layers.map((_, i) => ({ kl: i === 1 ? 0.8 : 0.05, histogramOverlap: i === 1 ? 0.5 : 0.95 }));
  for (const name of AGENT_NAMES) {
    const env = await toyEnv({ sensitivity, budget: 0.9 });
    const agent = createAgent(name, { seed: 0, dqn: { hyperparameters: { policyKwargs: { netArch: [16] }, learningStarts: 16 } } });
    const result = await agent.search(env, { episodes: 30, maxEvaluations: 30 });
    (agent as { dispose?: () => void }).dispose?.();
    assert.equal(result.agent, name);
    assert.equal(result.evaluations, env.stats.evaluations, `${name}: evaluations are counted by the environment`);
    assert.ok(result.evaluations <= 30 || name === 'exhaustive' || name === 'knapsack', `${name} spent ${result.evaluations}`);
    if (result.best) {
      assert.ok(result.best.feasible && result.best.confirmed, `${name}: best must be feasible`);
      assert.ok(result.best.latencyMs <= env.constraints.budgetMs && -result.best.dAcc <= 0.02);
    }
  }
  assert.throws(() => createAgent('ppo'), (e: unknown) => e instanceof UserError && /unknown --agent "ppo"/.test(e.message));
});

test('exhaustive finds the true optimum and refuses spaces above its limit', async () => {
  const env = await toyEnv({ budget: 0.9 });
  const result = await new ExhaustiveAgent().search(env);
  assert.equal(result.policies, 81);
  const brute = [];
  for (let c = 0; c < 81; c++) {
    const actions = [0, 1, 2, 3].map((i) => Math.floor(c / 3 ** (3 - i)) % 3);
    const policy = env.policyFromActions(actions);
    const score = (await toy.evaluator.evaluate(policy)).score;
    const ms = (await toy.latency.estimate(policy)).totalMs;
    const reward = 0.6 * (score - 1) - 0.4 * ((ms - env.fp16LatencyMs) / env.fp16LatencyMs);
    if (ms <= env.constraints.budgetMs && 1 - score <= 0.02) brute.push({ actions, reward });
  }
  const top = brute.reduce((a, b) => (b.reward > a.reward ? b : a));
  assert.deepEqual(result.best?.actions, top.actions);
  assert.ok(result.evaluations < 81, 'over-budget policies are priced, not scored');
  await assert.rejects(new ExhaustiveAgent(80).search(await toyEnv()), (e: unknown) => e instanceof UserError && /81 policies \(limit 80\)/.test(e.message));
});

test('solveAdditive matches brute force on random additive problems', () => {
  const rng = seedrandom('knapsack');
  for (let trial = 0; trial < 30; trial++) {
    const L = 2 + Math.floor(rng() * 5);
    const A = 2 + Math.floor(rng() * 2);
    const p: AdditiveProblem = {
      latencyMs: Array.from({ length: L }, () => Array.from({ length: A }, () => 1 + Math.floor(rng() * 9))),
      drop: Array.from({ length: L }, () => Array.from({ length: A }, () => Math.round(rng() * 100) / 1000)),
      allowed: Array.from({ length: L }, () => Array.from({ length: A }, () => rng() > 0.15)),
      baseMs: 2, baseDrop: 0.001, fp16LatencyMs: 5 * L, budgetMs: 2 + 4 * L, maxDrop: 0.08, wAcc: 0.6, wLat: 0.4,
    };
    p.allowed.forEach((row) => (row[0] = true));
    let best = -Infinity;
    for (let c = 0; c < A ** L; c++) {
      const acts = Array.from({ length: L }, (_, i) => Math.floor(c / A ** i) % A);
      if (acts.some((a, i) => !p.allowed[i][a])) continue;
      const ms = p.baseMs + acts.reduce((s, a, i) => s + p.latencyMs[i][a], 0);
      const drop = p.baseDrop + acts.reduce((s, a, i) => s + p.drop[i][a], 0);
      if (ms > p.budgetMs || drop > p.maxDrop + 1e-12) continue;
      best = Math.max(best, -p.wAcc * drop - p.wLat * ((ms - p.fp16LatencyMs) / p.fp16LatencyMs));
    }
    // Integer latencies at resolution 1 ms make the bucketing exact.
    const [sol] = solveAdditive(p, 1, 1);
    if (best === -Infinity) assert.equal(sol, undefined);
    else assert.ok(Math.abs(sol.reward - best) < 1e-9, `trial ${trial}: ${sol?.reward} vs ${best}`);
  }
});

test('knapsack measures one probe per layer and action, then the additive optimum (exact here)', async () => {
  const drop = [0.001, 0.02, 0.004, 0.03, 0.002, 0.006];
  const ms = [1, 2, 1, 3, 2, 1];
  const { env, evaluator } = await syntheticEnv(drop, ms, { maxDrop: 0.015, budget: 0.8 });
  const result = await new KnapsackAgent({ topK: 1 }).search(env);
  assert.equal(evaluator.calls, 1 + 1 + 6 * 2 + 1, 'all-fp16, all-int8 (the one calibration here), 12 single-layer probes, 1 candidate');
  const exhaustive = await new ExhaustiveAgent().search((await syntheticEnv(drop, ms, { maxDrop: 0.015, budget: 0.8 })).env);
  assert.deepEqual(result.best?.actions, exhaustive.best?.actions);
  // With the analyzer's drops the probes are not needed.
  const features = drop.map((d) => ({ int8Drop: d, mixedDrop: d / 2 }));
  const withFeatures = await syntheticEnv(drop, ms, { maxDrop: 0.015, budget: 0.8, sensitivity: features });
  const r2 = await new KnapsackAgent({ topK: 1, dropFeatures: { int8: 'int8Drop', mixed: 'mixedDrop' } }).search(withFeatures.env);
  assert.equal(withFeatures.evaluator.calls, 3, 'all-fp16, all-int8, 1 candidate');
  assert.deepEqual(r2.best?.actions, exhaustive.best?.actions);
});

test('bisect marks prefixes like Polygraphy and finds the shortest passing one in log2 steps', async () => {
  assert.deepEqual(markedActions([0, 0, 0, 0], 3, 'forward', 2, () => true), [2, 2, 2, 0]);
  assert.deepEqual(markedActions([0, 0, 0, 0], 1, 'reverse', 2, () => true), [0, 0, 0, 2]);
  assert.deepEqual(markedActions([0, 0, 0, 0], 2, 'forward', 2, (i) => i !== 0), [0, 2, 0, 0]);
  // Sensitivity sits in the first layers: fp16 on the first 5 of 10 brings the drop under 2 %.
  const drop = [0.03, 0.02, 0.02, 0.01, 0.01, 0.003, 0.003, 0.003, 0.003, 0.003];
  const { env, evaluator } = await syntheticEnv(drop, drop.map(() => 1), { maxDrop: 0.02 });
  const result = await new BisectAgent({ directions: ['forward'] }).search(env);
  assert.deepEqual(result.best?.actions, [2, 2, 2, 2, 2, 0, 0, 0, 0, 0]);
  assert.ok(evaluator.calls <= 1 + Math.ceil(Math.log2(10)) + 1, `${evaluator.calls} evaluations`);
  assert.match(result.notes.join(), /first 5 layer\(s\) in fp16 pass/);
});

test('greedy falls back the most sensitive layer first and stops as soon as the floor holds', async () => {
  const drop = [0.002, 0.03, 0.001, 0.02, 0.004];
  const { env, evaluator } = await syntheticEnv(drop, drop.map(() => 1), { maxDrop: 0.01 });
  const result = await new GreedyAgent().search(env);
  // int8 everywhere drops 5.7 %; falling back layers 1 and 3 leaves 0.7 %.
  assert.deepEqual(result.best?.actions, [0, 2, 0, 2, 0]);
  assert.equal(evaluator.calls, 1 + 5 + 1, 'all-int8, one ranking probe per layer, two fallbacks (the first is a cached probe)');
  const withFeatures = await syntheticEnv(drop, drop.map(() => 1), { maxDrop: 0.01, sensitivity: drop.map((d) => ({ int8Drop: d })) });
  const r2 = await new GreedyAgent().search(withFeatures.env);
  assert.deepEqual(r2.best?.actions, [0, 2, 0, 2, 0]);
  assert.equal(withFeatures.evaluator.calls, 3, 'the analyzer\'s ranking replaces the probes');
});

test('rules keeps a layer in fp16 when histogram overlap < 0.7 or KL > 0.3, and needs the features', async () => {
  const rules = new RulesAgent();
  assert.deepEqual(
    rules.decide([{ histogramOverlap: 0.69, kl: 0.1 }, { histogramOverlap: 0.7, kl: 0.3 }, { histogramOverlap: 0.9, kl: 0.31 }, {}]),
    [true, false, true, false],
  );
  const { env } = await syntheticEnv([0.01, 0.01], [1, 1], { sensitivity: [{ histogramOverlap: 0.5, kl: 0 }, { histogramOverlap: 0.95, kl: 0.01 }] });
  const result = await rules.search(env);
  assert.deepEqual(result.best?.actions, [2, 0]);
  const bare = await syntheticEnv([0.01, 0.01], [1, 1]);
  await assert.rejects(rules.search(bare.env), (e: unknown) => e instanceof UserError && /run `trtmix analyze`/.test(e.message));
});

test('random search is reproducible by seed and stays inside the mask', async () => {
  const keys = async (seed: number) => {
    const env = await toyEnv({ budget: 0.85 });
    await new RandomAgent(seed).search(env, { episodes: 25 });
    return env.history.map((r) => r.key);
  };
  assert.deepEqual(await keys(1), await keys(1));
  assert.notDeepEqual(await keys(1), await keys(2));
  await assert.rejects(new RandomAgent().search(await toyEnv()), /needs a budget/);
});

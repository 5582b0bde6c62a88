import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Env, Info, StepResult } from '../envs/env.ts';
import { Box, Discrete } from '../envs/spaces.ts';
import { DQN } from '../agents/dqn/dqn.ts';

/** A long episode with no reward, recording every action; `forbid(t)` names an action illegal at step t. */
class CorridorEnv implements Env {
  readonly observationSpace = new Box(0, 1, 1);
  readonly actionSpace = new Discrete(3);
  readonly episodes: number[][] = [];
  private t = 0;
  constructor(private readonly length: number, private readonly forbid: (t: number) => number | undefined = () => undefined) {}
  actionMask(): boolean[] {
    const f = this.forbid(this.t);
    return [0, 1, 2].map((a) => a !== f);
  }
  reset(): [Float32Array, Info] {
    this.t = 0;
    this.episodes.push([]);
    return [new Float32Array([0]), { actionMask: this.actionMask() }];
  }
  async step(action: number): Promise<StepResult<Float32Array>> {
    assert.ok(this.actionMask()[action], `action ${action} is masked at step ${this.t}`);
    this.episodes.at(-1)!.push(action);
    this.t++;
    const done = this.t >= this.length;
    return [new Float32Array([this.t / this.length]), 0, done, false, { actionMask: this.actionMask() }];
  }
}

/** Mean length of the runs of equal consecutive actions. */
function meanRun(episodes: number[][]): number {
  let runs = 0;
  let steps = 0;
  for (const e of episodes) {
    steps += e.length;
    runs += e.filter((a, i) => i === 0 || a !== e[i - 1]).length;
  }
  return steps / runs;
}

const alwaysExplore = { explorationInitialEps: 1, explorationFinalEps: 1, learningStarts: 1e9, seed: 3 };

test('εz-greedy repeats a random action for a zeta-distributed number of steps; one-step epsilon-greedy does not', async () => {
  const oneStep = new CorridorEnv(200);
  await (await DQN.create(oneStep, { ...alwaysExplore, explorationDurationMu: 0 })).learn(oneStep, { totalTimesteps: 2000 });
  const extended = new CorridorEnv(200);
  await (await DQN.create(extended, { ...alwaysExplore, explorationDurationMu: 2 })).learn(extended, { totalTimesteps: 2000 });
  // Uniform over 3 actions: runs of 1.5 steps on average. A zeta(2) duration (mean ~3.5 when capped at 200 steps),
  // chained with the 1/3 chance that the next run draws the same action, gives runs several times longer.
  const plain = meanRun(oneStep.episodes);
  const zeta = meanRun(extended.episodes);
  assert.ok(plain > 1.3 && plain < 1.7, `one-step runs ${plain}`);
  assert.ok(zeta > 3, `εz-greedy runs ${zeta}`);
  // Both still explore every action.
  for (const env of [oneStep, extended]) assert.deepEqual(new Set(env.episodes.flat()), new Set([0, 1, 2]));
});

test('an exploration run ends where the mask forbids its action', async () => {
  // Action 2 is illegal at every third step: a run of 2s must break there (the env asserts it).
  const env = new CorridorEnv(100, (t) => (t % 3 === 2 ? 2 : undefined));
  await (await DQN.create(env, { ...alwaysExplore, explorationDurationMu: 1.5 })).learn(env, { totalTimesteps: 1000 });
  // Runs of 0 or 1 go on through those steps, runs of 2 cannot: 2 is rarer, but still explored where legal.
  const twos = env.episodes.flat().filter((a) => a === 2).length;
  assert.ok(twos >= 10, `action 2 explored where legal (${twos} times)`);
});

test('explorationDurationMu must be 0 or above 1', async () => {
  const env = new CorridorEnv(5);
  await assert.rejects(DQN.create(env, { explorationDurationMu: 1 }), /explorationDurationMu must be 0 \(off\) or > 1/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { PrecisionEnv } from '../envs/precision-env.ts';
import { smallToyProblem } from '../envs/toy/index.ts';
import { DQN } from '../agents/dqn/dqn.ts';

const problem = smallToyProblem();
const makeEnv = () => PrecisionEnv.create({ layers: problem.layers, evaluator: problem.evaluator, latency: problem.latency, maxDrop: 0.02 });
const small = { seed: 0, learningStarts: 16, batchSize: 16, trainFreq: 1, gradientSteps: 1, targetUpdateInterval: 50, policyKwargs: { netArch: [16] } };

test('tf.memory().numTensors does not grow over 1000 training steps', async () => {
  const env = await makeEnv();
  const agent = await DQN.create(env, small);
  // Warm-up: the first gradient step creates Adam's moment variables, which then persist.
  await agent.learn(env, { totalTimesteps: 40 });
  assert.ok(agent.nUpdates > 0);
  const tensors = tf.memory().numTensors;
  const updates = agent.nUpdates;
  await agent.learn(env, { totalTimesteps: 1000 });
  assert.equal(agent.nUpdates - updates, 1000, '1000 gradient steps (and 20 target updates) ran');
  for (let i = 0; i < 50; i++) agent.predict(env.reset()[0], { mask: env.actionMask() });
  assert.equal(tf.memory().numTensors, tensors);
  agent.dispose();
});

test('save + load round-trips the agent, and dispose releases every tensor it made', async () => {
  const baseline = tf.memory().numTensors;
  const env = await makeEnv();
  const agent = await DQN.create(env, small);
  await agent.learn(env, { totalTimesteps: 80 });
  const dir = await mkdtemp(join(tmpdir(), 'trtmix-dqn-'));
  try {
    await agent.save(dir);
    const loaded = await DQN.load(dir);
    const [obs] = env.reset();
    assert.deepEqual(Array.from(loaded.policy.qValues(obs)), Array.from(agent.policy.qValues(obs)));
    loaded.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  agent.dispose();
  assert.equal(tf.memory().numTensors, baseline);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { NStepCollector, ReplayBuffer } from '../agents/dqn/replay-buffer.ts';
import { linearSchedule } from '../agents/dqn/schedule.ts';
import { clipByGlobalNorm } from '../agents/dqn/q-network.ts';
import { initTfBackend } from '../agents/dqn/backend.ts';

const obs = (v: number): Float32Array => Float32Array.from([v, -v]);

test('ReplayBuffer keeps the last `capacity` transitions and samples reproducibly', () => {
  const rb = new ReplayBuffer(3, 2, 2);
  for (let i = 0; i < 5; i++) {
    rb.add({ obs: obs(i), action: i % 2, reward: i, nextObs: obs(i + 1), done: i === 4, nextMask: [true, i % 2 === 0], discount: 0.5 });
  }
  assert.equal(rb.size, 3);
  const a = rb.sample(64, seedrandom('s'));
  const b = rb.sample(64, seedrandom('s'));
  assert.deepEqual(a, b);
  assert.deepEqual([...new Set(a.rewards)].sort(), [2, 3, 4], 'only the three newest transitions remain');
  for (let k = 0; k < a.size; k++) {
    const r = a.rewards[k];
    assert.deepEqual(Array.from(a.obs.subarray(2 * k, 2 * k + 2)), [r, -r]);
    assert.deepEqual(Array.from(a.nextObs.subarray(2 * k, 2 * k + 2)), [r + 1, -(r + 1)]);
    assert.equal(a.actions[k], r % 2);
    assert.equal(a.dones[k], r === 4 ? 1 : 0);
    assert.deepEqual(Array.from(a.nextMasks.subarray(2 * k, 2 * k + 2)), [1, r % 2 === 0 ? 1 : 0]);
    assert.equal(a.discounts[k], 0.5);
  }
  assert.throws(() => new ReplayBuffer(3, 2, 2).sample(1, seedrandom('x')), /empty/);
});

test('NStepCollector sums n discounted rewards and flushes shorter returns at the end of an episode', () => {
  const c = new NStepCollector(2, 0.5);
  const m = [true];
  assert.deepEqual(c.push(obs(0), 0, 1, obs(1), false, m), []);
  const [t0] = c.push(obs(1), 0, 2, obs(2), false, m);
  assert.deepEqual([t0.obs[0], t0.reward, t0.nextObs[0], t0.done, t0.discount], [0, 1 + 0.5 * 2, 2, false, 0.25]);
  const [t1, t2] = c.push(obs(2), 0, 4, obs(3), true, m);
  assert.deepEqual([t1.obs[0], t1.reward, t1.nextObs[0], t1.done, t1.discount], [1, 2 + 0.5 * 4, 3, true, 0.25]);
  assert.deepEqual([t2.obs[0], t2.reward, t2.nextObs[0], t2.done, t2.discount], [2, 4, 3, true, 0.5]);
  assert.equal(c.push(obs(0), 0, 1, obs(1), false, m).length, 0, 'the queue is empty after a flush');
  assert.throws(() => new NStepCollector(0, 1), /nSteps/);
});

test('linearSchedule goes from start to end over endFraction of training, then stays', () => {
  const eps = linearSchedule(1, 0.1, 0.5);
  assert.equal(eps(1), 1);
  assert.ok(Math.abs(eps(0.75) - 0.55) < 1e-12);
  assert.ok(Math.abs(eps(0.5) - 0.1) < 1e-12);
  assert.equal(eps(0), 0.1);
});

test('clipByGlobalNorm rescales all gradients together only when their joint norm is too large', async () => {
  await initTfBackend();
  const before = tf.memory().numTensors;
  const g = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) }; // global norm 5
  const clipped = clipByGlobalNorm(g, 1);
  const a = await clipped.a.data();
  const b = await clipped.b.data();
  assert.ok(Math.abs(a[0] - 0.6) < 1e-5 && Math.abs(b[1] - 0.8) < 1e-5, `${a} ${b}`);
  const kept = clipByGlobalNorm(g, 10);
  assert.deepEqual(Array.from(await kept.a.data()), [3, 0]);
  tf.dispose([g.a, g.b, clipped.a, clipped.b, kept.a, kept.b]);
  assert.equal(tf.memory().numTensors, before);
});

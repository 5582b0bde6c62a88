import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Box, Discrete, legalActions } from '../envs/spaces.ts';

test('Discrete.sample draws only legal actions and repeats under the same seed', () => {
  const a = new Discrete(4, 7);
  const b = new Discrete(4, 7);
  const mask = [false, true, false, true];
  const draws = Array.from({ length: 200 }, () => a.sample(mask));
  assert.deepEqual(draws, Array.from({ length: 200 }, () => b.sample(mask)));
  assert.ok(draws.every((x) => x === 1 || x === 3));
  assert.ok(draws.includes(1) && draws.includes(3), 'both legal actions appear');
  assert.throws(() => a.sample([false, false, false, false]), /allows no action/);
  assert.throws(() => a.sample([true]), /mask has 1 entries/);
});

test('Discrete.contains accepts integers in [0, n) only', () => {
  const d = new Discrete(3);
  assert.ok(d.contains(0) && d.contains(2));
  for (const x of [3, -1, 0.5, '1', NaN]) assert.equal(d.contains(x), false, String(x));
  assert.throws(() => new Discrete(0), /n >= 1/);
});

test('legalActions lists the mask\'s true indices, or all actions without a mask', () => {
  assert.deepEqual(legalActions(3), [0, 1, 2]);
  assert.deepEqual(legalActions(3, [true, false, true]), [0, 2]);
});

test('Box.contains checks type, length, bounds and finiteness; sample stays inside', () => {
  const box = new Box([-1, 0], [1, 2]);
  assert.deepEqual(box.shape, [2]);
  assert.ok(box.contains(Float32Array.from([0, 2])));
  assert.equal(box.contains(Float32Array.from([0, 2.5])), false);
  assert.equal(box.contains(Float32Array.from([NaN, 1])), false);
  assert.equal(box.contains(Float32Array.from([0])), false);
  assert.equal(box.contains([0, 1]), false);
  for (let i = 0; i < 50; i++) assert.ok(box.contains(box.sample()));
  assert.throws(() => new Box([1], [0]), /low 1 > high 0/);
});

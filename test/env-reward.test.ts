import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accuracyChange,
  constraintViolations,
  isFeasible,
  precisionReward,
  trainingReward,
} from '../envs/reward.ts';

const close = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test('R = 0.6 dAcc - 0.4 dLat with the relative changes of DESIGN.md', () => {
  // 10 % accuracy lost, latency halved vs FP16: 0.6 * -0.1 - 0.4 * -0.5 = 0.14
  const r = precisionReward({ score: 0.72, fp32Score: 0.8, higherIsBetter: true, latencyMs: 5, fp16LatencyMs: 10 });
  close(r.dAcc, -0.1);
  close(r.dLat, -0.5);
  close(r.reward, 0.14);
  const w = precisionReward({ score: 0.72, fp32Score: 0.8, higherIsBetter: true, latencyMs: 5, fp16LatencyMs: 10 }, { wAcc: 1, wLat: 0 });
  close(w.reward, -0.1);
});

test('accuracy change is positive when a lower-is-better metric improves, and absolute when FP32 scores 0', () => {
  close(accuracyChange(0.5, 1, false), 0.5); // mse halved
  close(accuracyChange(2, 1, false), -1);
  close(accuracyChange(0.25, 0, false), -0.25); // mse vs the FP32 outputs themselves
  assert.throws(() => precisionReward({ score: 1, fp32Score: 1, higherIsBetter: true, latencyMs: 1, fp16LatencyMs: 0 }), /FP16 latency/);
});

test('constraints: a policy exactly at the budget or floor is feasible; beyond it reports the violation', () => {
  const c = { budgetMs: 10, maxDrop: 0.02 };
  assert.ok(isFeasible(constraintViolations(10, -0.02, c)));
  const v = constraintViolations(12, -0.05, c);
  close(v.latency, 0.2);
  close(v.accuracy, 0.03);
  assert.equal(isFeasible(v), false);
  assert.ok(isFeasible(constraintViolations(1e9, -1, { budgetMs: Infinity, maxDrop: Infinity })));
});

test('training reward equals R when feasible and pays a penalty plus the violation otherwise', () => {
  assert.equal(trainingReward(0.1, { latency: 0, accuracy: 0 }, 0.2), 0.1);
  close(trainingReward(0.1, { latency: 0.05, accuracy: 0.01 }, 0.2), 0.1 - 0.2 - 0.06);
});

/**
 * The search objective and its constraints, as pure functions (DESIGN.md, "Environment"):
 *   R = wAcc * dAcc - wLat * dLat,
 *   dAcc = (score - score_fp32) / score_fp32   (sign flipped for lower-is-better metrics),
 *   dLat = (latency - latency_fp16) / latency_fp16.
 */

export interface RewardWeights {
  wAcc: number;
  wLat: number;
}
export const DEFAULT_REWARD_WEIGHTS: RewardWeights = { wAcc: 0.6, wLat: 0.4 };

/**
 * Relative accuracy change against FP32, positive when the candidate is better. A lower-is-better metric
 * whose FP32 score is 0 (e.g. mse against the FP32 outputs themselves) has no relative scale, so the
 * change is taken absolute there rather than dividing by zero.
 */
export function accuracyChange(score: number, fp32Score: number, higherIsBetter: boolean): number {
  const diff = higherIsBetter ? score - fp32Score : fp32Score - score;
  const scale = Math.abs(fp32Score);
  return scale > 1e-12 ? diff / scale : diff;
}

export function latencyChange(latencyMs: number, fp16LatencyMs: number): number {
  if (!(fp16LatencyMs > 0)) throw new RangeError(`all-FP16 latency must be > 0 ms, got ${fp16LatencyMs}`);
  return (latencyMs - fp16LatencyMs) / fp16LatencyMs;
}

export interface RewardTerms {
  reward: number;
  dAcc: number;
  dLat: number;
}

export function precisionReward(
  m: { score: number; fp32Score: number; higherIsBetter: boolean; latencyMs: number; fp16LatencyMs: number },
  w: RewardWeights = DEFAULT_REWARD_WEIGHTS,
): RewardTerms {
  const dAcc = accuracyChange(m.score, m.fp32Score, m.higherIsBetter);
  const dLat = latencyChange(m.latencyMs, m.fp16LatencyMs);
  return { reward: w.wAcc * dAcc - w.wLat * dLat, dAcc, dLat };
}

export interface Constraints {
  /** Hard latency budget in ms; Infinity when none. */
  budgetMs: number;
  /** Largest allowed relative accuracy drop vs FP32 (0.01 = 1 %); Infinity when none. */
  maxDrop: number;
}
export const NO_CONSTRAINTS: Constraints = { budgetMs: Infinity, maxDrop: Infinity };

/** How far a policy breaks each constraint, as fractions (0 = satisfied). */
export interface Violations {
  /** latency / budget - 1, when over budget. */
  latency: number;
  /** accuracy drop - maxDrop, when under the floor. */
  accuracy: number;
}

/** Floating-point slack so a policy exactly at the floor or budget counts as feasible. */
const EPS = 1e-9;

export function constraintViolations(latencyMs: number, dAcc: number, c: Constraints): Violations {
  const latency = Number.isFinite(c.budgetMs) && latencyMs > c.budgetMs * (1 + EPS) ? latencyMs / c.budgetMs - 1 : 0;
  const drop = -dAcc;
  const accuracy = Number.isFinite(c.maxDrop) && drop > c.maxDrop + EPS ? drop - c.maxDrop : 0;
  return { latency, accuracy };
}

export function isFeasible(v: Violations): boolean {
  return v.latency === 0 && v.accuracy === 0;
}

/**
 * The reward the agent trains on: R itself for a feasible policy; for an infeasible one, R minus a fixed
 * penalty and the size of the violation, so that breaking a constraint never pays while the agent still
 * learns which infeasible policies are close.
 */
export function trainingReward(reward: number, v: Violations, infeasiblePenalty: number): number {
  return isFeasible(v) ? reward : reward - infeasiblePenalty - (v.latency + v.accuracy);
}

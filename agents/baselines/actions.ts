/** Small helpers the baselines share: mapping precisions to the environment's action indices. */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import type { Precision } from '../../src/policy.ts';
import { UserError } from '../../src/errors.ts';
import { actionLabel } from '../../envs/types.ts';

/** Index of the plain (default-calibration) action for a precision. */
export function actionOf(env: PrecisionEnv, precision: Precision, agent: string): number {
  const a = env.actions.findIndex((o) => o.precision === precision && !o.calibration);
  if (a < 0) {
    throw new UserError(`the ${agent} agent needs ${precision} in the action set (have ${env.actions.map(actionLabel).join(', ')})`);
  }
  return a;
}

/** Precision each layer may fall back to when `precision` is not allowed there: the first allowed action. */
export function uniformActions(env: PrecisionEnv, precision: Precision, agent: string): number[] {
  const a = actionOf(env, precision, agent);
  return env.layers.map((_, i) => (env.allowedActions(i).includes(a) ? a : env.allowedActions(i)[0]));
}

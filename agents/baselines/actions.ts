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

/**
 * All-INT8 under each calibration the action set offers (`int8` with the default calibration first, then each
 * `int8@<method>`), one action sequence per method. Calibration is the cheapest decisive choice of the search (it
 * changes no latency and can turn a collapse into a policy within the floor), so every agent measures these first.
 * A layer where that INT8 action is not allowed takes the uniform policy's fallback (its first allowed action).
 */
export function int8CalibrationStarts(env: PrecisionEnv): number[][] {
  const starts: number[][] = [];
  const seen = new Set<string>();
  env.actions.forEach((o, a) => {
    if (o.precision !== 'int8') return;
    const actions = env.layers.map((_, i) => (env.allowedActions(i).includes(a) ? a : env.allowedActions(i)[0]));
    const key = actions.join();
    if (!seen.has(key)) {
      seen.add(key);
      starts.push(actions);
    }
  });
  return starts;
}

/** The action index of INT8 under the calibration a start uses (the action of its first INT8 layer), or undefined. */
export function int8ActionOf(env: PrecisionEnv, actions: readonly number[]): number | undefined {
  return actions.find((a) => env.actions[a].precision === 'int8');
}

/**
 * Every policy, in lexicographic order of actions: the exact optimum, for small models only. Refuses
 * when the number of policies exceeds `maxPolicies`. Policies the latency model puts over budget are
 * priced but not scored (the environment skips them), which is exact: they can never be feasible.
 */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import { UserError } from '../../src/errors.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';

export const DEFAULT_MAX_POLICIES = 20_000;

export class ExhaustiveAgent implements SearchAgent {
  readonly name = 'exhaustive';
  constructor(readonly maxPolicies = DEFAULT_MAX_POLICIES) {}

  /** Number of policies the search would visit. */
  static spaceSize(env: PrecisionEnv): number {
    return env.layers.reduce((n, _, i) => n * env.allowedActions(i).length, 1);
  }

  async search(env: PrecisionEnv, budget?: SearchBudget): Promise<SearchResult> {
    const size = ExhaustiveAgent.spaceSize(env);
    if (size > this.maxPolicies) {
      throw new UserError(
        `exhaustive search would visit ${size} policies (limit ${this.maxPolicies}); use --agent dqn or knapsack, or a smaller action set`,
      );
    }
    const run = new SearchRun(env, this.name, budget);
    const choices = env.layers.map((_, i) => env.allowedActions(i));
    const digits = new Array<number>(choices.length).fill(0);
    for (let visited = 0; visited < size && !run.exhausted(); visited++) {
      await run.evaluate(env.policyFromActions(digits.map((d, i) => choices[i][d])));
      // Odometer increment, last layer fastest: consecutive policies share the longest prefix.
      for (let i = digits.length - 1; i >= 0; i--) {
        if (++digits[i] < choices[i].length) break;
        digits[i] = 0;
      }
    }
    if (run.exhausted()) run.notes.push('stopped by the budget before visiting every policy');
    return run.result();
  }
}

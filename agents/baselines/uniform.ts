/** The two reference points every comparison starts from: the whole model in one precision. */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import type { Precision } from '../../src/policy.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';
import { uniformActions } from './actions.ts';

export class UniformAgent implements SearchAgent {
  readonly name: string;
  constructor(readonly precision: Precision) {
    this.name = precision;
  }

  async search(env: PrecisionEnv, budget?: SearchBudget): Promise<SearchResult> {
    const run = new SearchRun(env, this.name, budget);
    const actions = uniformActions(env, this.precision, this.name);
    const r = await run.evaluate(env.policyFromActions(actions));
    if (!r.feasible) run.notes.push(`all-${this.precision} breaks the ${r.violations.latency > 0 ? 'latency budget' : 'accuracy floor'}`);
    return run.result();
  }
}

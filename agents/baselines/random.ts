/** Uniformly random legal actions, episode after episode: the floor any learning agent must beat. */
import seedrandom from 'seedrandom';
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import type { EvaluationRecord } from '../../envs/evaluation-ledger.ts';
import { legalActions } from '../../envs/spaces.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';

export class RandomAgent implements SearchAgent {
  readonly name = 'random';
  constructor(private readonly seed = 0) {}

  async search(env: PrecisionEnv, budget: SearchBudget = {}): Promise<SearchResult> {
    if (budget.episodes === undefined && budget.maxEvaluations === undefined && budget.timeLimitMs === undefined) {
      throw new RangeError('the random agent needs a budget: episodes, maxEvaluations or timeLimitMs');
    }
    const run = new SearchRun(env, this.name, budget);
    const rng = seedrandom(`random:${this.seed}`);
    for (let episode = 0; budget.episodes === undefined || episode < budget.episodes; episode++) {
      if (run.exhausted()) break;
      env.reset();
      for (;;) {
        const legal = legalActions(env.actionSpace.n, env.actionMask());
        const [, , terminated, truncated, info] = await env.step(legal[Math.floor(rng() * legal.length)]);
        if (terminated || truncated) {
          run.observe(info.record as EvaluationRecord);
          break;
        }
      }
    }
    return run.result();
  }
}

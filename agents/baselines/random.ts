/** Uniformly random legal actions, episode after episode: the floor any learning agent must beat. */
import seedrandom from 'seedrandom';
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import type { EvaluationRecord } from '../../envs/evaluation-ledger.ts';
import { legalActions } from '../../envs/spaces.ts';
import { PrecisionVectorEnv } from '../../envs/vector-env.ts';
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
    // Rounds of width() episodes side by side (one at a time by default): the draws per step go slot by slot.
    const venv = new PrecisionVectorEnv(env, Math.max(1, Math.floor(budget.proposals ?? 1)));
    for (let episode = 0; budget.episodes === undefined || episode < budget.episodes;) {
      if (run.exhausted()) break;
      const width = Math.min(run.width(), budget.episodes === undefined ? Infinity : budget.episodes - episode);
      const masks = Array.from({ length: venv.numEnvs }, (_, s) => (s < width ? (venv.resetAt(s)[1].actionMask as boolean[]) : undefined));
      for (let t = 0; t < env.layers.length; t++) {
        const actions = masks.map((mask) => {
          if (!mask) return undefined;
          const legal = legalActions(env.actionSpace.n, mask);
          return legal[Math.floor(rng() * legal.length)];
        });
        const results = await venv.step(actions);
        results.forEach((r, s) => {
          if (!r) return;
          masks[s] = r[4].actionMask as boolean[];
          if (r[2] || r[3]) run.observe(r[4].record as EvaluationRecord);
        });
      }
      episode += width;
    }
    return run.result();
  }
}

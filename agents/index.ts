/** The agents `--agent` can name, built from one options object. */
import { UserError } from '../src/errors.ts';
import type { SearchAgent } from './agent.ts';
import { BestCalibrationAgent } from './baselines/calibration.ts';
import { BisectAgent, type BisectOptions } from './baselines/bisect.ts';
import { ExhaustiveAgent } from './baselines/exhaustive.ts';
import { GreedyAgent, type GreedyOptions } from './baselines/greedy.ts';
import { KnapsackAgent, type KnapsackOptions } from './baselines/knapsack.ts';
import { RandomAgent } from './baselines/random.ts';
import { RulesAgent, type RulesOptions } from './baselines/rules.ts';
import { UniformAgent } from './baselines/uniform.ts';
import { DqnSearchAgent, type DqnSearchOptions } from './dqn/search.ts';

export type { SearchAgent, SearchBudget, SearchResult } from './agent.ts';

import { AGENT_NAMES, type AgentName } from './names.ts';
export { AGENT_NAMES, type AgentName } from './names.ts';

export interface AgentOptions {
  seed?: number;
  dqn?: DqnSearchOptions;
  greedy?: GreedyOptions;
  bisect?: BisectOptions;
  knapsack?: KnapsackOptions;
  rules?: RulesOptions;
  /** Largest space the exhaustive agent accepts. */
  maxExhaustivePolicies?: number;
}

export function createAgent(name: string, o: AgentOptions = {}): SearchAgent {
  switch (name as AgentName) {
    case 'dqn':
      return new DqnSearchAgent({ ...o.dqn, hyperparameters: { seed: o.seed ?? 0, ...o.dqn?.hyperparameters } });
    case 'greedy':
      return new GreedyAgent(o.greedy);
    case 'bisect':
      return new BisectAgent(o.bisect);
    case 'knapsack':
      return new KnapsackAgent(o.knapsack);
    case 'random':
      return new RandomAgent(o.seed ?? 0);
    case 'exhaustive':
      return new ExhaustiveAgent(o.maxExhaustivePolicies);
    case 'rules':
      return new RulesAgent(o.rules);
    case 'best-calibration':
      return new BestCalibrationAgent();
    case 'int8':
    case 'fp16':
      return new UniformAgent(name as 'int8' | 'fp16');
    default:
      throw new UserError(`unknown --agent "${name}"; choose one of ${AGENT_NAMES.join(', ')}`);
  }
}

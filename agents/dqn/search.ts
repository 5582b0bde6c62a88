/**
 * DQN as a search agent: learns in the PrecisionEnv within an episode / evaluation / time budget and
 * reports the best feasible policy measured along the way. The replay memory starts with the uniform
 * policies (all-FP16, all-INT8), whose rewards anchor the Q-values at the two ends of the trade-off,
 * and rewards are scaled so the small gaps between good policies are visible to the optimizer.
 */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import type { EvaluationRecord } from '../../envs/evaluation-ledger.ts';
import { ScaleReward } from '../../envs/wrappers.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';
import { DQN, type DQNHyperparameters, type EpisodeLog } from './dqn.ts';

export interface DqnSearchOptions {
  hyperparameters?: Partial<DQNHyperparameters>;
  /** Reward multiplier during training (see ScaleReward). Default 10. */
  rewardScale?: number;
  /** Episodes when the budget gives none. Default 2000. */
  episodes?: number;
  /** Extra policies (action sequences) to replay first, e.g. a greedy baseline's result. */
  demonstrations?: number[][];
  /** Directory to save the trained agent to. */
  saveTo?: string;
  onEpisode?: (log: EpisodeLog) => void;
}

export class DqnSearchAgent implements SearchAgent {
  readonly name = 'dqn';
  agent: DQN | undefined;
  constructor(private readonly opts: DqnSearchOptions = {}) {}

  async search(env: PrecisionEnv, budget: SearchBudget = {}): Promise<SearchResult> {
    const run = new SearchRun(env, this.name, budget);
    const agent = await DQN.create(env, this.opts.hyperparameters);
    this.agent = agent;
    const episodes = budget.episodes ?? this.opts.episodes ?? 2000;
    const demonstrations = [env.uniformActions('fp16'), env.uniformActions('int8'), ...(this.opts.demonstrations ?? [])].filter(
      (d): d is number[] => d !== undefined,
    );
    await agent.learn(new ScaleReward(env, this.opts.rewardScale ?? 10), {
      totalTimesteps: episodes * env.layers.length,
      maxEvaluations: budget.maxEvaluations,
      timeLimitMs: budget.timeLimitMs,
      demonstrations,
      callback: (log) => {
        const record = log.info.record as EvaluationRecord | undefined;
        if (record) run.observe(record);
        this.opts.onEpisode?.(log);
      },
    });
    run.notes.push(`${agent.episodes} episodes, ${agent.numTimesteps} steps`);
    if (this.opts.saveTo) await agent.save(this.opts.saveTo);
    return run.result();
  }

  dispose(): void {
    this.agent?.dispose();
  }
}

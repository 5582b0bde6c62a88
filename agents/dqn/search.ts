/**
 * DQN as a search agent: learns in the PrecisionEnv within an episode / evaluation / time budget and
 * reports the best feasible policy measured along the way. The replay memory starts with the uniform
 * policies (all-FP16, all-INT8 under each calibration of the action set), whose rewards anchor the Q-values at the two ends of the trade-off, and with
 * the additive model's best policies built from the analyzer's sensitivities (no evaluation to compute);
 * rewards are scaled so the small gaps between good policies are visible to the optimizer.
 */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import type { EvaluationRecord } from '../../envs/evaluation-ledger.ts';
import { ScaleReward } from '../../envs/wrappers.ts';
import { PrecisionVectorEnv } from '../../envs/vector-env.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';
import { DQN, type DQNHyperparameters, type EpisodeLog } from './dqn.ts';
import { solveAdditive } from '../baselines/knapsack.ts';
import { int8ActionOf, int8CalibrationStarts } from '../baselines/actions.ts';
import { actionLabel } from '../../envs/types.ts';

/**
 * Warm starts from the analyzer, at no evaluation cost: the best policies of the additive model (per-layer int8
 * drop from the sensitivity features, per-layer latency from the environment's table), as HAQ starts from a
 * heuristic. The agent measures them like any episode and learns from there; they are where the Q-values start,
 * not where the search ends.
 */
export function sensitivityDemonstrations(env: PrecisionEnv, count = 3, fallbacks = 3, int8Action?: number): number[][] {
  if (!env.sensitivity.some((f) => Number.isFinite(f.int8Drop))) return [];
  // The analyzer's drops are the default calibration's; the starts use the calibration measured most accurate.
  const recalibrate = (actions: number[]): number[] =>
    int8Action === undefined ? actions : actions.map((a, i) => (env.actions[a].precision === 'int8' && env.allowedActions(i).includes(int8Action) ? int8Action : a));
  // INC/NNCF's first guesses: all-INT8 with the k most sensitive layers back in FP16.
  // Allowed-aware: a layer where INT8 is not offered keeps its fallback, or the budget mask would skip the demonstration.
  const int8 = allowedUniform(env, 'int8');
  const fp16 = allowedUniform(env, 'fp16');
  const ranked = env.layers.map((_, i) => i).sort((a, b) => (env.sensitivity[b].int8Drop ?? 0) - (env.sensitivity[a].int8Drop ?? 0));
  const topK: number[][] = [];
  if (int8 && fp16) {
    for (let k = 1; k <= Math.min(fallbacks, env.layers.length - 1); k++) {
      const actions = [...int8];
      for (const i of ranked.slice(0, k)) actions[i] = fp16[i];
      topK.push(actions);
    }
  }
  const drop = env.layers.map((_, i) => env.actions.map((o) => (o.precision === 'int8' || o.precision === 'mixed' ? Math.max(0, env.sensitivity[i].int8Drop ?? 0) : 0)));
  const allowed = env.layers.map((_, i) => env.actions.map((_, a) => env.allowedActions(i).includes(a)));
  const table = env.latencyTable;
  return solveAdditive({
    latencyMs: table.layerMs, drop, allowed, baseMs: table.otherMs, baseDrop: 0, fp16LatencyMs: env.fp16LatencyMs,
    budgetMs: env.constraints.budgetMs, maxDrop: env.constraints.maxDrop, wAcc: env.weights.wAcc, wLat: env.weights.wLat,
  }, count).map((sol) => recalibrate(sol.actions)).concat(topK.map(recalibrate));
}

/** A uniform policy's actions with each layer where that action is not allowed at its first allowed action. */
function allowedUniform(env: PrecisionEnv, precision: 'int8' | 'fp16'): number[] | undefined {
  const a = env.uniformActions(precision)?.[0];
  if (a === undefined) return undefined;
  return env.layers.map((_, i) => (env.allowedActions(i).includes(a) ? a : env.allowedActions(i)[0]));
}

/**
 * The DQN's first episodes, in order: all-FP16, all-INT8 under each calibration of the action set (the cheap,
 * decisive choice: it changes no latency and can turn a collapse into a policy within the floor), then the
 * analyzer's warm starts and any extra demonstrations.
 */
export function warmStarts(env: PrecisionEnv, extra: readonly number[][] = [], int8Action?: number): number[][] {
  const fp16 = allowedUniform(env, 'fp16');
  return [...(fp16 ? [fp16] : []), ...int8CalibrationStarts(env), ...sensitivityDemonstrations(env, 3, 3, int8Action), ...extra];
}

/**
 * Measures all-FP16 and all-INT8 under each calibration before learning (the episodes that replay them are cache
 * hits) and returns the INT8 action of the most accurate calibration, so that the analyzer's warm starts use it.
 */
async function measureCalibrations(env: PrecisionEnv, run: SearchRun): Promise<number | undefined> {
  const starts = int8CalibrationStarts(env);
  if (starts.length < 2) return undefined;
  const fp16 = allowedUniform(env, 'fp16');
  if (fp16) await run.evaluate(env.policyFromActions(fp16));
  const records = await run.evaluateAll(starts.map((actions) => env.policyFromActions(actions)), { evenOverBudget: true, whateverTheBudget: true });
  let best: number | undefined;
  let bestAcc = -Infinity;
  records.forEach((r, i) => {
    if (Number.isFinite(r.dAcc) && r.dAcc > bestAcc) {
      bestAcc = r.dAcc;
      best = int8ActionOf(env, starts[i]);
    }
  });
  return best;
}

/**
 * Exploration scaled to the number of layers: epsilon is per step, so with 51 layers an epsilon of 0.5 rewrites
 * 25 layers of every episode (mostly into policies full of reformats). Starting near 4 random choices per
 * episode and ending near one makes exploration a search around what the Q-function already prefers.
 * Each random choice starts a run of layers in the same precision (εz-greedy, zeta exponent 2, Dabney et al.'s
 * default): a block moved to FP16 or INT8 together, which single-layer flips reach only through policies
 * full of reformats.
 */
export function layerScaledExploration(layers: number): Pick<DQNHyperparameters, 'explorationInitialEps' | 'explorationFinalEps' | 'explorationDurationMu'> {
  return { explorationInitialEps: Math.min(1, 4 / layers), explorationFinalEps: Math.min(0.1, 1 / layers), explorationDurationMu: 2 };
}

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
    const agent = await DQN.create(env, { ...layerScaledExploration(env.layers.length), ...this.opts.hyperparameters });
    this.agent = agent;
    const episodes = budget.episodes ?? this.opts.episodes ?? 2000;
    const int8Action = await measureCalibrations(env, run);
    if (int8Action !== undefined) run.notes.push(`warm starts under ${actionLabel(env.actions[int8Action])}, the most accurate calibration of all-INT8`);
    const demonstrations = warmStarts(env, this.opts.demonstrations ?? [], int8Action);
    const learnOptions = {
      totalTimesteps: episodes * env.layers.length,
      // The calibrations measured above are part of the budget.
      maxEvaluations: budget.maxEvaluations === undefined ? undefined : Math.max(0, budget.maxEvaluations - run.evaluations),
      timeLimitMs: budget.timeLimitMs,
      demonstrations,
      callback: (log: EpisodeLog) => {
        const record = log.info.record as EvaluationRecord | undefined;
        if (record) run.observe(record);
        this.opts.onEpisode?.(log);
      },
    };
    const proposals = Math.max(1, Math.floor(budget.proposals ?? 1));
    const scale = this.opts.rewardScale ?? 10;
    // K episodes in flight, measured as one round each (--proposals); one at a time, the plain Gymnasium loop.
    if (proposals > 1) await agent.learnVector(new PrecisionVectorEnv(env, proposals, scale), learnOptions);
    else await agent.learn(new ScaleReward(env, scale), learnOptions);
    if (proposals > 1) run.notes.push(`${proposals} episodes per round`);
    run.notes.push(`${agent.episodes} episodes, ${agent.numTimesteps} steps`);
    if (this.opts.saveTo) await agent.save(this.opts.saveTo);
    return run.result();
  }

  dispose(): void {
    this.agent?.dispose();
  }
}

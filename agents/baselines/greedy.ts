/**
 * Accuracy-aware fallback, as Intel Neural Compressor and NNCF's accuracy control do it: start with
 * every layer in INT8; while the accuracy floor is broken, return the most sensitive remaining layer to
 * FP16 and re-evaluate. Sensitivity comes from the analyzer when it measured it (feature `int8Drop`),
 * otherwise from one evaluation per layer: all-INT8 with only that layer in FP16 (the larger the score,
 * the more that layer's INT8 costs). A fallback that would break the latency budget is skipped.
 */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';
import { actionOf, uniformActions } from './actions.ts';

export interface GreedyOptions {
  /** Analyzer feature giving a layer's accuracy drop in INT8 (larger = more sensitive). */
  sensitivityKey?: string;
}

export class GreedyAgent implements SearchAgent {
  readonly name = 'greedy';
  constructor(private readonly opts: GreedyOptions = {}) {}

  async search(env: PrecisionEnv, budget?: SearchBudget): Promise<SearchResult> {
    const run = new SearchRun(env, this.name, budget);
    const fp16 = actionOf(env, 'fp16', this.name);
    const int8 = uniformActions(env, 'int8', this.name);
    const actions = [...int8];
    let current = await run.evaluate(env.policyFromActions(actions));
    const floorHolds = (): boolean => current.scored && current.violations.accuracy === 0;
    if (floorHolds()) return run.result();

    const candidates = env.layers.map((_, i) => i).filter((i) => actions[i] !== fp16 && env.allowedActions(i).includes(fp16));
    const order = await this.rank(env, run, actions, candidates, fp16);
    for (const i of order) {
      if (floorHolds() || run.exhausted()) break;
      actions[i] = fp16;
      const trial = await run.evaluate(env.policyFromActions(actions));
      if (trial.violations.latency > 0) {
        // This fallback costs more latency than the budget leaves: keep the layer in int8, try the next.
        actions[i] = int8[i];
        run.notes.push(`kept ${env.layerNames[i]} in int8: its fallback breaks the latency budget`);
        continue;
      }
      current = trial;
    }
    if (!floorHolds()) run.notes.push('the accuracy floor was not reached');
    return run.result();
  }

  private async rank(env: PrecisionEnv, run: SearchRun, base: number[], candidates: number[], fp16: number): Promise<number[]> {
    const key = this.opts.sensitivityKey ?? 'int8Drop';
    if (candidates.every((i) => Number.isFinite(env.sensitivity[i][key]))) {
      run.notes.push(`ranked by the analyzer's ${key}`);
      return [...candidates].sort((a, b) => env.sensitivity[b][key] - env.sensitivity[a][key] || a - b);
    }
    const gain = new Map<number, number>();
    for (const i of candidates) {
      if (run.exhausted()) break;
      const trial = [...base];
      trial[i] = fp16;
      // A probe measures sensitivity, so it is scored even where it breaks the budget.
      const r = await run.evaluate(env.policyFromActions(trial), { evenOverBudget: true });
      gain.set(i, r.dAcc);
    }
    run.notes.push('ranked by measured fallback gain (one evaluation per layer)');
    return [...candidates].sort((a, b) => (gain.get(b) ?? -Infinity) - (gain.get(a) ?? -Infinity) || a - b);
  }
}

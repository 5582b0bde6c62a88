/**
 * The source method's rule of thumb: a layer whose activation histograms (FP32 vs INT8) overlap less
 * than 0.7, or whose KL divergence exceeds 0.3, runs in FP16; every other layer in INT8. One
 * evaluation, using the analyzer's per-layer features.
 */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import { UserError } from '../../src/errors.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';
import { actionOf } from './actions.ts';

export interface RulesOptions {
  overlapKey?: string;
  klKey?: string;
  minOverlap?: number;
  maxKl?: number;
}

export class RulesAgent implements SearchAgent {
  readonly name = 'rules';
  private readonly o: Required<RulesOptions>;
  constructor(opts: RulesOptions = {}) {
    this.o = { overlapKey: 'histogramOverlap', klKey: 'kl', minOverlap: 0.7, maxKl: 0.3, ...opts };
  }

  /** Per layer: true where the rule keeps the layer in FP16. */
  decide(features: readonly Record<string, number>[]): boolean[] {
    const { overlapKey, klKey, minOverlap, maxKl } = this.o;
    return features.map((f) => {
      const overlap = f[overlapKey];
      const kl = f[klKey];
      if (overlap === undefined && kl === undefined) return false;
      return (overlap !== undefined && overlap < minOverlap) || (kl !== undefined && kl > maxKl);
    });
  }

  async search(env: PrecisionEnv, budget?: SearchBudget): Promise<SearchResult> {
    const { overlapKey, klKey } = this.o;
    if (!env.sensitivity.some((f) => f[overlapKey] !== undefined || f[klKey] !== undefined)) {
      throw new UserError(`the rules agent needs the analyzer's per-layer ${overlapKey} and ${klKey}: run \`trtmix analyze\` first or pick another --agent`);
    }
    const run = new SearchRun(env, this.name, budget);
    const int8 = actionOf(env, 'int8', this.name);
    const fp16 = actionOf(env, 'fp16', this.name);
    const keep = this.decide(env.sensitivity);
    const r = await run.evaluate(env.policyFromActions(keep.map((k) => (k ? fp16 : int8))));
    run.notes.push(`${keep.filter(Boolean).length} of ${keep.length} layers kept in fp16 by the overlap/KL rule`);
    if (!r.feasible) run.notes.push('the rule-based policy is not feasible');
    return run.result();
  }
}

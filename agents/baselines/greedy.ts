/**
 * Accuracy-aware fallback, as Intel Neural Compressor and NNCF's accuracy control do it: start with
 * every layer in INT8; while the accuracy floor is broken, return the most sensitive remaining layer to
 * FP16 and re-evaluate. Sensitivity comes from the analyzer when it measured it (feature `int8Drop`),
 * otherwise from one evaluation per layer: all-INT8 with only that layer in FP16 (the larger the score,
 * the more that layer's INT8 costs). A fallback that would break the latency budget is skipped.
 *
 * Calibration first: all-INT8 is measured under each calibration of the action set and the fallback starts from
 * the most accurate one. Once the floor holds, the budget left is spent on the next-best moves: each FP16 layer,
 * least sensitive first, back to INT8 (kept where the policy stays feasible and its reward improves), then each INT8
 * layer under the other calibrations. When no move is left, the run says so in its notes.
 */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import type { EvaluationRecord } from '../../envs/evaluation-ledger.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';
import { actionOf } from './actions.ts';
import { measureCalibrationStarts } from './calibration.ts';

export interface GreedyOptions {
  /** Analyzer feature giving a layer's accuracy drop in INT8 (larger = more sensitive). */
  sensitivityKey?: string;
  /** Spend the evaluation budget left (--max-evaluations) once the floor holds on next-best moves (default true). */
  refine?: boolean;
}

/** Why an agent stopped with evaluations left, for its notes (undefined when the budget was spent or there is none). */
export function stopNote(run: SearchRun, why: string): string | undefined {
  const max = run.budget.maxEvaluations;
  if (max === undefined || run.evaluations >= max || run.exhausted()) return undefined;
  return `stopped after ${run.evaluations} of ${max} evaluations: ${why}`;
}

export class GreedyAgent implements SearchAgent {
  readonly name = 'greedy';
  constructor(private readonly opts: GreedyOptions = {}) {}

  async search(env: PrecisionEnv, budget?: SearchBudget): Promise<SearchResult> {
    const run = new SearchRun(env, this.name, budget);
    const fp16 = actionOf(env, 'fp16', this.name);
    const starts = await measureCalibrationStarts(env, run);
    const start = starts[0];
    run.notes.push(`started from all-INT8 under ${start.label} (the most accurate of ${starts.map((s) => s.label).join(', ')})`);
    const int8 = [...start.actions];
    const actions = [...int8];
    let current: EvaluationRecord = start.record;
    const floorHolds = (): boolean => current.scored && current.violations.accuracy === 0;

    const candidates = env.layers.map((_, i) => i).filter((i) => actions[i] !== fp16 && env.allowedActions(i).includes(fp16));
    let order: number[] = [];
    if (!floorHolds()) {
      order = await this.rank(env, run, actions, candidates, fp16);
      // Rounds of width() fallbacks, each on top of the one before (speculative: a round proposes the next layers'
      // fallbacks as if each were kept); consumed in order, as one at a time would, up to where the chain breaks.
      let next = 0;
      while (next < order.length && !floorHolds() && !run.exhausted()) {
        const chain: number[][] = [];
        const trial = [...actions];
        for (let j = next; j < order.length && chain.length < run.width(); j++) {
          trial[order[j]] = fp16;
          chain.push([...trial]);
        }
        const records = await run.evaluateMany(chain.map((a) => env.policyFromActions(a)));
        for (const r of records) {
          const i = order[next++];
          actions[i] = fp16;
          if (r.violations.latency > 0) {
            // This fallback costs more latency than the budget leaves: keep the layer in int8, try the next.
            actions[i] = int8[i];
            run.notes.push(`kept ${env.layerNames[i]} in int8: its fallback breaks the latency budget`);
            break;
          }
          current = r;
          if (floorHolds()) break;
        }
      }
    }
    if (!floorHolds()) {
      run.notes.push('the accuracy floor was not reached');
      const note = stopNote(run, 'every layer INT8 could leave was tried');
      if (note) run.notes.push(note);
      return run.result();
    }
    // Only a given evaluation budget is spent on refinement; without one, greedy ends where the floor first holds.
    if (this.opts.refine === false || run.budget.maxEvaluations === undefined) return run.result();
    await this.refine(env, run, actions, current, order, fp16);
    return run.result();
  }

  /**
   * Next-best moves from a feasible policy: each FP16 layer back to INT8 (least sensitive first: the reverse of the
   * fallback order), then each INT8 layer under each other INT8 calibration; a move is kept when the policy stays
   * feasible with a higher reward. Screened moves count as kept only once confirmed on the full data.
   */
  private async refine(env: PrecisionEnv, run: SearchRun, actions: number[], current: EvaluationRecord, order: number[], fp16: number): Promise<void> {
    const int8Actions = env.actions.flatMap((o, a) => (o.precision === 'int8' ? [a] : []));
    const better = (r: EvaluationRecord): boolean => r.confirmed && r.feasible && r.reward > current.reward + 1e-12;
    const fallenBack = [...order].reverse().filter((i) => actions[i] === fp16);
    const moves: Array<[number, number]> = [];
    for (const i of fallenBack) for (const a of int8Actions) if (env.allowedActions(i).includes(a)) moves.push([i, a]);
    for (let i = 0; i < actions.length; i++) {
      if (env.actions[actions[i]].precision !== 'int8') continue;
      for (const a of int8Actions) if (a !== actions[i] && env.allowedActions(i).includes(a)) moves.push([i, a]);
    }
    let kept = 0;
    let tried = 0;
    // Rounds of width() moves from the current policy, consumed in order; a kept move makes the round's later
    // moves stale (they were built on the policy before it), so the next round starts after it.
    let m = 0;
    while (m < moves.length && !run.exhausted()) {
      const round: { i: number; a: number; at: number; trial: number[] }[] = [];
      let j = m;
      for (; j < moves.length && round.length < run.width(); j++) {
        const [i, a] = moves[j];
        if (actions[i] === a) continue;
        const trial = [...actions];
        trial[i] = a;
        round.push({ i, a, at: j, trial });
      }
      m = j;
      if (round.length === 0) break;
      const records = await run.evaluateMany(round.map((x) => env.policyFromActions(x.trial)));
      for (const [n, r] of records.entries()) {
        tried++;
        if (better(r)) {
          actions[round[n].i] = round[n].a;
          current = r;
          kept++;
          m = round[n].at + 1;
          break;
        }
      }
    }
    run.notes.push(`refined the feasible policy: ${kept} of ${tried} next-best moves kept`);
    const note = stopNote(run, `no next-best move left (${moves.length} tried or cached)`);
    if (note) run.notes.push(note);
  }

  private async rank(env: PrecisionEnv, run: SearchRun, base: number[], candidates: number[], fp16: number): Promise<number[]> {
    const key = this.opts.sensitivityKey ?? 'int8Drop';
    if (candidates.every((i) => Number.isFinite(env.sensitivity[i][key]))) {
      run.notes.push(`ranked by the analyzer's ${key}`);
      return [...candidates].sort((a, b) => env.sensitivity[b][key] - env.sensitivity[a][key] || a - b);
    }
    const gain = new Map<number, number>();
    const probes = candidates.map((i) => {
      const trial = [...base];
      trial[i] = fp16;
      return env.policyFromActions(trial);
    });
    // A probe measures sensitivity, so it is scored even where it breaks the budget.
    const records = await run.evaluateAll(probes, { evenOverBudget: true });
    records.forEach((r, n) => gain.set(candidates[n], r.dAcc));
    run.notes.push('ranked by measured fallback gain (one evaluation per layer)');
    return [...candidates].sort((a, b) => (gain.get(b) ?? -Infinity) - (gain.get(a) ?? -Infinity) || a - b);
  }
}

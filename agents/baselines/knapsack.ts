/**
 * The additive model's exact optimum, as HAWQ-V3 (ILP) and ModelOpt's auto_quantize (per-layer scores
 * under a cost constraint) solve it. Each layer's action has a measured accuracy cost (relative drop
 * when only that layer leaves FP16) and a latency (the environment's per-layer table); the model
 * assumes both add up. A dynamic program over latency finds, for every latency, the least total drop;
 * the policies with the highest predicted reward that meet the budget and the floor are then measured
 * for real, because the true score and latency are not additive.
 */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';
import { actionOf } from './actions.ts';
import { measureCalibrationStarts } from './calibration.ts';
import { stopNote } from './greedy.ts';

export interface AdditiveProblem {
  /** [layer][action] latency in ms. */
  latencyMs: number[][];
  /** [layer][action] relative accuracy drop (0 = none). */
  drop: number[][];
  allowed: boolean[][];
  /** Latency outside the layers, and drop common to every policy. */
  baseMs: number;
  baseDrop: number;
  fp16LatencyMs: number;
  budgetMs: number;
  maxDrop: number;
  wAcc: number;
  wLat: number;
}

export interface AdditiveSolution {
  actions: number[];
  latencyMs: number;
  drop: number;
  /** Predicted R = -wAcc * drop - wLat * dLat. */
  reward: number;
}

/**
 * Best `topK` distinct solutions of the additive problem by predicted reward, among those within the
 * budget and the floor. Latency is bucketed at `resolutionMs`; inside one bucket only the least-drop
 * solution survives, so the optimum is exact up to wLat * resolutionMs / fp16LatencyMs in reward.
 */
export function solveAdditive(p: AdditiveProblem, topK = 1, resolutionMs = p.fp16LatencyMs * 1e-4): AdditiveSolution[] {
  const L = p.latencyMs.length;
  // Latency is bucketed upward so a solution the DP thinks fits really fits.
  const q = (ms: number): number => Math.ceil(ms / resolutionMs - 1e-9);
  const maxBucket = p.latencyMs.reduce((s, row, i) => s + Math.max(...row.map((ms, a) => (p.allowed[i][a] ? q(ms) : 0))), 0);
  // dp[b] = least drop with bucketed latency exactly b; choice[i][b] = action of layer i on that path.
  let dp = new Float64Array(maxBucket + 1).fill(Infinity);
  dp[0] = 0;
  const choice: Int16Array[] = [];
  for (let i = 0; i < L; i++) {
    const next = new Float64Array(maxBucket + 1).fill(Infinity);
    const pick = new Int16Array(maxBucket + 1).fill(-1);
    for (let b = 0; b <= maxBucket; b++) {
      if (dp[b] === Infinity) continue;
      for (let a = 0; a < p.latencyMs[i].length; a++) {
        if (!p.allowed[i][a]) continue;
        const nb = b + q(p.latencyMs[i][a]);
        const d = dp[b] + p.drop[i][a];
        if (d < next[nb]) {
          next[nb] = d;
          pick[nb] = a;
        }
      }
    }
    choice.push(pick);
    dp = next;
  }
  const solutions: AdditiveSolution[] = [];
  for (let b = 0; b <= maxBucket; b++) {
    if (dp[b] === Infinity) continue;
    const actions = new Array<number>(L);
    let bb = b;
    let latencyMs = p.baseMs;
    for (let i = L - 1; i >= 0; i--) {
      const a = choice[i][bb];
      actions[i] = a;
      latencyMs += p.latencyMs[i][a];
      bb -= q(p.latencyMs[i][a]);
    }
    const drop = p.baseDrop + dp[b];
    if (latencyMs > p.budgetMs * (1 + 1e-9) || drop > p.maxDrop + 1e-9) continue;
    const reward = -p.wAcc * drop - p.wLat * ((latencyMs - p.fp16LatencyMs) / p.fp16LatencyMs);
    solutions.push({ actions, latencyMs, drop, reward });
  }
  solutions.sort((x, y) => y.reward - x.reward || x.latencyMs - y.latencyMs);
  const seen = new Set<string>();
  return solutions.filter((s) => !seen.has(s.actions.join()) && seen.add(s.actions.join())).slice(0, topK);
}

export interface KnapsackOptions {
  /** Measured candidates: the best K solutions of the additive model. Default 5. */
  topK?: number;
  /** Take per-layer drops from analyzer features instead of measuring, e.g. { int8: 'int8Drop', mixed: 'mixedDrop' }. */
  dropFeatures?: Record<string, string>;
}

export class KnapsackAgent implements SearchAgent {
  readonly name = 'knapsack';
  constructor(private readonly opts: KnapsackOptions = {}) {}

  async search(env: PrecisionEnv, budget?: SearchBudget): Promise<SearchResult> {
    const run = new SearchRun(env, this.name, budget);
    const fp16 = actionOf(env, 'fp16', this.name);
    const L = env.layers.length;
    const allowed = env.layers.map((_, i) => env.actions.map((_, a) => env.allowedActions(i).includes(a)));
    const drop: number[][] = env.layers.map(() => env.actions.map(() => 0));
    // Sensitivities are measured against all-FP16, the policy every single-layer change starts from.
    const allFp16 = env.layers.map((_, i) => (allowed[i][fp16] ? fp16 : env.allowedActions(i)[0]));
    // Probes measure sensitivity, so they are scored even where they break the budget.
    const ref = await run.evaluate(env.policyFromActions(allFp16), { evenOverBudget: true });
    const baseDrop = -ref.dAcc;
    // Calibration first: all-INT8 under each calibration of the action set, measured for real (the additive model
    // cannot tell calibrations apart where its drops come from one analyzer feature).
    const starts = await measureCalibrationStarts(env, run);
    const bestInt8 = starts[0] ? starts[0].actions.find((a) => env.actions[a].precision === 'int8') : undefined;
    const probes: Array<[number, number]> = [];
    for (let i = 0; i < L; i++) {
      for (let a = 0; a < env.actions.length; a++) {
        if (!allowed[i][a] || a === allFp16[i]) continue;
        const feature = this.opts.dropFeatures?.[env.actions[a].precision];
        const fromFeature = feature !== undefined ? env.sensitivity[i][feature] : undefined;
        if (fromFeature !== undefined && Number.isFinite(fromFeature)) drop[i][a] = fromFeature;
        else probes.push([i, a]);
      }
    }
    const probeRecords = await run.evaluateAll(probes.map(([i, a]) => {
      const trial = [...allFp16];
      trial[i] = a;
      return env.policyFromActions(trial);
    }), { evenOverBudget: true });
    probes.forEach(([i, a], n) => {
      // A probe the budget left unmeasured takes its action out of the model.
      if (n < probeRecords.length) drop[i][a] = -probeRecords[n].dAcc - baseDrop;
      else allowed[i][a] = false;
    });
    const table = env.latencyTable;
    const solutions = solveAdditive(
      {
        latencyMs: table.layerMs,
        drop,
        allowed,
        baseMs: table.otherMs,
        baseDrop,
        fp16LatencyMs: env.fp16LatencyMs,
        budgetMs: env.constraints.budgetMs,
        maxDrop: env.constraints.maxDrop,
        wAcc: env.weights.wAcc,
        wLat: env.weights.wLat,
      },
      // More than the measured K: with an evaluation budget, the budget left goes to the next solutions in order.
      budget?.maxEvaluations !== undefined ? Math.max(this.opts.topK ?? 5, 4 * budget.maxEvaluations) : (this.opts.topK ?? 5),
    );
    if (solutions.length === 0) run.notes.push('the additive model has no policy within the budget and the floor');
    const topK = this.opts.topK ?? 5;
    // In order: each solution, then the same with its INT8 layers under the most accurate calibration where that is
    // another action; measured in rounds until the budget is spent.
    const queue: { policy: ReturnType<PrecisionEnv['policyFromActions']>; solution: boolean }[] = [];
    for (const [n, s] of solutions.entries()) {
      if (n >= topK && budget?.maxEvaluations === undefined) break;
      queue.push({ policy: env.policyFromActions(s.actions), solution: true });
      if (bestInt8 !== undefined) {
        const swapped = s.actions.map((a, i) => (env.actions[a].precision === 'int8' && env.allowedActions(i).includes(bestInt8) ? bestInt8 : a));
        if (swapped.some((a, i) => a !== s.actions[i])) queue.push({ policy: env.policyFromActions(swapped), solution: false });
      }
    }
    const done = await run.evaluateAll(queue.map((q) => q.policy));
    const measured = queue.slice(0, done.length).filter((q) => q.solution).length;
    run.notes.push(`measured the additive model's best ${measured} solution(s)${bestInt8 !== undefined ? ` (and each under ${starts[0].label})` : ''}`);
    const note = stopNote(run, `the additive model has no more distinct solutions (${solutions.length})`);
    if (note) run.notes.push(note);
    return run.result();
  }
}

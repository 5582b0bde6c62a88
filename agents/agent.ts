/**
 * What every search agent (DQN and the baselines) offers the command line: run in a PrecisionEnv
 * within a budget, and report the best feasible policy it found and what that cost. All agents measure
 * policies through the same environment, so evaluations and cache hits are counted one way for all.
 */
import type { PrecisionEnv } from '../envs/precision-env.ts';
import type { EvaluationRecord } from '../envs/evaluation-ledger.ts';
import { isBetter } from '../envs/evaluation-ledger.ts';
import type { LayerPolicy } from '../src/policy.ts';

export interface SearchBudget {
  /** Stop once the environment has run this many full evaluations during this search. */
  maxEvaluations?: number;
  /** Episodes (complete policies proposed) for agents that step the environment (dqn, random). */
  episodes?: number;
  /** Wall time limit (makes the result machine-dependent). */
  timeLimitMs?: number;
  /**
   * Policies proposed per round (the vector env's width, `--proposals`): their evaluations run at once on the
   * workers, their results are consumed in proposal order. Part of what decides the result; default 1.
   */
  proposals?: number;
}

export interface SearchResult {
  agent: string;
  /** Best feasible policy this agent measured on the full data (undefined if none was feasible). */
  best?: EvaluationRecord;
  /** Full evaluations and cache hits this search caused. */
  evaluations: number;
  subsetEvaluations: number;
  cacheHits: number;
  /** Distinct policies this agent asked about. */
  policies: number;
  seconds: number;
  notes: string[];
}

export interface SearchAgent {
  readonly name: string;
  search(env: PrecisionEnv, budget?: SearchBudget): Promise<SearchResult>;
}

/** Counts what one agent's run costs and keeps the best feasible record among those it asked for. */
export class SearchRun {
  readonly notes: string[] = [];
  private readonly start: { evaluations: number; subsetEvaluations: number; cacheHits: number };
  private readonly started = performance.now();
  private readonly seen = new Set<string>();
  private best: EvaluationRecord | undefined;

  constructor(
    readonly env: PrecisionEnv,
    readonly agent: string,
    readonly budget: SearchBudget = {},
  ) {
    const s = env.stats;
    this.start = { evaluations: s.evaluations, subsetEvaluations: s.subsetEvaluations, cacheHits: s.cacheHits };
  }

  /** Full evaluations spent so far by this run. */
  get evaluations(): number {
    return this.env.stats.evaluations - this.start.evaluations;
  }

  /** True once the evaluation or time budget is used up. */
  exhausted(): boolean {
    const b = this.budget;
    if (b.maxEvaluations !== undefined && this.evaluations >= b.maxEvaluations) return true;
    if (b.timeLimitMs !== undefined && performance.now() - this.started >= b.timeLimitMs) return true;
    return false;
  }

  async evaluate(policy: LayerPolicy, opts?: { evenOverBudget?: boolean }): Promise<EvaluationRecord> {
    const r = await this.env.evaluatePolicy(policy, opts);
    this.observe(r);
    return r;
  }

  /** Proposals per round: the budget's `proposals`, never more than the evaluations left (so a round cannot overspend). */
  width(): number {
    const k = Math.max(1, Math.floor(this.budget.proposals ?? 1));
    const max = this.budget.maxEvaluations;
    return max === undefined ? k : Math.max(1, Math.min(k, max - this.evaluations));
  }

  /** One round: the policies measured together (env.evaluateRound), records in proposal order. */
  async evaluateMany(policies: readonly LayerPolicy[], opts?: { evenOverBudget?: boolean }): Promise<EvaluationRecord[]> {
    const rs = await this.env.evaluateRound(policies, opts);
    for (const r of rs) this.observe(r);
    return rs;
  }

  /**
   * Independent probes in rounds of width(): measured in order, stopping before a round once the budget is spent
   * (the first round always runs when `atLeastOne`; every round with `whateverTheBudget`). Returns the records of the
   * probes measured, in order.
   */
  async evaluateAll(policies: readonly LayerPolicy[], opts: { evenOverBudget?: boolean; atLeastOne?: boolean; whateverTheBudget?: boolean } = {}): Promise<EvaluationRecord[]> {
    const out: EvaluationRecord[] = [];
    for (let i = 0; i < policies.length;) {
      if (!opts.whateverTheBudget && this.exhausted() && !(opts.atLeastOne && out.length === 0)) break;
      const chunk = policies.slice(i, i + this.width());
      out.push(...(await this.evaluateMany(chunk, { evenOverBudget: opts.evenOverBudget })));
      i += chunk.length;
    }
    return out;
  }

  /** Records a measurement the agent obtained by stepping the environment. */
  observe(r: EvaluationRecord): void {
    this.seen.add(r.key);
    if (r.confirmed && r.feasible && isBetter(r, this.best)) this.best = r;
  }

  result(): SearchResult {
    const s = this.env.stats;
    // Screened policies confirmed later (by this or another agent) count with their full score.
    for (const key of this.seen) {
      const r = this.env.recordOf(key);
      if (r && r.confirmed && r.feasible && isBetter(r, this.best)) this.best = r;
    }
    return {
      agent: this.agent,
      best: this.best,
      evaluations: s.evaluations - this.start.evaluations,
      subsetEvaluations: s.subsetEvaluations - this.start.subsetEvaluations,
      cacheHits: s.cacheHits - this.start.cacheHits,
      policies: this.seen.size,
      seconds: (performance.now() - this.started) / 1000,
      notes: this.notes,
    };
  }
}

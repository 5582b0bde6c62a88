/**
 * Polygraphy's `debug precision` (bisect mode): mark the first (forward) or last (reverse) k layers to
 * run in FP16, every other layer in INT8, and binary-search the smallest k whose accuracy passes. The
 * marker follows Polygraphy's BisectMarker: start with every layer marked, move towards the last
 * failing count on success and the last passing count on failure, stop when they are adjacent. The
 * accuracy check ignores the latency budget, as Polygraphy's does; only policies within the budget can
 * become best. The all-INT8 base is the most accurate calibration of the action set (each measured once).
 */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';
import { actionOf } from './actions.ts';
import { measureCalibrationStarts } from './calibration.ts';
import { stopNote } from './greedy.ts';

export type BisectDirection = 'forward' | 'reverse';

export interface BisectOptions {
  /** Directions to try; the best feasible result of all is reported. Default both. */
  directions?: BisectDirection[];
}

/** Actions with `k` layers marked fp16 at the start (forward) or end (reverse) of the network. */
export function markedActions(base: readonly number[], k: number, direction: BisectDirection, fp16: number, allowed: (i: number) => boolean): number[] {
  const n = base.length;
  return base.map((a, i) => {
    const marked = direction === 'forward' ? i < k : i >= n - k;
    return marked && allowed(i) ? fp16 : a;
  });
}

export class BisectAgent implements SearchAgent {
  readonly name = 'bisect';
  constructor(private readonly opts: BisectOptions = {}) {}

  async search(env: PrecisionEnv, budget?: SearchBudget): Promise<SearchResult> {
    const run = new SearchRun(env, this.name, budget);
    const fp16 = actionOf(env, 'fp16', this.name);
    // Calibration first: the prefixes are marked on all-INT8 under the most accurate calibration of the action set.
    const starts = await measureCalibrationStarts(env, run);
    const base = starts[0].actions;
    run.notes.push(`bisected all-INT8 under ${starts[0].label} (the most accurate of ${starts.map((s) => s.label).join(', ')})`);
    const allowed = (i: number): boolean => env.allowedActions(i).includes(fp16);
    const n = base.length;
    // Polygraphy pretends marking every layer passes (good = n + 1) and starts by marking all of them.
    const searches = (this.opts.directions ?? ['forward', 'reverse']).map((direction) => ({ direction, good: n + 1, bad: 0, k: n, done: false }));
    const probe = (b: (typeof searches)[number]) => env.policyFromActions(markedActions(base, b.k, b.direction, fp16, allowed));
    const consume = (b: (typeof searches)[number], passes: boolean): void => {
      if (passes) b.good = b.k;
      else b.bad = b.k;
      const next = passes ? Math.floor((b.good + b.bad) / 2) : Math.ceil((b.good + b.bad) / 2);
      if (next === b.k || Math.abs(b.good - b.bad) <= 1 || next > n) b.done = true;
      else b.k = next;
    };
    // One probe at a time: forward to the end, then reverse. With wider rounds both bisections advance together,
    // one probe each per round. Polygraphy's check is accuracy alone, so every probe is scored, within the budget or not.
    for (let s = 0; s < searches.length; s++) {
      while (!run.exhausted()) {
        const active = run.width() === 1 ? (searches[s].done ? [] : [searches[s]]) : searches.filter((b) => !b.done).slice(0, run.width());
        if (active.length === 0) break;
        const records = await run.evaluateMany(active.map(probe), { evenOverBudget: true });
        records.forEach((r, i) => consume(active[i], r.violations.accuracy === 0));
      }
    }
    for (const b of searches) {
      run.notes.push(b.good <= n ? `${b.direction}: the ${b.direction === 'forward' ? 'first' : 'last'} ${b.good} layer(s) in fp16 pass` : `${b.direction}: no prefix passes`);
    }
    const note = stopNote(run, 'both bisections converged');
    if (note) run.notes.push(note);
    return run.result();
  }
}

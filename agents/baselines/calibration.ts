/**
 * Calibration as a first-class choice of every agent: all-INT8 under each calibration method of the action set is
 * measured first (one evaluation each), and the baselines start from the most accurate of them. `best-calibration`
 * is that step alone, as a baseline of its own: what a user gets by trying each calibrator once.
 */
import type { PrecisionEnv } from '../../envs/precision-env.ts';
import type { EvaluationRecord } from '../../envs/evaluation-ledger.ts';
import { actionLabel } from '../../envs/types.ts';
import { SearchRun, type SearchAgent, type SearchBudget, type SearchResult } from '../agent.ts';
import { int8ActionOf, int8CalibrationStarts } from './actions.ts';

export interface CalibrationStart {
  actions: number[];
  record: EvaluationRecord;
  /** Label of the INT8 action, e.g. `int8` or `int8@mse`. */
  label: string;
}

/**
 * Measures all-INT8 under each calibration (within the run's budget; scored even over the latency budget, as a
 * probe) and returns them most accurate first (screened ones by their subset score); ties keep the action-set order.
 */
export async function measureCalibrationStarts(env: PrecisionEnv, run: SearchRun): Promise<CalibrationStart[]> {
  const starts = int8CalibrationStarts(env);
  const records = await run.evaluateAll(starts.map((actions) => env.policyFromActions(actions)), { evenOverBudget: true, atLeastOne: true });
  const out: CalibrationStart[] = records.map((record, i) => {
    const a = int8ActionOf(env, starts[i]);
    return { actions: starts[i], record, label: a === undefined ? 'int8' : actionLabel(env.actions[a]) };
  });
  const acc = (s: CalibrationStart) => (Number.isFinite(s.record.dAcc) ? s.record.dAcc : -Infinity);
  return out.map((s, i) => ({ s, i })).sort((x, y) => acc(y.s) - acc(x.s) || x.i - y.i).map(({ s }) => s);
}

export class BestCalibrationAgent implements SearchAgent {
  readonly name = 'best-calibration';

  async search(env: PrecisionEnv, budget?: SearchBudget): Promise<SearchResult> {
    const run = new SearchRun(env, this.name, budget);
    const starts = await measureCalibrationStarts(env, run);
    if (starts.length > 0) run.notes.push(`all-INT8 under ${starts.map((s) => s.label).join(', ')}: the most accurate is ${starts[0].label}`);
    if (!starts.some((s) => s.record.feasible)) run.notes.push('no calibration keeps all-INT8 within the floor and the budget');
    return run.result();
  }
}

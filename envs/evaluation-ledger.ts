/**
 * Bookkeeping of every policy the search has measured: the cache (by policyKey), the counters a report
 * needs (evaluations, cache hits), the history in evaluation order, and the best feasible policy.
 * Evaluation is the cost of the whole search, so nothing is ever measured twice.
 */
import type { LayerPolicy } from '../src/policy.ts';
import type { Violations } from './reward.ts';

export interface EvaluationRecord {
  /** policyKey of the policy: the cache key. */
  key: string;
  policy: LayerPolicy;
  /** Action index per layer, in topological order. */
  actions: number[];
  /** Score on the full data; NaN when not (yet) measured there. */
  score: number;
  /** Score on the screening subset, when subset screening is on. */
  subsetScore?: number;
  /** True once the score comes from the full data (only such records can become best). */
  confirmed: boolean;
  /** False when the policy was over the latency budget and, by configuration, never scored. */
  scored: boolean;
  latencyMs: number;
  /** The relative drop the floor was checked against when it was not -dAcc (`--confidence`: an interval's end). */
  dropBound?: number;
  /** R = wAcc * dAcc - wLat * dLat on the best data measured (full if confirmed, else subset); NaN if unscored. */
  reward: number;
  dAcc: number;
  dLat: number;
  /** What the agent is paid: R, less the penalty when a constraint is broken. */
  trainingReward: number;
  feasible: boolean;
  violations: Violations;
  /** 1-based ordinal among this search's full evaluations (0 if the record has none). */
  evaluation: number;
  /** Wall time spent measuring this policy, all stages. */
  seconds: number;
}

export interface EvaluationStats {
  /** Policies scored on the full data. */
  evaluations: number;
  /** Policies scored on the screening subset. */
  subsetEvaluations: number;
  /** Requests answered from the cache (including policies restored from an earlier run). */
  cacheHits: number;
  /** Policies never scored because the latency model already put them over budget. */
  skippedOverBudget: number;
}

/** Strictly better as "best": higher reward, then lower latency, then found earlier. */
export function isBetter(a: EvaluationRecord, b: EvaluationRecord | undefined): boolean {
  if (!b) return true;
  if (a.reward !== b.reward) return a.reward > b.reward;
  return a.latencyMs < b.latencyMs;
}

export class EvaluationLedger {
  readonly stats: EvaluationStats = { evaluations: 0, subsetEvaluations: 0, cacheHits: 0, skippedOverBudget: 0 };
  readonly history: EvaluationRecord[] = [];
  private readonly records = new Map<string, EvaluationRecord>();
  private bestRecord: EvaluationRecord | undefined;

  get(key: string): EvaluationRecord | undefined {
    return this.records.get(key);
  }

  get size(): number {
    return this.records.size;
  }

  /** Best feasible policy measured on the full data, if any. */
  get best(): EvaluationRecord | undefined {
    return this.bestRecord;
  }

  all(): IterableIterator<EvaluationRecord> {
    return this.records.values();
  }

  /** Stores a new or upgraded record; appends it to the history unless it is restored from disk. */
  put(record: EvaluationRecord, opts: { restored?: boolean } = {}): void {
    this.records.set(record.key, record);
    if (!opts.restored) this.history.push(record);
    if (record.confirmed && record.feasible && isBetter(record, this.bestRecord)) this.bestRecord = record;
  }
}

/**
 * The ladder of policies a search hands back besides its best one (the source method's fallback "fuse"): the Pareto
 * front of the measured feasible policies, score against latency, fastest first, ending at all-FP16, the safe end.
 * A deployment keeps every step's engine and switches between them at run time (an accuracy monitor trips, the
 * device runs hot, the inputs drift) without searching again; a latency budget picks the slowest step within it.
 *
 * On disk: pareto/step-01 ... step-NN, each with policy.json and every export, and pareto/index.json
 * `[{ dir, score, latencyMs, int8MacsShare, ... }]` in the same order. Only policies scored on the full evaluation
 * data qualify (a screening score is not comparable); all-FP16 is measured at the end of the search when the agent
 * never confirmed it, and is on the ladder even when it breaks a constraint (it is marked `feasible: false` then).
 */
import { policyJson } from '../export/policy-file.ts';
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { policyKey, uniformPolicy, type PolicyFile } from '../policy.ts';
import { writeFileAtomic } from '../fs.ts';
import { UserError } from '../errors.ts';
import { writeExports, type ExportInputs } from '../export/index.ts';
import { paretoFront } from '../report/series.ts';
import type { EvaluationRecord } from '../../envs/evaluation-ledger.ts';
import type { PrecisionEnv } from '../../envs/precision-env.ts';

export { DEFAULT_LADDER_STEPS } from './options.ts';
export const LADDER_DIR = 'pareto';
export const LADDER_INDEX = 'index.json';

/** One entry of pareto/index.json. */
export interface LadderStep {
  /** The step's folder, relative to pareto/ (policy.json and the exports are in it). */
  dir: string;
  /** Score on the search's evaluation samples, as in the step's policy.json. */
  score: number;
  latencyMs: number;
  /** Share of the MACs that read int8 (int8 and mixed layers). */
  int8MacsShare: number;
  /** Relative drop from FP32 (positive = worse). */
  drop: number;
  reward: number;
  /** Within the search's accuracy floor and latency budget (false only for an all-FP16 end that breaks one). */
  feasible: boolean;
  /** The policy the search chose (the run folder's policy.json). */
  chosen: boolean;
  /** Every layer FP16: the safe end. */
  allFp16: boolean;
  /** The step's score on the held-out test samples, where the search measured one (policy.json metrics.test). */
  test?: { score: number; fp32Score: number; drop: number; samples: number; ci95: [number, number] };
}

export interface LadderCandidate {
  key: string;
  score: number;
  latencyMs: number;
  feasible: boolean;
}

/**
 * The steps of the ladder, fastest first: the Pareto front of the feasible candidates that are faster than the safe
 * end, then the safe end itself. With more than `maxSteps`, the fastest step, the safe end and the chosen policy
 * stay, and the rest are filled in spread out: each next step is the one farthest (in latency and score, each scaled
 * to its range on the front) from the steps already kept.
 */
export function selectLadder<T extends LadderCandidate>(candidates: readonly T[], safeEnd: T, opts: { higherIsBetter: boolean; maxSteps: number; chosenKey?: string }): T[] {
  const faster = candidates.filter((c) => c.key !== safeEnd.key && c.latencyMs < safeEnd.latencyMs);
  const ladder = [...paretoFront(faster, opts.higherIsBetter), safeEnd];
  const maxSteps = Math.max(1, Math.floor(opts.maxSteps));
  if (ladder.length <= maxSteps) return ladder;
  const kept = new Set<number>([0, ladder.length - 1]);
  const chosen = ladder.findIndex((s) => s.key === opts.chosenKey);
  if (chosen >= 0) kept.add(chosen);
  const span = (values: number[]) => Math.max(...values) - Math.min(...values) || 1;
  const latencySpan = span(ladder.map((s) => s.latencyMs));
  const scoreSpan = span(ladder.map((s) => s.score));
  const distance = (i: number, j: number) => Math.hypot((ladder[i].latencyMs - ladder[j].latencyMs) / latencySpan, (ladder[i].score - ladder[j].score) / scoreSpan);
  while (kept.size < maxSteps) {
    let pick = -1;
    let farthest = -1;
    for (let i = 0; i < ladder.length; i++) {
      if (kept.has(i)) continue;
      const d = Math.min(...[...kept].map((j) => distance(i, j)));
      if (d > farthest) { farthest = d; pick = i; }
    }
    kept.add(pick);
  }
  return ladder.filter((_, i) => kept.has(i));
}

/**
 * The all-FP16 record, scored on the full data: from the search's measurements when it has one, else measured now
 * (an evaluation the run counts and history.jsonl records, so --resume answers it from there).
 */
export async function measureSafeEnd(env: PrecisionEnv): Promise<EvaluationRecord> {
  const fp16 = uniformPolicy(env.layerNames, 'fp16');
  const known = env.recordOf(policyKey(env.layerNames, fp16));
  if (known?.confirmed) return known;
  return env.evaluatePolicy(fp16, { confirm: true });
}

export interface LadderInputs {
  /** Every distinct policy the search measured. */
  records: readonly EvaluationRecord[];
  /** The all-FP16 record (measureSafeEnd). */
  safeEnd: EvaluationRecord;
  /** The search's chosen policy and its policy.json, when it found one. */
  chosen?: { key: string; policy: PolicyFile };
  higherIsBetter: boolean;
  maxSteps: number;
  /** policy.json of a measured record. */
  policyFile(record: EvaluationRecord): PolicyFile;
  /** What the exports of a policy are built from. */
  exportInputs(policy: PolicyFile): ExportInputs;
}

export interface WrittenLadder {
  steps: LadderStep[];
  index: string;
  files: string[];
  warnings: string[];
}

function stepDir(i: number, count: number): string {
  return `step-${String(i + 1).padStart(Math.max(2, String(count).length), '0')}`;
}

/**
 * Writes pareto/ into a run folder. It is built beside the folder and swapped in whole, so a ladder from an earlier
 * run of the same folder (--resume) never leaves stale steps, and a failed write leaves the old ladder as it was.
 */
export function writeParetoLadder(outDir: string, inputs: LadderInputs): WrittenLadder {
  const candidates = inputs.records.filter((r) => r.confirmed && r.feasible && Number.isFinite(r.score));
  const records = selectLadder(candidates, inputs.safeEnd, { higherIsBetter: inputs.higherIsBetter, maxSteps: inputs.maxSteps, chosenKey: inputs.chosen?.key });
  const finalDir = join(outDir, LADDER_DIR);
  const buildDir = join(outDir, `.${LADDER_DIR}.${process.pid}.tmp`);
  rmSync(buildDir, { recursive: true, force: true });
  const steps: LadderStep[] = [];
  const files: string[] = [];
  const warnings = new Set<string>();
  try {
    records.forEach((record, i) => {
      const dir = stepDir(i, records.length);
      const chosen = record.key === inputs.chosen?.key;
      const policy = chosen ? inputs.chosen!.policy : inputs.policyFile(record);
      writeFileAtomic(join(buildDir, dir, 'policy.json'), policyJson(policy));
      // The commands refer to where the files will be once the ladder is in place.
      const final = join(finalDir, dir);
      const exported = writeExports(join(buildDir, dir), inputs.exportInputs(policy), {
        calibPath: join(final, 'calibration.cache'), qdqPath: join(final, 'model.qdq.onnx'), scriptPath: join(final, 'build_engine.py'), enginePath: join(final, 'model.engine'),
      });
      exported.warnings.forEach((w) => warnings.add(w));
      files.push(join(final, 'policy.json'), ...exported.files.map((f) => join(final, basename(f))));
      const m = policy.metrics;
      steps.push({
        dir,
        score: m.score,
        latencyMs: m.latencyMs,
        int8MacsShare: Number(m.int8MacsShare ?? 0),
        drop: Number(m.drop ?? -record.dAcc),
        reward: Number(m.reward ?? record.reward),
        feasible: record.feasible,
        chosen,
        allFp16: record.key === inputs.safeEnd.key,
        ...(m.test ? { test: m.test as LadderStep['test'] } : {}),
      });
    });
    writeFileAtomic(join(buildDir, LADDER_INDEX), `${JSON.stringify(steps, null, 2)}\n`);
    if (existsSync(finalDir)) rmSync(finalDir, { recursive: true, force: true });
    renameSync(buildDir, finalDir);
  } catch (e) {
    rmSync(buildDir, { recursive: true, force: true });
    throw e;
  }
  const index = join(finalDir, LADDER_INDEX);
  return { steps, index, files: [index, ...files], warnings: [...warnings] };
}

/**
 * pareto/index.json read back, each step with the path of its policy.json; undefined when the file holds something
 * else than a JSON array (a policy.json, which its own reader checks). A damaged index is the user's to fix.
 */
export function readLadderIndex(path: string): Array<LadderStep & { policyPath: string }> | undefined {
  if (!existsSync(path) || !statSync(path).isFile()) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(doc)) return undefined;
  const fix = 'pass the pareto/index.json a trtmix search wrote';
  if (doc.length === 0) throw new UserError(`${path} lists no ladder steps; ${fix}`);
  return doc.map((s: Partial<LadderStep>, i) => {
    if (!s || typeof s.dir !== 'string' || s.dir === '' || typeof s.score !== 'number' || typeof s.latencyMs !== 'number') {
      throw new UserError(`${path}: step ${i + 1} has no dir, score or latencyMs; ${fix}`);
    }
    const policyPath = join(dirname(path), s.dir, 'policy.json');
    if (!existsSync(policyPath)) throw new UserError(`${path}: step ${s.dir} has no policy.json (${policyPath}); keep the pareto/ folder whole, or ${fix}`);
    return { ...(s as LadderStep), policyPath };
  });
}

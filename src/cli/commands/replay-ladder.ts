/**
 * `trtmix replay pareto/index.json`: every step of a search's ladder scored on the same data, in one table, fastest
 * first, next to the score the search recorded for it. On the search's own data each step must give its recorded
 * score back (exit 1 names the ones that did not); on new data the table shows where the ladder still holds: how much
 * accuracy each step keeps, and so which step to fall back to.
 */
import { UserError } from '../../errors.ts';
import type { PolicyFile } from '../../policy.ts';
import { readPolicyFile } from '../../export/policy-file.ts';
import type { ReplayResult } from '../../export/replay.ts';
import type { LadderStep } from '../../search/pareto.ts';
import { formatTable } from '../table.ts';
import { progress } from '../progress.ts';
import { loadReplaySubject, replayOn, type ReplayArgs } from '../replay-inputs.ts';

type IndexedStep = LadderStep & { policyPath: string };

export interface LadderReplayRow {
  dir: string;
  chosen: boolean;
  allFp16: boolean;
  /** The score the search measured for this step (on its evaluation samples). */
  searchScore: number;
  int8MacsShare: number;
  result: ReplayResult;
}

const ms = (v: number) => (v >= 10 ? v.toFixed(2) : v >= 0.1 ? v.toFixed(3) : v.toFixed(4));
const num = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(2) : v.toFixed(4));

export async function replayLadder(args: ReplayArgs, steps: IndexedStep[]): Promise<void> {
  const policies: PolicyFile[] = steps.map((s) => readPolicyFile(s.policyPath));
  const other = policies.findIndex((p) => p.model.sha256 !== policies[0].model.sha256);
  if (other >= 0) throw new UserError(`${args.policy}: step ${steps[other].dir} is of another model than step ${steps[0].dir}; a ladder comes from one search — pass the pareto/index.json a trtmix search wrote`);
  const subject = await loadReplaySubject(args, policies[0]);
  const bar = progress('replay ladder', { total: steps.length, quiet: args.quiet });
  const rows: LadderReplayRow[] = [];
  for (const [i, step] of steps.entries()) {
    const result = await replayOn(subject, policies[i], args);
    rows.push({ dir: step.dir, chosen: step.chosen === true, allFp16: step.allFp16 === true, searchScore: policies[i].metrics.score, int8MacsShare: Number(policies[i].metrics.int8MacsShare ?? step.int8MacsShare), result });
    bar.update(i + 1, step.dir);
  }
  bar.finish(`${steps.length} steps`);
  const warnings = [...new Set(rows.flatMap((r) => r.result.warnings))];
  if (!args.quiet) for (const w of warnings) process.stderr.write(`trtmix: warning: ${w}\n`);
  if (args.json) {
    const doc = { ladder: args.policy, model: { path: subject.modelPath, sha256: subject.check.sha256 }, data: subject.source, steps: rows.map(({ result, ...r }) => ({ ...r, ...result })) };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    process.stdout.write(ladderReport(args.policy, subject.source, rows));
  }
  const failed = rows.filter((r) => r.result.reproduced && (!r.result.reproduced.score || r.result.reproduced.latency === false));
  if (failed.length > 0) {
    process.stderr.write(`trtmix: ${failed.map((r) => r.dir).join(', ')} did not give the recorded score or latency back; the simulation or the environment changed since the search\n`);
    process.exitCode = 1;
  }
}

export function ladderReport(indexPath: string, source: string, rows: LadderReplayRow[]): string {
  const first = rows[0].result;
  const searchData = first.searchData;
  const lines: string[] = [];
  lines.push(`${indexPath} on ${source}: ${searchData ? `the search's data, its ${first.samples} evaluation samples` : `${first.samples} samples`}; ${rows.length} steps, fastest first`);
  lines.push(`${first.metric}: FP32 ${num(first.fp32Score)}; latency on ${first.target}, all-FP16 ${ms(first.fp16LatencyMs)} ms`, '');
  const head = ['#', 'step', 'int8 MACs', 'latency ms', 'vs FP16', 'searched', 'score', 'drop', ...(searchData ? ['reproduced'] : [])];
  const body = rows.map((r, i) => {
    const x = r.result;
    const drop = x.relativeDrop !== null ? `${(100 * x.relativeDrop).toFixed(2)} %` : num(x.drop);
    const name = `${r.dir}${r.chosen ? ' (chosen)' : ''}${r.allFp16 ? ' (all FP16)' : ''}`;
    const row: Array<string | number> = [i + 1, name, `${(100 * r.int8MacsShare).toFixed(1)} %`, ms(x.latencyMs), `${(x.latencyMs / x.fp16LatencyMs).toFixed(3)}x`, num(r.searchScore), num(x.score), drop];
    if (searchData) row.push(x.reproduced?.score && x.reproduced.latency !== false ? 'yes' : `NO (${x.reproduced?.scoreDiff.toExponential(2)})`);
    return row;
  });
  lines.push(formatTable(head, body, ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l']));
  lines.push('', 'searched: the score the search measured for the step on its evaluation samples. For a latency budget, take the slowest step within it; for an accuracy floor, the fastest step that meets it on data like this.');
  return `${lines.join('\n')}\n`;
}

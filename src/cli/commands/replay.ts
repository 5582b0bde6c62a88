import type { CommandModule } from 'yargs';
import type { GlobalOptions } from '../main.ts';
import { formatTable } from '../table.ts';
import { knownTargets } from '../../latency/index.ts';
import { readPolicyFile } from '../../export/policy-file.ts';
import { REPRODUCE_TOLERANCE, type ReplayResult } from '../../export/replay.ts';
import { loadReplaySubject, replayOn, type ReplayArgs } from '../replay-inputs.ts';
import { percentWithInterval, withInterval } from '../figures.ts';

type Args = ReplayArgs;

const ms = (v: number) => (v >= 10 ? v.toFixed(2) : v >= 0.1 ? v.toFixed(3) : v.toFixed(4));
const num = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(2) : v.toFixed(4));

export const replayCommand: CommandModule<GlobalOptions, Args> = {
  command: 'replay <policy>',
  describe: "Score a saved policy again, on the search's data or on new data",
  builder: (y) =>
    y
      .positional('policy', { type: 'string', describe: 'policy.json from a search, or its pareto/index.json to score the whole ladder', demandOption: true })
      .option('model', { type: 'string', describe: 'The ONNX model the policy was searched on (default: the path the policy records)' })
      .option('input-shape', { type: 'string', array: true, describe: 'Concrete input shape for dynamic dims, name:1x3x48x320 (repeat per input)' })
      .option('data', { type: 'string', describe: '.npy (single input) or .npz (one array per input) with samples first (default: the built-in example\'s lines, for a policy of the built-in model)' })
      .option('labels', { type: 'string', describe: '.txt (one per line), .json (array) or .npy labels, one per sample' })
      .option('metric', { type: 'string', describe: 'Built-in metric (top1, agreement, cosine, sqnr, mse, iou) or a plugin .mjs (default: the search\'s)' })
      .option('target', { type: 'string', describe: `Latency source: ${knownTargets().join(' | ')} (default: the search's)` })
      .option('force', { type: 'boolean', describe: 'Replay on a model whose sha256 differs from the policy\'s' })
      .epilogue('On the search\'s own data (its sha256 is in policy.json) the recorded search and test scores must come back within 1e-6, else exit 1 (on the search\'s --test-data file, its test score). On other data: score, FP32 score, drop, latency and the layer table. Scores come with 95 % bootstrap intervals.')
      .example([
        ['$0 replay runs/x/policy.json', 'Replay a search of the built-in example: its recorded score must come back'],
        ['$0 replay runs/x/policy.json --model m.onnx --data other.npz --labels other.txt --metric top1', 'Score a policy on new data'],
        ['$0 replay runs/x/pareto/index.json --data other.npz --labels other.txt', 'Score every step of the ladder on new data, in one table'],
      ]) as any,
  handler: async (args) => {
    // Loaded here: pareto.ts brings the exporters, which --help should not pay for.
    const { readLadderIndex } = await import('../../search/pareto.ts');
    const ladder = readLadderIndex(args.policy);
    if (ladder) return (await import('./replay-ladder.ts')).replayLadder(args, ladder);
    const policy = readPolicyFile(args.policy);
    const subject = await loadReplaySubject(args, policy);
    const { modelPath, check, source } = subject;
    const result = await replayOn(subject, policy, args);
    if (!args.quiet) for (const w of result.warnings) process.stderr.write(`trtmix: warning: ${w}\n`);
    const failed = (result.reproduced && (!result.reproduced.score || result.reproduced.latency === false)) || result.test?.reproduced === false;
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ policy: args.policy, model: { path: modelPath, sha256: check.sha256 }, data: source, ...result }, null, 2)}\n`);
    } else {
      process.stdout.write(report(args.policy, source, result));
    }
    if (failed) {
      const what = result.reproduced && !result.reproduced.score
        ? `score back (off by ${result.reproduced.scoreDiff.toExponential(2)})`
        : result.reproduced?.latency === false
          ? `latency back (off by ${result.reproduced.latencyDiff!.toExponential(2)} ms)`
          : `test score back (off by ${Math.abs(result.test!.score - result.test!.recorded!).toExponential(2)})`;
      process.stderr.write(`trtmix: the replay did not give the recorded ${what}; the simulation or the environment changed since the search\n`);
      process.exitCode = 1;
    }
  },
};

function report(policyPath: string, source: string, r: ReplayResult): string {
  const lines: string[] = [];
  const what = r.searchData ? `the search's data, its ${r.samples} search-split samples` : r.testData ? `the search's held-out test data, its ${r.samples} samples` : `${r.samples} samples`;
  lines.push(`${policyPath} on ${source}: ${what}`);
  const verdict = (ok: boolean, diff: number) => (ok ? `reproduced within ${REPRODUCE_TOLERANCE.toExponential()}` : `NOT reproduced, off by ${diff.toExponential(2)}`);
  const recorded = r.recorded && r.reproduced ? ` (recorded ${num(r.recorded.score)}, ${verdict(r.reproduced.score, r.reproduced.scoreDiff)})` : '';
  lines.push(`${r.metric} ${withInterval(r.score, r.ci95)}${recorded}   FP32 ${num(r.fp32Score)}   drop ${num(r.drop)}${r.relativeDrop !== null ? ` (${percentWithInterval(r.relativeDrop, r.relativeDropCi95)})` : ''}`);
  if (r.test) {
    const t = r.test;
    const rec = t.recorded !== undefined ? ` (recorded ${num(t.recorded)}, ${verdict(t.reproduced!, Math.abs(t.score - t.recorded))})` : '';
    lines.push(`test split, ${t.samples} held-out samples: ${r.metric} ${withInterval(t.score, t.ci95)}${rec}   FP32 ${num(t.fp32Score)}   drop ${percentWithInterval(t.drop, t.dropCi95)}`);
  }
  let recordedLatency = '';
  if (r.recorded && r.reproduced && r.recorded.target === r.target) {
    const verdict = r.reproduced.latency === null ? '; measured, so not compared' : r.reproduced.latency ? '' : ', NOT reproduced';
    recordedLatency = ` (recorded ${ms(r.recorded.latencyMs)} ms${verdict})`;
  }
  lines.push(`latency ${ms(r.latencyMs)} ms on ${r.target}${recordedLatency}   all-fp16 ${ms(r.fp16LatencyMs)} ms (${(r.latencyMs / r.fp16LatencyMs).toFixed(3)}x)`);
  const counts = ['int8', 'mixed', 'fp16', 'fp32'].map((p) => `${r.layers.filter((l) => l.precision === p).length} ${p}`).join(', ');
  lines.push(`${r.layers.length} layers: ${counts}`, '');
  lines.push(formatTable(['#', 'layer', 'op', 'precision', 'calibration', 'ms'], r.layers.map((l, i) => [i, l.name, l.op, l.precision, l.calibration ?? '', ms(l.latencyMs)]), ['r', 'l', 'l', 'l', 'l', 'r']));
  return `${lines.join('\n')}\n`;
}

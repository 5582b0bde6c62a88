import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import type { GlobalOptions } from '../main.ts';
import { discoverModelLayers, loadModelFile } from '../model-options.ts';
import { formatTable } from '../table.ts';
import { PPOCR_MODELS } from '../../examples.ts';
import { UserError } from '../../errors.ts';
import { loadDataset } from '../../data/dataset.ts';
import { modelInputs } from '../../onnx/layers.ts';
import { loadMetric } from '../../quant/metrics.ts';
import { createLatencyModel, knownTargets } from '../../latency/index.ts';
import { readPolicyFile, checkPolicyModel, sha256Hex } from '../../export/policy-file.ts';
import { BUILTIN_DATA, dataFiles, recordedSearchData, recordedSimulation, replayPolicy, REPRODUCE_TOLERANCE, type ReplayResult } from '../../export/replay.ts';
import { loadRecExample, CHAR_ACCURACY_PLUGIN } from '../../../experiments/ppocr/dataset.ts';

interface Args extends GlobalOptions {
  policy: string;
  model?: string;
  'input-shape'?: string[];
  data?: string;
  labels?: string;
  metric?: string;
  target?: string;
  force?: boolean;
}

const ms = (v: number) => (v >= 10 ? v.toFixed(2) : v >= 0.1 ? v.toFixed(3) : v.toFixed(4));
const num = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(2) : v.toFixed(4));

export const replayCommand: CommandModule<GlobalOptions, Args> = {
  command: 'replay <policy>',
  describe: "Score a saved policy again, on the search's data or on new data",
  builder: (y) =>
    y
      .positional('policy', { type: 'string', describe: 'policy.json from a search', demandOption: true })
      .option('model', { type: 'string', describe: 'The ONNX model the policy was searched on (default: the path the policy records)' })
      .option('input-shape', { type: 'string', array: true, describe: 'Concrete input shape for dynamic dims, name:1x3x48x320 (repeat per input)' })
      .option('data', { type: 'string', describe: '.npy (single input) or .npz (one array per input) with samples first (default: the built-in example\'s lines, for a policy of the built-in model)' })
      .option('labels', { type: 'string', describe: '.txt (one per line), .json (array) or .npy labels, one per sample' })
      .option('metric', { type: 'string', describe: 'Built-in metric (top1, agreement, cosine, sqnr, mse, iou) or a plugin .mjs (default: the search\'s)' })
      .option('target', { type: 'string', describe: `Latency source: ${knownTargets().join(' | ')} (default: the search's)` })
      .option('force', { type: 'boolean', describe: 'Replay on a model whose sha256 differs from the policy\'s' })
      .epilogue('On the search\'s own data (its sha256 is in policy.json) the recorded score must come back within 1e-6, else exit 1. On other data: score, FP32 score, drop, latency and the layer table.')
      .example([
        ['$0 replay runs/x/policy.json', 'Replay a search of the built-in example: its recorded score must come back'],
        ['$0 replay runs/x/policy.json --model m.onnx --data other.npz --labels other.txt --metric top1', 'Score a policy on new data'],
      ]) as any,
  handler: async (args) => {
    const policy = readPolicyFile(args.policy);
    const modelPath = args.model ?? policy.model.path;
    if (!existsSync(modelPath)) throw new UserError(`model ${modelPath} does not exist; pass it with --model`);
    const check = checkPolicyModel(policy, modelPath, args.force);
    const builtIn = resolve(modelPath) === resolve(PPOCR_MODELS.rec.path);
    if (!args.data && !builtIn) throw new UserError('--data is required: pass the .npy or .npz to score the policy on (the search\'s own data gives its recorded score back)');
    const modelArgs = { model: builtIn && !args['input-shape'] ? undefined : modelPath, 'input-shape': args['input-shape'] };
    const file = loadModelFile(modelArgs);
    const source = args.data ?? BUILTIN_DATA;
    const files = dataFiles(source, args.labels);
    if (!existsSync(files.data)) throw new UserError(`data file ${files.data} does not exist; check the --data path`);
    const data = source === BUILTIN_DATA
      ? loadRecExample()
      : loadDataset({ dataPath: files.data, labelsPath: files.labels, inputs: modelInputs(file.graph) });
    const m = await discoverModelLayers(file, modelArgs, source === BUILTIN_DATA ? {} : { data });
    const dataSha256 = sha256Hex(readFileSync(files.data));
    const labelsSha256 = files.labels ? sha256Hex(readFileSync(files.labels)) : undefined;
    const record = recordedSearchData(policy);
    const metricSpec = args.metric ?? record?.metric ?? (source === BUILTIN_DATA ? CHAR_ACCURACY_PLUGIN : 'agreement');
    const metric = await loadMetric(metricSpec);
    if (metric.needsLabels && !data.labels) throw new UserError(`metric ${metric.name} needs labels; pass --labels`);
    const target = args.target ?? policy.metrics.target ?? 't4';
    const latency = await createLatencyModel(target, m.layers, {
      model: m.model, graph: m.graph, inputShapes: m.inputShapes, simulation: recordedSimulation(m.model, m.graph, m.layers, policy),
    });
    const result = await replayPolicy({ policy, model: m.model, graph: m.graph, layers: m.layers, data, dataSha256, labelsSha256, metric, metricSpec, latency });
    if (!check.matches) result.warnings.unshift(`replayed on ${modelPath}, whose sha256 differs from the policy's model (--force)`);
    if (!args.quiet) for (const w of result.warnings) process.stderr.write(`trtmix: warning: ${w}\n`);
    const failed = result.reproduced && (!result.reproduced.score || result.reproduced.latency === false);
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ policy: args.policy, model: { path: modelPath, sha256: check.sha256 }, data: source, ...result }, null, 2)}\n`);
    } else {
      process.stdout.write(report(args.policy, source, result));
    }
    if (failed) {
      process.stderr.write(`trtmix: the replay did not give the recorded ${!result.reproduced!.score ? `score back (off by ${result.reproduced!.scoreDiff.toExponential(2)})` : `latency back (off by ${result.reproduced!.latencyDiff!.toExponential(2)} ms)`}; the simulation or the environment changed since the search\n`);
      process.exitCode = 1;
    }
  },
};

function report(policyPath: string, source: string, r: ReplayResult): string {
  const lines: string[] = [];
  lines.push(`${policyPath} on ${source}: ${r.searchData ? `the search's data, its ${r.samples} evaluation samples` : `${r.samples} samples`}`);
  const recorded = r.recorded && r.reproduced
    ? ` (recorded ${num(r.recorded.score)}, ${r.reproduced.score ? `reproduced within ${REPRODUCE_TOLERANCE.toExponential()}` : `NOT reproduced, off by ${r.reproduced.scoreDiff.toExponential(2)}`})`
    : '';
  lines.push(`${r.metric} ${num(r.score)}${recorded}   FP32 ${num(r.fp32Score)}   drop ${num(r.drop)}${r.relativeDrop !== null ? ` (${(100 * r.relativeDrop).toFixed(2)}%)` : ''}`);
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

import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { CommandModule } from 'yargs';
import type { GlobalOptions } from '../main.ts';
import { prepareExperiment, withExperimentOptions, type ExperimentArgs } from '../experiment.ts';
import { progress } from '../progress.ts';
import { formatTable } from '../table.ts';
import { UserError } from '../../errors.ts';
import { sha256Hex } from '../../export/policy-file.ts';
import { analyzeLayers, DEFAULT_ANALYSIS_SAMPLES, DEFAULT_STATS_SAMPLES, rankLayers, type Analysis } from '../../analysis/analyze.ts';
import type { AnalysisFiles } from '../../analysis/files.ts';
import { monitored, withMetricsPort, type MetricsArgs } from '../../monitor/cli.ts';

type Args = GlobalOptions & ExperimentArgs & MetricsArgs & {
  out?: string;
  'analysis-samples': number;
  'stats-samples': number;
  png: boolean;
  top: number;
};

function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function wholeNumber(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new UserError(`--${name} must be a whole number >= 1, got ${v}`);
  return v;
}

export const analyzeCommand: CommandModule<GlobalOptions, Args> = {
  command: 'analyze',
  describe: 'Rank layers by INT8 sensitivity on your data (analysis.json, report.html)',
  builder: (y) =>
    withMetricsPort(withExperimentOptions(y))
      .option('out', { type: 'string', describe: 'Folder for analysis.json, analysis.md, metrics.prom, report.html (default runs/analyze-<time>)' })
      .option('analysis-samples', { type: 'number', default: DEFAULT_ANALYSIS_SAMPLES, describe: 'Evaluation samples each per-layer policy is scored on (the first of the evaluation set)' })
      .option('stats-samples', { type: 'number', default: DEFAULT_STATS_SAMPLES, describe: 'Of those, how many feed the layer-output statistics (MSE, KL, overlap)' })
      .option('png', { type: 'boolean', default: true, describe: 'Also write the heatmap as PNG (--no-png to skip)' })
      .option('top', { type: 'number', default: 15, describe: 'Layers shown in the terminal table (all are in analysis.md)' })
      .epilogue('Each layer is scored alone in INT8 and left out of all-INT8; output error (MSE, SQNR), KL, histogram overlap, outliers and wasted range come with it. search --analysis reuses analysis.json.')
      .example([
        ['$0 analyze', 'Analyze the built-in PP-OCRv4 recognizer on its rendered text lines'],
        ['$0 analyze --model m.onnx --data x.npy --labels y.txt --metric top1 --out runs/m-analysis', 'Analyze your model'],
        ['$0 analyze --model m.onnx --data x.npz --json > analysis.json', 'The analysis as one JSON document'],
      ]) as any,
  handler: async (args) => {
    // Loaded here, not at the top: vega costs half a second that --help should not pay.
    const { analysisJson, writeAnalysis } = await import('../../analysis/files.ts');
    const samples = wholeNumber('analysis-samples', args['analysis-samples']);
    const statsSamples = wholeNumber('stats-samples', args['stats-samples']);
    const log = (m: string) => { if (!args.quiet) process.stderr.write(`${m}\n`); };
    const analysis = await monitored('analyze', args, log, async (monitor) => {
      const experiment = await prepareExperiment(args, { quiet: args.quiet, log });
      const evalCount = experiment.split.eval.count;
      if (samples > evalCount) log(`note: --analysis-samples ${samples} is more than the ${evalCount} evaluation samples; using ${evalCount}`);
      const layers = experiment.loaded.layers;
      monitor?.describeRun({ model: experiment.loaded.path, metric: experiment.metric.name });
      const byName = new Map(layers.map((l) => [l.name, l]));
      const bar = progress('analyze', { total: 2 * layers.length, quiet: args.quiet });
      const analysis = await analyzeLayers(experiment, {
        samples,
        statsSamples,
        model: { path: experiment.loaded.path, sha256: sha256Hex(readFileSync(experiment.loaded.path)) },
        onProgress: (p) => {
          bar.update(p.done, `${p.phase === 'int8' ? 'int8 alone' : 'leave-one-out'}: ${p.layer}`);
          monitor?.analysisLayer(byName.get(p.layer)!, p.measured);
        },
      });
      monitor?.analysis(analysis);
      bar.finish(`${layers.length} layers on ${analysis.samples} samples`);
      return analysis;
    });
    const outDir = args.out ?? join('runs', `analyze-${timestamp()}`);
    const files = await writeAnalysis(analysis, outDir, { png: args.png });
    if (args.json) process.stdout.write(analysisJson(analysis));
    else process.stdout.write(summary(analysis, files, args.top));
  },
};

function pct(v: number): string {
  return `${(100 * v).toFixed(2)}%`;
}

function summary(a: Analysis, files: AnalysisFiles, top: number): string {
  const drop = (v: number) => (a.drop === 'relative' ? pct(v) : v.toPrecision(3));
  const lines: string[] = [];
  lines.push(`${a.metric.name}: FP32 ${a.fp32Score.toFixed(4)}, all INT8 ${a.int8Score.toFixed(4)} on ${a.samples} samples (calibration ${a.calibration.method}); ${a.layers.length} layers in ${a.seconds.toFixed(1)} s`);
  lines.push('');
  const ranked = rankLayers(a.layers).slice(0, Math.max(1, top));
  lines.push(formatTable(
    ['rank', 'layer', 'op', 'int8 drop', 'leave-one-out', 'SQNR dB', 'KL', 'overlap', 'flags'],
    ranked.map((l) => [l.rank, l.name, l.op, drop(l.int8Drop), drop(l.leaveOneOutDrop), l.sqnrDb.toFixed(1), l.kl.toFixed(3), l.histogramOverlap.toFixed(3), l.flags.join(',')]),
    ['r', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'],
  ));
  if (a.layers.length > ranked.length) lines.push(`... ${a.layers.length - ranked.length} more in analysis.md`);
  lines.push('');
  const show = (p: string) => relative(process.cwd(), p) || p;
  lines.push(`wrote ${[files.json, files.markdown, files.prometheus, files.report.html].map(show).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

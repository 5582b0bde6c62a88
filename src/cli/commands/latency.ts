import type { CommandModule } from 'yargs';
import { withModelOptions, loadModelAndLayers, recordedInputShapes, type ModelArgs } from '../model-options.ts';
import { formatTable } from '../table.ts';
import type { GlobalOptions } from '../main.ts';
import { UserError } from '../../errors.ts';
import { uniformPolicy, type LayerPolicy, type Precision } from '../../policy.ts';
import { readPolicyFile } from '../../export/policy-file.ts';
import { policyPrecisions } from '../../export/plan.ts';
import { createLatencyModel, knownTargets, parseTarget, type LatencyOptions } from '../../latency/index.ts';
import { buildLatencyGraph } from '../../latency/onnx-graph.ts';
import { RooflineLatencyModel } from '../../latency/roofline.ts';
import { ProfileLatencyModel } from '../../latency/profile-model.ts';
import { validateRoofline, type ValidationReport } from '../../latency/validate.ts';
import type { LatencyEstimate } from '../../latency/types.ts';

type Args = GlobalOptions & ModelArgs & {
  target: string;
  batch?: number;
  policy?: string;
  validate?: string;
  device?: string;
  threads?: number;
};

const UNIFORM: Precision[] = ['fp32', 'fp16', 'int8'];

const fmt = (ms: number): string => (ms >= 10 ? ms.toFixed(2) : ms >= 0.1 ? ms.toFixed(3) : ms.toFixed(4));
const layerTotal = (e: LatencyEstimate, i: number): number => e.perLayer[i].ms + e.perLayer[i].reformatMs;

export const latencyCommand: CommandModule<GlobalOptions, Args> = {
  command: 'latency',
  describe: 'Per-layer latency of fp32, fp16, int8 and a policy on a GPU or CPU target',
  builder: (y) =>
    withModelOptions(y)
      .option('target', { type: 'string', default: 't4', describe: `Latency source: ${knownTargets().join(' | ')}` })
      .option('batch', { type: 'number', describe: 'Samples per inference (default: the batch of --input-shape, else 1)' })
      .option('policy', { type: 'string', describe: 'policy.json to price beside the uniform policies' })
      .option('validate', { type: 'string', describe: 'profile:DIR: rank-correlate the --target roofline per-layer estimates with imported TensorRT profiles' })
      .option('device', { type: 'string', describe: 'With --target profile:DIR: the GPU profile pricing reformats between layers of different precisions (default t4)' })
      .option('threads', { type: 'number', describe: 'With --target ort-cpu: onnxruntime intra-op threads (default TRTMIX_THREADS or 2)' })
      .epilogue('GPU targets are roofline models of the datasheet peaks; ort-cpu measures this machine; profile:DIR imports trtexec --exportProfile JSON of an all-FP16 and an all-INT8 build.')
      .example([
        ['$0 latency --target t4', 'Roofline per-layer latency of the built-in PP-OCRv4 recognizer on a T4'],
        ['$0 latency --model m.onnx --input-shape x:1x3x48x320 --target orin-agx --policy runs/x/policy.json --json', 'Price a searched policy on Jetson AGX Orin'],
        ['$0 latency --target ort-cpu', 'Measured onnxruntime CPU time of the simulated models'],
        ['$0 latency --validate profile:./profiles --target t4', 'How well the T4 roofline orders layers like your trtexec profiles'],
      ]) as any,
  handler: async (args) => {
    if (args.validate !== undefined) return validate(args);
    const parsed = parseTarget(args.target);
    const policyFile = args.policy ? readPolicyFile(args.policy) : undefined;
    const m = await loadModelAndLayers(args, { recordedShapes: policyFile && recordedInputShapes(policyFile) });
    const names = m.layers.map((l) => l.name);
    let policy: LayerPolicy | undefined;
    if (policyFile) {
      const file = policyFile;
      const warnings: string[] = [];
      const { precisions } = policyPrecisions(file, m.layers, warnings);
      for (const w of warnings) process.stderr.write(`trtmix: ${w}\n`);
      policy = Object.fromEntries([...precisions].map(([name, precision]) => [name, { precision }]));
    }
    const opts: LatencyOptions = {
      model: m.model, graph: m.graph, inputShapes: m.inputShapes,
      ...(args.batch !== undefined ? { batch: args.batch } : {}),
      ...(args.device !== undefined ? { device: args.device } : {}),
      ...(args.threads !== undefined ? { threads: checkThreads(args.threads) } : {}),
    };
    if (parsed.kind === 'ort-cpu' && !args.quiet) process.stderr.write('timing the simulated models in onnxruntime (warm-up, then the median of 10 runs each)...\n');
    const model = await createLatencyModel(args.target, m.layers, opts);
    const batch = opts.batch ?? Object.values(m.inputShapes)[0]?.[0] ?? 1;
    const estimates: Partial<Record<Precision | 'policy', LatencyEstimate>> = {};
    for (const p of UNIFORM) estimates[p] = await model.estimate(uniformPolicy(names, p));
    if (policy) estimates.policy = await model.estimate(policy);
    const columns = [...UNIFORM, ...(policy ? (['policy'] as const) : [])];

    if (args.json) {
      const doc = {
        target: model.target,
        batch,
        totals: Object.fromEntries(columns.map((c) => [c, estimates[c]!.totalMs])),
        layers: m.layers.map((l, i) => ({
          name: l.name,
          op: l.op,
          ...Object.fromEntries(columns.map((c) => [c, layerTotal(estimates[c]!, i)])),
          ...(policy ? { policyPrecision: policy[l.name]?.precision ?? 'fp32' } : {}),
        })),
        otherMs: Object.fromEntries(columns.map((c) => [c, estimates[c]!.otherMs ?? 0])),
      };
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
      return;
    }
    const header = ['#', 'layer', 'op', ...UNIFORM.map((p) => `${p} ms`), ...(policy ? ['policy', 'ms'] : [])];
    const rows = m.layers.map((l, i) => [
      i, l.name, l.op + (l.depthwise ? ' dw' : ''),
      ...UNIFORM.map((p) => fmt(layerTotal(estimates[p]!, i))),
      ...(policy ? [policy[l.name]?.precision ?? 'fp32', fmt(layerTotal(estimates.policy!, i))] : []),
    ]);
    const others = columns.map((c) => estimates[c]!.otherMs ?? 0);
    if (others.some((o) => o > 0)) rows.push(['', '(not attributed to a layer)', '', ...others.slice(0, 3).map(fmt), ...(policy ? ['', fmt(others[3])] : [])]);
    rows.push(['', 'total', '', ...UNIFORM.map((p) => fmt(estimates[p]!.totalMs)), ...(policy ? ['', fmt(estimates.policy!.totalMs)] : [])]);
    const align: Array<'l' | 'r'> = ['r', 'l', 'l', 'r', 'r', 'r', ...(policy ? (['l', 'r'] as const) : [])];
    process.stdout.write(`${m.path}\ntarget ${model.target}, batch ${batch}, inputs ${Object.entries(m.inputShapes).map(([k, v]) => `${k}:${v.join('x')}`).join(' ')}; per-layer ms include the reformats charged to the layer\n\n`);
    process.stdout.write(`${formatTable(header, rows, align)}\n`);
  },
};

function checkThreads(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new UserError(`--threads ${n} must be a positive integer`);
  return n;
}

async function validate(args: Args): Promise<void> {
  const profile = parseTarget(args.validate!);
  if (profile.kind !== 'profile') throw new UserError(`--validate takes profile:DIR (a folder of trtexec profiles), not ${args.validate}`);
  const device = parseTarget(args.target);
  if (device.kind !== 'roofline') throw new UserError(`--validate compares a GPU roofline with the profiles; --target must be one of the GPU profiles, not ${args.target}`);
  const m = await loadModelAndLayers(args);
  const latencyGraph = await buildLatencyGraph(m.model, m.graph, m.layers, m.inputShapes);
  const opts: LatencyOptions = {
    model: m.model, graph: m.graph, inputShapes: m.inputShapes, latencyGraph,
    ...(args.batch !== undefined ? { batch: args.batch } : {}),
    device: args.device ?? device.device,
  };
  const roofline = (await createLatencyModel(args.target, m.layers, opts)) as RooflineLatencyModel;
  const imported = (await createLatencyModel(args.validate!, m.layers, opts)) as ProfileLatencyModel;
  const report = await validateRoofline(roofline, imported);
  if (args.json) {
    process.stdout.write(`${JSON.stringify({ ...report, profile: args.validate }, null, 2)}\n`);
    return;
  }
  process.stdout.write(describeValidation(report, args.validate!));
}

function describeValidation(r: ValidationReport, source: string): string {
  const rho = (c: { rho: number; layers: number }) => `${Number.isNaN(c.rho) ? 'n/a' : c.rho.toFixed(3)} over ${c.layers} layers`;
  const lines = [
    `Spearman rank correlation of ${r.target} roofline per-layer estimates with ${source}:`,
    `  fp16 ${rho(r.correlation.fp16)}`,
    `  int8 ${rho(r.correlation.int8)}`,
    `  both ${rho(r.correlation.pooled)}`,
    '',
    formatTable(['layer', 'op', 'build', 'roofline ms', 'profile ms'], r.rows.map((x) => [x.name, x.op, x.precision, fmt(x.rooflineMs), fmt(x.profileMs)]), ['l', 'l', 'l', 'r', 'r']),
  ];
  if (r.unmapped.length > 0) {
    lines.push('', `${r.unmapped.length} engine layer(s) not mapped to ONNX nodes (their time is counted as "not attributed"):`);
    for (const u of r.unmapped) lines.push(`  [${u.build}] ${u.name} (${fmt(u.ms)} ms): ${u.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

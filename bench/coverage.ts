/**
 * The coverage suite of issue #11: every model in bench/coverage/models/ (real architectures exported with PyTorch
 * 2.11 on the device machine by bench/coverage/export_models.py, trained briefly on bench/coverage/data) run through
 * trtmix exactly as a user runs it — `info`, `analyze`, `search`, `export` (every format) and `replay`, each a child
 * process of bin/trtmix.js from the repository root — and tabled.
 *
 *   node --import tsx bench/coverage.ts [--models resnet18_quarter,bert_tiny] [--out bench/out/coverage]
 *     [--exports bench/out/coverage-exports] [--calib-samples 32] [--eval-samples 128] [--analysis-samples 32]
 *     [--max-evaluations 6] [--time-limit 90s] [--readme]
 *
 * Writes <out>/coverage.json and <out>/coverage.md (the table), each model's `info --json` into its fixture folder
 * (bench/coverage/models/<name>/info.json), every export of each model's best policy into <exports>/<name>/ (for
 * onnx.checker and TensorRT builds elsewhere), and with --readme replaces the table in README.md between its
 * coverage markers. A step that fails is recorded with trtmix's message and the model's later steps are skipped.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { EXPORT_FILE_NAMES, EXPORT_FORMATS } from '../src/export/index.ts';
import { readNpz } from '../src/data/npz.ts';
import { readNpy } from '../src/data/npy.ts';
import { writeFileAtomic } from '../src/fs.ts';
import { loadModel } from '../src/onnx/model.ts';

const ROOT = join(import.meta.dirname, '..');
const SUITE = join('bench', 'coverage');
const BIN = join(ROOT, 'bin', 'trtmix.js');

const { values: args } = parseArgs({ options: {
  models: { type: 'string' },
  out: { type: 'string', default: 'bench/out/coverage' },
  exports: { type: 'string', default: 'bench/out/coverage-exports' },
  'calib-samples': { type: 'string', default: '32' },
  'eval-samples': { type: 'string', default: '128' },
  'analysis-samples': { type: 'string', default: '32' },
  'max-evaluations': { type: 'string', default: '6' },
  'time-limit': { type: 'string', default: '90s' },
  readme: { type: 'boolean', default: false },
} });

/** What export_models.py recorded about a model (meta.json); paths are relative to bench/coverage. */
interface ModelMeta {
  name: string;
  arch: string;
  task: string;
  exporter: string;
  batch: number | string;
  opset: number;
  data: string;
  labels: string;
  metric: string;
  fp32_torch: number;
  fp32_onnxruntime: number;
  inputs: { name: string; dtype: string; dims: (number | string)[] }[];
  onnx_bytes: number;
  external_data_bytes: number;
}

interface Step { step: string; ok: boolean; seconds: number; message?: string }

interface Row {
  name: string;
  arch: string;
  exporter: string;
  batch: number | string;
  opset: number;
  bytes: number;
  externalData: boolean;
  subgraphs: number;
  layers?: number;
  samples?: { calib: number; eval: number; analysis: number };
  metric: string;
  fp32Torch: number;
  fp32Ort: number;
  fp32Score?: number;
  score?: number;
  latencyMs?: number;
  fp16LatencyMs?: number;
  int8LayerShare?: number;
  int8MacsShare?: number;
  replayScore?: number;
  steps: Step[];
}

interface Run { code: number | null; stdout: string; stderr: string; seconds: number }

function trtmix(argv: string[]): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

/** trtmix's own one-line message when a command fails (the last `trtmix:` line), else the last line it wrote. */
export function failureMessage(run: Run): string {
  const lines = `${run.stderr}\n${run.stdout}`.split('\n').map((l) => l.trim()).filter(Boolean);
  const own = lines.filter((l) => l.startsWith('trtmix:'));
  return (own.at(-1) ?? lines.at(-1) ?? `exit code ${run.code}`).slice(0, 300);
}

/** If / Loop / Scan nodes of the main graph: their bodies are subgraphs, whose layers trtmix leaves in FP32. */
function controlFlowNodes(modelPath: string): number {
  return (loadModel(modelPath).graph?.node ?? []).filter((n) => (n.attribute ?? []).some((a) => a.g || (a.graphs ?? []).length)).length;
}

/** --input-shape values for `info`: each input's dims as the data gives them, one sample (or the fixed batch). */
function inputShapes(meta: ModelMeta): string[] {
  const dataPath = join(SUITE, meta.data);
  const shapes = dataPath.endsWith('.npz')
    ? new Map([...readNpz(dataPath)].map(([k, a]) => [k, a.shape]))
    : new Map([[meta.inputs[0].name, readNpy(dataPath).shape]]);
  return meta.inputs.map((input) => {
    const dims = [...(shapes.get(input.name) ?? [])];
    dims[0] = typeof input.dims[0] === 'number' ? input.dims[0] : 1;
    return `${input.name}:${dims.join('x')}`;
  });
}

/** Models above this many MACs per sample (SSDlite: 138 M, at 320x320 inside) get a quarter of the samples, so that
 * the suite stays within half an hour on two loaded cores. */
const HEAVY_MACS = 50e6;

function samples(option: 'calib-samples' | 'eval-samples' | 'analysis-samples', heavy: boolean): string {
  const n = Number(args[option]);
  return String(heavy ? Math.max(8, Math.floor(n / 4)) : n);
}

function dataArgs(meta: ModelMeta, heavy: boolean): string[] {
  const metric = meta.metric.endsWith('.mjs') ? join(SUITE, meta.metric) : meta.metric;
  return ['--data', join(SUITE, meta.data), '--labels', join(SUITE, meta.labels), '--metric', metric,
    '--calib-samples', samples('calib-samples', heavy), '--eval-samples', samples('eval-samples', heavy)];
}

async function cover(meta: ModelMeta): Promise<Row> {
  const model = join(SUITE, 'models', meta.name, 'model.onnx');
  const out = join(args.out!, meta.name);
  const exportsDir = join(args.exports!, meta.name);
  mkdirSync(exportsDir, { recursive: true });
  const row: Row = {
    name: meta.name, arch: meta.arch, exporter: meta.exporter, batch: meta.batch, opset: meta.opset,
    bytes: meta.onnx_bytes + meta.external_data_bytes, externalData: meta.external_data_bytes > 0,
    subgraphs: controlFlowNodes(model), metric: meta.metric.replace(/^metrics\/|\.mjs$/g, ''),
    fp32Torch: meta.fp32_torch, fp32Ort: meta.fp32_onnxruntime, steps: [],
  };
  const step = async (name: string, argv: string[]): Promise<Run | undefined> => {
    const run = await trtmix(argv);
    const ok = run.code === 0;
    row.steps.push({ step: name, ok, seconds: Number(run.seconds.toFixed(1)), ...(ok ? {} : { message: failureMessage(run) }) });
    console.log(`  ${name}: ${ok ? 'ok' : `FAILED (${failureMessage(run)})`} ${run.seconds.toFixed(1)} s`);
    return ok ? run : undefined;
  };

  const info = await step('info', ['info', '--model', model, ...inputShapes(meta).flatMap((s) => ['--input-shape', s]), '--json']);
  if (!info) return row;
  const infoDoc = JSON.parse(info.stdout);
  row.layers = infoDoc.layers.length;
  const heavy = infoDoc.totalMacs > HEAVY_MACS;
  row.samples = { calib: Number(samples('calib-samples', heavy)), eval: Number(samples('eval-samples', heavy)), analysis: Number(samples('analysis-samples', heavy)) };
  writeFileAtomic(join(SUITE, 'models', meta.name, 'info.json'), `${JSON.stringify({ ...infoDoc, model: `models/${meta.name}/model.onnx` }, null, 1)}\n`);

  const analysisDir = join(out, 'analysis');
  if (!await step('analyze', ['analyze', '--model', model, ...dataArgs(meta, heavy), '--analysis-samples', samples('analysis-samples', heavy), '--no-png', '--out', analysisDir, '--json'])) return row;

  const searchDir = join(out, 'search');
  const search = await step('search', ['search', '--model', model, ...dataArgs(meta, heavy), '--analysis', join(analysisDir, 'analysis.json'),
    '--max-evaluations', args['max-evaluations']!, '--time-limit', args['time-limit']!, '--out', searchDir, '--json']);
  if (!search) return row;
  const doc = JSON.parse(search.stdout);
  const policyPath = join(searchDir, 'policy.json');
  const policy = JSON.parse(readFileSync(policyPath, 'utf8'));
  const lowered = policy.layers.filter((l: { precision: string }) => l.precision === 'int8' || l.precision === 'mixed').length;
  Object.assign(row, {
    fp32Score: doc.fp32Score, score: doc.score, latencyMs: doc.latencyMs, fp16LatencyMs: doc.fp16LatencyMs,
    int8LayerShare: lowered / policy.layers.length, int8MacsShare: doc.int8MacsShare,
  });

  for (const format of EXPORT_FORMATS) {
    if (!await step(`export ${format}`, ['export', policyPath, '--model', model, '--format', format, '--out', join(exportsDir, EXPORT_FILE_NAMES[format])])) return row;
  }
  const replay = await step('replay', ['replay', policyPath, '--model', model, ...dataArgs(meta, heavy).slice(0, 6), '--json']);
  if (replay) row.replayScore = JSON.parse(replay.stdout).score;
  return row;
}

const pct = (x: number | undefined) => (x === undefined ? '–' : `${(100 * x).toFixed(0)} %`);
const num = (x: number | undefined, digits = 3) => (x === undefined || x === null ? '–' : x.toFixed(digits));

/** The README table: one row per model; failures listed below it with trtmix's message. */
export function coverageTable(rows: Row[]): string {
  const head = '| model | exporter | opset | layers | FP32 score: trtmix (evaluation samples) · device (all samples) | best policy: score · latency T4 (all-FP16) · INT8 layers | INT8 MAC share | info · analyze · search · export · replay |';
  const lines = [head, '|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const failed = r.steps.find((s) => !s.ok);
    const reduced = r.samples && r.samples.eval < Number(args['eval-samples']) ? ` (${r.samples.calib}/${r.samples.eval}/${r.samples.analysis} samples)` : '';
    const status = (failed ? `fails at ${failed.step}` : r.steps.length ? 'all pass' : 'not run') + reduced;
    const exporter = `${r.exporter}${r.externalData ? ', model.onnx.data' : ''}${typeof r.batch === 'number' ? `, batch ${r.batch}` : ''}`;
    const layers = r.layers === undefined ? '–' : `${r.layers}${r.subgraphs ? ` + ${r.subgraphs} ${r.subgraphs > 1 ? 'If/Loop nodes' : 'If/Loop node'} (bodies FP32)` : ''}`;
    const best = r.score === undefined ? '–'
      : `${num(r.score, 4)} · ${num(r.latencyMs)} ms (${num(r.fp16LatencyMs)}) · ${pct(r.int8LayerShare)}`;
    lines.push(`| \`${r.name}\` ${r.arch} | ${exporter} | ${r.opset} | ${layers} | ${r.metric} ${num(r.fp32Score, 4)} · ${num(r.fp32Ort, 4)} | ${best} | ${pct(r.int8MacsShare)} | ${status} |`);
  }
  const failures = rows.flatMap((r) => r.steps.filter((s) => !s.ok).map((s) => `- \`${r.name}\` ${s.step}: ${s.message}`));
  return [...lines, ...(failures.length ? ['', 'Failures:', '', ...failures] : [])].join('\n');
}

const BEGIN = '<!-- coverage:begin (bench/coverage.ts --readme writes this table) -->';
const END = '<!-- coverage:end -->';

/** README.md with the text between the coverage markers replaced; the markers must already be there. */
export function replaceCoverage(readme: string, table: string): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no coverage markers (${BEGIN} ... ${END})`);
  return `${readme.slice(0, a + BEGIN.length)}\n${table}\n${readme.slice(b)}`;
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const modelsDir = join(SUITE, 'models');
const wanted = args.models?.split(',').filter(Boolean);
const metas: ModelMeta[] = readdirSync(modelsDir).sort()
  .filter((n) => existsSync(join(modelsDir, n, 'meta.json')) && (!wanted || wanted.includes(n)))
  .map((n) => JSON.parse(readFileSync(join(modelsDir, n, 'meta.json'), 'utf8')));
console.log(`machine: ${cpus().length} logical CPUs, load average ${load()}; ${metas.length} models`);
mkdirSync(args.out!, { recursive: true });
const t0 = performance.now();
const rows: Row[] = [];
for (const meta of metas) {
  console.log(`${meta.name} (${meta.arch}; ${meta.exporter})`);
  rows.push(await cover(meta));
  writeFileSync(join(args.out!, 'coverage.json'), `${JSON.stringify(rows, null, 1)}\n`);
}
const table = coverageTable(rows);
writeFileSync(join(args.out!, 'coverage.md'), `${table}\n`);
console.log(`\n${table}\n\n${((performance.now() - t0) / 60000).toFixed(1)} min; load average ${load()}; exports in ${relative(ROOT, join(ROOT, args.exports!))}/`);
if (args.readme) {
  writeFileAtomic(join(ROOT, 'README.md'), replaceCoverage(readFileSync(join(ROOT, 'README.md'), 'utf8'), table));
  console.log('README.md: coverage table replaced');
}

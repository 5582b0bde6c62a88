/**
 * Peak memory of `trtmix analyze` and of a short `trtmix search` on a large model, each as a user runs it (its own
 * process). Without --model it builds a BERT-base-sized encoder in code (12 layers, hidden 768, FFN 3072, vocab
 * 30522: 440 MB of random float32 weights in model.onnx.data) and token data for it (int64 input_ids and
 * attention_mask in an .npz); with --model/--data it measures that model (the device machine runs it on real
 * ViT-B/16 and BERT-base exports).
 *
 *   node --import tsx bench/peak-memory.ts [--dir DIR] [--model M.onnx --data D.npz] [--layers 12] [--seq 16]
 *
 * Peak RSS comes from /usr/bin/time -v ("Maximum resident set size"), else from the child's own
 * process.resourceUsage(). Writes DIR/peak-memory.json and prints a table. Timings are under whatever load the
 * machine has (the table records `uptime`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { saveModel } from '../src/onnx/model.ts';
import { writeNpz } from '../src/data/npz.ts';
import { tinyBert, tokenBatch } from '../test/fixtures/user-models.ts';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'trtmix.js');

function option(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

interface Measurement {
  command: string;
  exitCode: number | null;
  seconds: number;
  maxRssMiB: number;
}

/** Runs trtmix with `args`, returning its exit code, wall time and peak RSS. */
function measure(args: string[]): Measurement {
  const timeV = existsSync('/usr/bin/time');
  const t0 = performance.now();
  const r = timeV
    ? spawnSync('/usr/bin/time', ['-v', process.execPath, BIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 })
    : spawnSync(process.execPath, ['--import', 'data:text/javascript,process.on("exit",()=>process.stderr.write("maxrss-kb "+process.resourceUsage().maxRSS+"\\n"))', BIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const seconds = (performance.now() - t0) / 1000;
  const kb = Number((timeV ? /Maximum resident set size \(kbytes\): (\d+)/ : /maxrss-kb (\d+)/).exec(r.stderr)?.[1] ?? NaN);
  if (r.status !== 0) process.stderr.write(r.stderr.split('\n').filter((l) => l.startsWith('trtmix')).join('\n') + '\n');
  return { command: `trtmix ${args.join(' ')}`, exitCode: r.status, seconds, maxRssMiB: kb / 1024 };
}

/** The BERT-base-sized model and its data in `dir` (built once; reused when already there). */
function buildBert(dir: string, layers: number, seq: number, samples: number): { model: string; data: string } {
  const model = join(dir, 'bert-base.onnx');
  const data = join(dir, 'tokens.npz');
  const stamp = join(dir, `built-${layers}-${seq}-${samples}`);
  if (existsSync(stamp)) return { model, data };
  mkdirSync(dir, { recursive: true });
  const vocab = 30522;
  process.stderr.write(`building a ${layers}-layer BERT-base encoder (random weights) in ${dir} ...\n`);
  saveModel(tinyBert({ layers, hidden: 768, ffn: 3072, vocab, maxSeq: 512 }), model, { externalData: true });
  const lengths = Array.from({ length: samples }, (_, i) => Math.max(4, seq - (i % (seq - 3))));
  const { ids, mask } = tokenBatch(lengths, seq, vocab, 7);
  writeNpz(data, { input_ids: { dtype: 'int64', shape: [samples, seq], data: ids }, attention_mask: { dtype: 'int64', shape: [samples, seq], data: mask } });
  writeFileSync(stamp, '');
  return { model, data };
}

const dir = resolve(option('dir', join(ROOT, 'bench', 'out', 'peak-memory'))!);
const layers = Number(option('layers', '12'));
const seq = Number(option('seq', '16'));
const samples = 16;
const given = option('model');
const { model, data } = given ? { model: resolve(given), data: resolve(option('data')!) } : buildBert(dir, layers, seq, samples);
const modelBytes = statSync(model).size + (existsSync(`${model}.data`) ? statSync(`${model}.data`).size : 0);
const analysisDir = join(dir, 'analysis');
const runDir = join(dir, 'search');
rmSync(runDir, { recursive: true, force: true });
const common = ['--model', model, '--data', data, '--calib-samples', '8', '--eval-samples', '8'];
const analyze = measure(['analyze', ...common, '--analysis-samples', '4', '--stats-samples', '4', '--no-png', '--out', analysisDir, '--quiet']);
const search = measure(['search', ...common, '--analysis', join(analysisDir, 'analysis.json'), '--agent', 'greedy', '--max-evaluations', '4', '--screen-samples', '0', '--time-limit', '20m', '--out', runDir, '--quiet']);
const result = {
  model: { path: model, megabytes: modelBytes / 2 ** 20, externalData: existsSync(`${model}.data`), built: given ? null : { layers, hidden: 768, ffn: 3072, vocab: 30522, seq } },
  machine: { memoryGiB: totalmem() / 2 ** 30, loadAverage: loadavg(), threads: process.env.TRTMIX_THREADS ?? '2' },
  analyze,
  search,
  exports: existsSync(join(runDir, 'model.qdq.onnx')) ? { qdq: statSync(join(runDir, 'model.qdq.onnx')).size, qdqData: existsSync(join(runDir, 'model.qdq.onnx.data')) ? statSync(join(runDir, 'model.qdq.onnx.data')).size : 0 } : null,
};
writeFileSync(join(dir, 'peak-memory.json'), `${JSON.stringify(result, null, 2)}\n`);
const row = (name: string, m: Measurement) => `| ${name} | ${m.exitCode} | ${m.seconds.toFixed(0)} | ${m.maxRssMiB.toFixed(0)} |`;
process.stdout.write([
  `model ${model} (${result.model.megabytes.toFixed(0)} MiB${result.model.externalData ? ', external data' : ''}); load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`,
  '',
  '| command | exit | seconds | peak RSS MiB |',
  '|---|---:|---:|---:|',
  row('analyze', analyze),
  row('search (greedy, 4 evaluations)', search),
  '',
].join('\n'));
if (analyze.exitCode !== 0 || search.exitCode !== 0) process.exitCode = 1;


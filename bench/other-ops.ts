/**
 * What --other-ops changes, end to end: a search per model and per setting (fp16, fp32), each with the same seed and
 * budget, on the built-in example (PP-OCRv4 recognizer, character accuracy) and on a small ViT built in code
 * (test/fixtures/vit.ts, top-1 agreement with FP32 on seeded random images). Per run: the best policy's score and FP32 score,
 * its latency on the target (the roofline prices the placed graph: other ops in FP16 or FP32, Q/DQ and Casts),
 * all-FP16 / all-INT8 latencies, the layers per precision, the ops kept in FP32, and the Q/DQ pairs of its
 * model.qdq.onnx against those the earlier placement (Q/DQ on every int8 layer's result too) would have.
 *
 *   node --import tsx bench/other-ops.ts [--model builtin|vit|both] [--episodes 60] [--time-limit 8m] [--out bench/out/other-ops]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { saveModel, decodeModel } from '../src/onnx/model.ts';
import { writeNpy } from '../src/data/npy.ts';
import { runSearch } from '../src/search/run.ts';
import { readsInt8, type OtherOpsPrecision, type PolicyFile } from '../src/policy.ts';
import { tinyVit } from '../test/fixtures/vit.ts';
import { randomInput } from '../test/fixtures/models.ts';

const args = yargs(hideBin(process.argv))
  .option('model', { choices: ['builtin', 'vit', 'both'], default: 'both' })
  .option('episodes', { type: 'number', default: 60 })
  .option('time-limit', { type: 'string', default: '8m' })
  .option('eval-samples', { type: 'number', default: 96 })
  .option('calib-samples', { type: 'number', default: 64 })
  .option('analysis-samples', { type: 'number', default: 32 })
  .option('target', { type: 'string', default: 't4' })
  .option('out', { type: 'string', default: 'bench/out/other-ops' })
  .strict()
  .parseSync();

mkdirSync(args.out, { recursive: true });
const subjects: Array<{ name: string; model?: string; data?: string; metric?: string }> = [];
if (args.model !== 'vit') subjects.push({ name: 'builtin' });
if (args.model !== 'builtin') {
  const model = join(args.out, 'tiny-vit.onnx');
  const data = join(args.out, 'tiny-vit-images.npy');
  const n = args['calib-samples'] + args['eval-samples'];
  saveModel(tinyVit(), model);
  writeNpy(data, { dtype: 'float32', shape: [n, 3, 32, 32], data: randomInput([n, 3, 32, 32], 'bench-other-ops') });
  subjects.push({ name: 'vit', model, data, metric: 'agreement' });
}

function earlierPairs(policy: PolicyFile, layers: Awaited<ReturnType<typeof runSearch>>['setup']['exp']['loaded']['layers']): number {
  const t = new Set<string>();
  const byName = new Map(policy.layers.map((l) => [l.name, l.precision]));
  for (const l of layers) {
    const p = byName.get(l.name) ?? 'fp32';
    if (readsInt8(p)) { t.add(l.input); if (!l.weightIsConstant) t.add(l.weight); }
    if (p === 'int8') t.add(l.fusedOutput);
  }
  return t.size;
}

const rows: string[] = [];
for (const s of subjects) {
  // The sensitivity analysis (minutes on PP-OCR) is run once per model, under fp16, and reused by the fp32 search.
  let analysis: string | undefined;
  for (const otherOps of ['fp16', 'fp32'] as OtherOpsPrecision[]) {
    const out = join(args.out, `${s.name}-${otherOps}`);
    rmSync(out, { recursive: true, force: true });
    const t0 = performance.now();
    const result = await runSearch({
      ...(s.model ? { model: s.model, data: s.data, metric: s.metric } : {}),
      out, agent: 'dqn', seed: 0, episodes: args.episodes, 'time-limit': args['time-limit'], target: args.target,
      'eval-samples': args['eval-samples'], 'calib-samples': args['calib-samples'], 'analysis-samples': args['analysis-samples'],
      'screen-samples': 32, 'other-ops': otherOps, quiet: true, ...(analysis ? { analysis } : {}),
    }, { quiet: true, log: () => {} });
    analysis ??= join(out, 'analysis.json');
    const seconds = (performance.now() - t0) / 1000;
    const p = result.policy;
    if (!p) { rows.push(`| ${s.name} | ${otherOps} | no feasible policy | | | | | |`); continue; }
    const qdq = decodeModel(readFileSync(join(out, 'model.qdq.onnx')));
    const pairs = qdq.graph!.node!.filter((n) => n.opType === 'QuantizeLinear').length;
    const casts = qdq.graph!.node!.filter((n) => n.opType === 'Cast').length;
    const counts = ['int8', 'mixed', 'fp16', 'fp32'].map((x) => `${p.layers.filter((l) => l.precision === x).length} ${x}`).join(', ');
    const m = p.metrics;
    rows.push(`| ${s.name} | ${otherOps} | ${m.score.toFixed(4)} (FP32 ${m.fp32Score.toFixed(4)}) | ${m.latencyMs.toFixed(4)} ms (all-FP16 ${m.fp16LatencyMs.toFixed(4)}, all-INT8 ${(m.int8LatencyMs as number).toFixed(4)}) | ${counts} | ${Object.keys(p.otherOps?.fp32 ?? {}).length} | ${pairs} (earlier ${earlierPairs(p, result.setup.exp.loaded.layers)}), ${casts} Casts | ${p.search.evaluations} evaluations, ${seconds.toFixed(0)} s |`);
    console.log(rows[rows.length - 1]);
  }
}
console.log(`\nsearch: dqn, seed 0, ${args.episodes} episodes or ${args['time-limit']}, ${args['eval-samples']} evaluation / ${args['calib-samples']} calibration samples, target ${args.target}`);
console.log('| model | --other-ops | best score | latency | layers | ops kept FP32 | Q/DQ pairs in model.qdq.onnx | cost |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);

/**
 * `trtmix analyze` on the built-in PP-OCRv4 recognizer, timed: experiment preparation (model, calibration, FP32
 * reference), the per-layer analysis, and the files. Then checks, on a few layers, that the scores the analysis
 * got from cuts equal whole-model evaluations of the same policies, and prints the top of the ranking.
 *   node --import tsx bench/analyze.ts [--analysis-samples 128] [--check 6] [--out bench/out/analyze]
 */
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import { prepareExperiment } from '../src/cli/experiment.ts';
import { progress } from '../src/cli/progress.ts';
import { analyzeLayers, rankLayers } from '../src/analysis/analyze.ts';
import { writeAnalysis } from '../src/analysis/files.ts';
import { uniformPolicy } from '../src/policy.ts';

const { values: args } = parseArgs({ options: {
  'analysis-samples': { type: 'string', default: '128' },
  check: { type: 'string', default: '6' },
  out: { type: 'string', default: 'bench/out/analyze' },
} });
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`machine: ${cpus().length} logical CPUs (${cpus()[0]?.model ?? 'cpu'}), load average ${load()}`);

const t0 = performance.now();
const ex = await prepareExperiment({}, { quiet: false, log: (m) => console.error(m) });
const prepared = (performance.now() - t0) / 1000;
const bar = progress('analyze', { total: 2 * ex.base.layers.length });
const analysis = await analyzeLayers(ex, {
  samples: Number(args['analysis-samples']),
  model: { path: ex.loaded.path },
  onProgress: (p) => bar.update(p.done, `${p.phase} ${p.layer}`),
});
bar.finish();
const t1 = performance.now();
await writeAnalysis(analysis, args.out!);
const written = (performance.now() - t1) / 1000;
const total = (performance.now() - t0) / 1000;
console.log(`\nprepare (layers, calibration on ${ex.split.calib.count}, FP32 reference on ${ex.split.eval.count}): ${prepared.toFixed(1)} s`);
console.log(`analysis (${analysis.layers.length} layers x 2 runs on ${analysis.samples} samples): ${analysis.seconds.toFixed(1)} s`);
console.log(`files (json, md, prom, html + plots): ${written.toFixed(1)} s`);
console.log(`total ${total.toFixed(1)} s (${(total / 60).toFixed(1)} min); load average ${load()}`);
console.log(`${analysis.metric.name}: FP32 ${analysis.fp32Score.toFixed(4)}, all INT8 (${analysis.calibration.method}) ${analysis.int8Score.toFixed(4)}`);

console.log('\ntop 10:');
for (const l of rankLayers(analysis.layers).slice(0, 10)) {
  console.log(`  ${String(l.rank).padStart(2)}. ${l.name.padEnd(14)} ${l.op.padEnd(7)} int8 drop ${(100 * l.int8Drop).toFixed(2).padStart(6)} %  leave-one-out ${(100 * l.leaveOneOutDrop).toFixed(2).padStart(6)} %  SQNR ${l.sqnrDb.toFixed(1).padStart(5)} dB  KL ${l.kl.toFixed(3)}  overlap ${l.histogramOverlap.toFixed(3)}  ${l.flags.join(',')}`);
}

const check = Number(args.check);
if (check > 0) {
  const names = ex.base.layers.map((l) => l.name);
  const int8 = uniformPolicy(names, 'int8');
  const picks = [...new Set([rankLayers(analysis.layers)[0], ...analysis.layers.filter((_, i) => i % Math.ceil(names.length / check) === 0)].map((l) => l.name))].slice(0, check + 1);
  let worst = 0;
  console.log(`\ncuts vs whole-model evaluation (${picks.length} layers, ${analysis.samples} samples):`);
  for (const name of picks) {
    const l = analysis.layers.find((x) => x.name === name)!;
    const alone = await ex.evaluator.evaluate({ [name]: { precision: 'int8' } }, { samples: analysis.samples });
    const out = await ex.evaluator.evaluate({ ...int8, [name]: { precision: 'fp32' } }, { samples: analysis.samples });
    worst = Math.max(worst, Math.abs(alone.score - l.int8Score), Math.abs(out.score - l.leaveOneOutScore));
    console.log(`  ${name}: int8 alone ${l.int8Score.toFixed(5)} vs ${alone.score.toFixed(5)}; leave-one-out ${l.leaveOneOutScore.toFixed(5)} vs ${out.score.toFixed(5)}`);
  }
  console.log(`  largest difference ${worst.toExponential(2)}`);
}

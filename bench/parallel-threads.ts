/**
 * Are scores the same whatever onnxruntime's intra-op thread count? The local backend (src/parallel/local.ts) gives
 * each worker thread a share of the cores only if they are: a different float summation order would make a search's
 * result depend on --jobs. Scores a handful of seeded random policies on the built-in example (and the FP32
 * reference) with 1, 2 and 4 intra-op threads, and prints whether every score is bit-identical.
 * --metric cosine compares the outputs themselves (the example's character accuracy could hide a last-bit difference).
 *   node --import tsx bench/parallel-threads.ts [--eval-samples 64] [--policies 5] [--threads 1,2,4] [--metric cosine]
 */
import { parseArgs } from 'node:util';
import seedrandom from 'seedrandom';
import { prepareExperiment } from '../src/cli/experiment.ts';
import { PolicyEvaluator } from '../src/quant/evaluator.ts';
import { uniformPolicy, type LayerPolicy, type Precision } from '../src/policy.ts';

const { values: args } = parseArgs({ options: { 'eval-samples': { type: 'string', default: '64' }, policies: { type: 'string', default: '5' }, threads: { type: 'string', default: '1,2,4' }, metric: { type: 'string' } } });
const threadCounts = args.threads.split(',').map(Number);
process.env.TRTMIX_THREADS = String(threadCounts[0]);
const ex = await prepareExperiment({ 'eval-samples': Number(args['eval-samples']), ...(args.metric ? { metric: args.metric } : {}) });
const names = ex.base.layers.map((l) => l.name);
const rng = seedrandom('parallel-threads');
const actions: Precision[] = ['int8', 'mixed', 'fp16'];
const policies: LayerPolicy[] = [uniformPolicy(names, 'int8')];
while (policies.length < Number(args.policies)) policies.push(Object.fromEntries(names.map((n) => [n, { precision: actions[Math.floor(rng() * 3)] }])));

const rows: number[][] = [];
for (const t of threadCounts) {
  process.env.TRTMIX_THREADS = String(t);
  // A fresh evaluator per thread count: its FP32 reference and every session are built with these threads.
  const evaluator = await PolicyEvaluator.create(ex.base, ex.split.eval, ex.metric, { batchSize: ex.batchSize, bootstrap: { seed: ex.seed } });
  const scores = [evaluator.fp32Score];
  const t0 = performance.now();
  for (const p of policies) scores.push((await evaluator.evaluate(p)).score);
  rows.push(scores);
  console.log(`${t} intra-op thread(s): fp32 ${scores[0]} | ${scores.slice(1).join(' ')}  (${((performance.now() - t0) / 1000 / policies.length).toFixed(2)} s per policy)`);
}
const same = rows.every((r) => r.every((v, i) => Object.is(v, rows[0][i])));
console.log(`${ex.metric.name}, ${ex.split.eval.count} samples, ${policies.length} policies + FP32: scores ${same ? 'bit-identical' : 'DIFFER'} across ${threadCounts.join('/')} intra-op threads`);

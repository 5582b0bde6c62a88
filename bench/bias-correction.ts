/**
 * What --bias-correction changes on the built-in example (PP-OCRv4 recognizer, character accuracy): the all-INT8
 * policy under each calibration method (layers without a fast INT8 kernel stay FP16, as the int8 baseline does) and
 * (with --search) the best policy of a search, scored on the same search samples without correction, with the
 * one-pass correction and with the sequential one (passes until no channel moves, at most --max-passes: PP-OCRv4
 * has 47 correctable layers in a chain, so 60 passes reach the sequential result). Per row also the layers corrected
 * and the seconds one policy's corrections cost.
 *
 *   node --import tsx bench/bias-correction.ts [--calib-samples 32] [--eval-samples 64] [--max-passes 60]
 *        [--search] [--search-episodes 40] [--search-time 6m] [--out bench/out/bias-correction]
 *        [--policy P.json ...]
 *
 * --policy scores the given policies (policy.json of a search of the built-in example) instead of the all-INT8 rows;
 * bench/bias-correction/ keeps the DQN's best of `search --calibration entropy --max-evaluations 20` (seed 0).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { prepareExperiment } from '../src/cli/experiment.ts';
import { PolicyEvaluator } from '../src/quant/evaluator.ts';
import { BiasCorrector } from '../src/quant/bias-correction.ts';
import { buildSimulatedModel } from '../src/quant/simulate.ts';
import { int8Exclusion } from '../src/quant/placement.ts';
import { runSearch } from '../src/search/run.ts';
import { layerPolicyOf } from '../src/export/replay.ts';
import type { CalibrationMethod, LayerPolicy, PolicyFile } from '../src/policy.ts';

const args = yargs(hideBin(process.argv))
  .option('calib-samples', { type: 'number', default: 32 })
  .option('eval-samples', { type: 'number', default: 64 })
  .option('max-passes', { type: 'number', default: 60 })
  .option('search-episodes', { type: 'number', default: 40 })
  .option('search-time', { type: 'string', default: '6m' })
  .option('search', { type: 'boolean', default: false })
  .option('policy', { type: 'string', array: true, default: [] as string[] })
  .option('out', { type: 'string', default: 'bench/out/bias-correction' })
  .strict()
  .parseSync();

mkdirSync(args.out, { recursive: true });
const exp = await prepareExperiment({ 'calib-samples': args['calib-samples'], 'eval-samples': args['eval-samples'], 'test-samples': 0, seed: 0 });
const { base, split, metric, batchSize } = exp;
const plain = exp.evaluator;
console.error(`built-in example: ${base.layers.length} layers, ${split.calib.count} calibration / ${split.eval.count} search samples, FP32 ${plain.fp32Score.toFixed(4)}`);

const correctors = new Map<number, BiasCorrector>();
async function corrector(passes: number): Promise<BiasCorrector> {
  let c = correctors.get(passes);
  if (!c) {
    c = await BiasCorrector.create(base.model, base.graph, base.layers, split.calib, {
      passes, batchSize: 8, simulate: (p, bias, extraOutputs) => buildSimulatedModel(base, p, { extraOutputs, bias }),
    });
    correctors.set(passes, c);
  }
  return c;
}
const evaluators = new Map<number, PolicyEvaluator>();
async function scoreWith(passes: number, policy: LayerPolicy): Promise<{ score: number; seconds: number; layers: number }> {
  const c = await corrector(passes);
  let e = evaluators.get(passes);
  if (!e) { e = await PolicyEvaluator.create(base, split.eval, metric, { batchSize, biasCorrection: (p) => c.corrections(p) }); evaluators.set(passes, e); }
  const t0 = performance.now();
  const corrections = await c.corrections(policy);
  const seconds = (performance.now() - t0) / 1000;
  return { score: (await e.evaluate(policy)).score, seconds, layers: corrections.size };
}

const rows: string[] = [];
async function row(label: string, policy: LayerPolicy): Promise<void> {
  const none = (await plain.evaluate(policy)).score;
  const cells = [label, none.toFixed(4)];
  for (const passes of [1, args['max-passes']]) {
    const r = await scoreWith(passes, policy);
    cells.push(`${r.score.toFixed(4)} (${r.layers} layers, ${r.seconds.toFixed(1)} s)`);
  }
  rows.push(`| ${cells.join(' | ')} |`);
  console.error(rows[rows.length - 1]);
}

for (const file of args.policy) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as PolicyFile;
  const counts = ['int8', 'mixed', 'fp16'].map((x) => `${p.layers.filter((l) => l.precision === x).length} ${x}`).join('/');
  await row(`${basename(file)} (${counts}, ${p.metrics.latencyMs.toFixed(3)} ms)`, layerPolicyOf(p, base.layers));
}

for (const method of (args.policy.length > 0 ? [] : ['max', 'entropy', 'percentile', 'mse']) as CalibrationMethod[]) {
  const calibration = method === 'percentile' ? { method, percentile: 99.99 } : { method };
  const policy: LayerPolicy = {};
  for (const l of base.layers) policy[l.name] = int8Exclusion(l, base.graph) ? { precision: 'fp16' } : { precision: 'int8', calibration };
  await row(`all-INT8, ${method === 'percentile' ? 'percentile 99.99' : method}`, policy);
}

if (args.search) {
  for (const bias of [false, true]) {
    const out = join(args.out, bias ? 'search-bias' : 'search');
    rmSync(out, { recursive: true, force: true });
    const t0 = performance.now();
    const r = await runSearch({
      out, agent: 'dqn', seed: 0, episodes: args['search-episodes'], 'time-limit': args['search-time'],
      'calib-samples': args['calib-samples'], 'eval-samples': args['eval-samples'], 'test-samples': 0, 'analysis-samples': 32, 'screen-samples': 32,
      'bias-correction': bias, quiet: true,
    }, { quiet: true, log: () => {} });
    const seconds = (performance.now() - t0) / 1000;
    if (!r.policy) { rows.push(`| search${bias ? ' --bias-correction' : ''} | no feasible policy | | |`); continue; }
    const p = r.policy;
    const policy = layerPolicyOf(p, base.layers);
    const counts = ['int8', 'mixed', 'fp16'].map((x) => `${p.layers.filter((l) => l.precision === x).length} ${x}`).join('/');
    console.error(`search${bias ? ' --bias-correction' : ''}: score ${p.metrics.score.toFixed(4)} @ ${p.metrics.latencyMs.toFixed(4)} ms (${counts}), ${p.search.evaluations} evaluations, ${seconds.toFixed(0)} s`);
    await row(`best of a search${bias ? ' with --bias-correction' : ''} (${counts}, ${p.metrics.latencyMs.toFixed(3)} ms, ${p.search.evaluations} evals, ${seconds.toFixed(0)} s)`, policy);
  }
}

console.log(`FP32 ${plain.fp32Score.toFixed(4)} on ${split.eval.count} search samples; corrections on ${split.calib.count} calibration samples\n`);
console.log(`| policy | no correction | one pass | sequential (<= ${args['max-passes']} passes) |`);
console.log('|---|---|---|---|');
for (const r of rows) console.log(r);

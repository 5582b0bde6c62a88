/**
 * Evaluation throughput on the built-in PP-OCRv4 recognizer: how long scoring a NEW policy takes (graph rewrite,
 * protobuf encode, session build, inference over the evaluation set, metric) against plain FP32 inference of the
 * same samples with a fresh session (encode, session build, inference). Target (issue 15): at most 1.2x.
 *   node --import tsx bench/eval-throughput.ts [--eval-samples 256] [--repeats 5] [--batch-size 16]
 * The two are measured interleaved (FP32, policy, FP32, policy, ...) so that load from other processes on a
 * shared machine falls on both alike; medians are reported, with the machine's load average.
 */
import { parseArgs } from 'node:util';
import { cpus, loadavg } from 'node:os';
import seedrandom from 'seedrandom';
import { prepareExperiment } from '../src/cli/experiment.ts';
import { createSession, sessionBytes, toOrtFeeds } from '../src/onnx/runtime.ts';
import { runModel, sliceFeeds } from '../src/quant/evaluator.ts';
import { buildSimulatedModel } from '../src/quant/simulate.ts';
import { scoreWith } from '../src/quant/metrics.ts';
import { uniformPolicy, type LayerPolicy, type Precision } from '../src/policy.ts';

const { values: args } = parseArgs({ options: {
  'eval-samples': { type: 'string', default: '256' },
  repeats: { type: 'string', default: '5' },
  'batch-size': { type: 'string', default: '16' },
} });
const repeats = Number(args.repeats);
const batchSize = Number(args['batch-size']);

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const seconds = async <T>(f: () => Promise<T>): Promise<[number, T]> => { const t = performance.now(); const r = await f(); return [(performance.now() - t) / 1000, r]; };
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

console.log(`machine: ${cpus().length} logical CPUs (${cpus()[0]?.model ?? 'cpu'}), load average ${load()}`);
const [prepSeconds, ex] = await seconds(() => prepareExperiment({ 'eval-samples': Number(args['eval-samples']), 'batch-size': batchSize }));
const { base, evaluator } = ex;
const data = ex.split.eval;
const names = base.layers.map((l) => l.name);
console.log(`PP-OCRv4 rec: ${names.length} layers, ${data.count} evaluation samples, batch ${batchSize}; experiment prepared in ${prepSeconds.toFixed(1)} s (FP32 ${ex.metric.name} ${evaluator.fp32Score.toFixed(4)})`);

// Every policy is new to the evaluator (cache miss): uniform ones, then seeded random mixes.
const rng = seedrandom('eval-throughput');
const actions: Precision[] = ['int8', 'mixed', 'fp16'];
const policies: LayerPolicy[] = [uniformPolicy(names, 'int8'), uniformPolicy(names, 'fp16'), uniformPolicy(names, 'mixed')];
while (policies.length < repeats) policies.push(Object.fromEntries(names.map((n) => [n, { precision: actions[Math.floor(rng() * 3)] }])));

const fp32Times: number[] = [];
const policyTimes: number[] = [];
for (let i = 0; i < repeats; i++) {
  const [fp32] = await seconds(() => runModel(base.model, data, batchSize));
  fp32Times.push(fp32);
  const [t, r] = await seconds(() => evaluator.evaluate(policies[i]));
  if (r.cached) throw new Error('the bench policy was cached; it must be new');
  policyTimes.push(t);
  console.log(`  run ${i + 1}: FP32 inference ${fp32.toFixed(2)} s, new policy ${t.toFixed(2)} s (${(t / fp32).toFixed(2)}x; score ${r.score.toFixed(4)}), load ${load()}`);
}
const a = median(fp32Times);
const b = median(policyTimes);
console.log(`\nFP32 inference of ${data.count} samples (fresh session): median ${a.toFixed(2)} s (${(1000 * a / data.count).toFixed(1)} ms/sample)`);
console.log(`new policy evaluated on the same samples:      median ${b.toFixed(2)} s (${(1000 * b / data.count).toFixed(1)} ms/sample)`);
console.log(`ratio ${(b / a).toFixed(2)}x (target <= 1.2x)`);

// Where a new policy's time goes, stage by stage, on the path the evaluator takes (session bytes: large tensors by
// reference into the weight store, as createSession builds them).
const stages = { rewrite: [] as number[], encode: [] as number[], session: [] as number[], inference: [] as number[], metric: [] as number[] };
const fp32Stages = { encode: [] as number[], session: [] as number[], inference: [] as number[] };
for (let i = 0; i < Math.min(3, repeats); i++) {
  for (const [model, into] of [[null, stages], [base.model, fp32Stages]] as const) {
    let t = performance.now();
    const m = model ?? buildSimulatedModel(base, policies[i]);
    if (!model) (into as typeof stages).rewrite.push((performance.now() - t) / 1000);
    t = performance.now();
    const bytes = sessionBytes(m);
    into.encode.push((performance.now() - t) / 1000);
    t = performance.now();
    const session = await createSession(bytes);
    into.session.push((performance.now() - t) / 1000);
    t = performance.now();
    const outputs: Array<Record<string, { data: Float32Array; dims: number[] }>> = [];
    for (let s = 0; s < data.count; s += batchSize) {
      const e = Math.min(data.count, s + batchSize);
      const r = await session.run(toOrtFeeds(sliceFeeds(data, s, e)));
      for (let k = 0; k < e - s; k++) {
        const sample: Record<string, { data: Float32Array; dims: number[] }> = {};
        for (const [name, tensor] of Object.entries(r)) {
          const per = (tensor.data as Float32Array).length / (e - s);
          sample[name] = { data: (tensor.data as Float32Array).slice(k * per, (k + 1) * per), dims: [...tensor.dims.slice(1)] };
        }
        outputs.push(sample);
      }
    }
    into.inference.push((performance.now() - t) / 1000);
    await session.release();
    if (!model) {
      t = performance.now();
      await scoreWith(evaluator.metric, { outputs, reference: evaluator.referenceOutputs, labels: data.labels });
      (into as typeof stages).metric.push((performance.now() - t) / 1000);
    }
  }
}
const fmt = (xs: number[]) => `${median(xs).toFixed(3)} s`;
console.log('\nstages (median of 3):');
console.log(`  new policy: graph rewrite ${fmt(stages.rewrite)}, encode ${fmt(stages.encode)}, session build ${fmt(stages.session)}, inference ${fmt(stages.inference)}, metric ${fmt(stages.metric)}`);
console.log(`  FP32:       encode ${fmt(fp32Stages.encode)}, session build ${fmt(fp32Stages.session)}, inference ${fmt(fp32Stages.inference)}`);
console.log(`load average at the end: ${load()}`);

/**
 * What pricing the placed graph changes in the roofline: uniform policies of the built-in example (PP-OCRv4
 * recognizer) and the small ViT (test/fixtures/vit.ts), priced the earlier way (every op in the precision of its
 * input, an int8 result reformatted for float readers) and as model.qdq.onnx runs them under --other-ops fp32 and
 * fp16 (no op kept FP32 here: amax from two seeded random inputs, which is all timing needs).
 *
 *   node --import tsx bench/latency-placement.ts [--target t4]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { loadModelAndLayers } from '../src/cli/model-options.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { createLatencyModel, timingSimulation } from '../src/latency/index.ts';
import { uniformPolicy, type Precision } from '../src/policy.ts';
import { tinyVit } from '../test/fixtures/vit.ts';

const args = yargs(hideBin(process.argv)).option('target', { type: 'string', default: 't4' }).strict().parseSync();

const subjects = [
  { name: 'PP-OCRv4 rec', ...(await loadModelAndLayers({})) },
  await (async () => {
    const model = tinyVit();
    return { name: 'tiny ViT', model, ...(await discoverLayers(model, { inputShapes: { x: [1, 3, 32, 32] } })) };
  })(),
];
console.log(`roofline ${args.target}, batch 1, ms: earlier pricing / placed --other-ops fp32 / placed --other-ops fp16`);
for (const s of subjects) {
  const names = s.layers.map((l) => l.name);
  const sim = await timingSimulation(s.model, s.graph, s.layers, s.inputShapes);
  const opts = { model: s.model, graph: s.graph, inputShapes: s.inputShapes };
  const models = [
    await createLatencyModel(args.target, s.layers, opts),
    await createLatencyModel(args.target, s.layers, { ...opts, simulation: { ...sim, otherOps: { precision: 'fp32', fp32: {} } } }),
    await createLatencyModel(args.target, s.layers, { ...opts, simulation: { ...sim, otherOps: { precision: 'fp16', fp32: {} } } }),
  ];
  for (const p of ['int8', 'mixed', 'fp16'] as Precision[]) {
    const ms = await Promise.all(models.map(async (m) => (await m.estimate(uniformPolicy(names, p))).totalMs.toFixed(4)));
    console.log(`${s.name.padEnd(14)} all-${p.padEnd(6)} ${ms.join(' / ')}`);
  }
}

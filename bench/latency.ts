/**
 * Latency bench: the figures of the latency models on the built-in PP-OCRv4 recognizer, and how fast they answer.
 *   node --import tsx bench/latency.ts [--ort-runs 20] [--threads 2]
 * Prints: roofline totals per GPU (all-fp32/fp16/int8, alternating int8/fp16), roofline estimates per second,
 * and the measured ort-cpu median wall time of the simulated model per uniform policy on this machine.
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { loadModel } from '../src/onnx/model.ts';
import { upgradeOpset } from '../src/onnx/opset.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { PPOCR_MODELS } from '../src/examples.ts';
import { buildLatencyGraph } from '../src/latency/onnx-graph.ts';
import { planKernels } from '../src/latency/graph.ts';
import { estimateRoofline } from '../src/latency/roofline.ts';
import { deviceIds, loadDeviceProfile } from '../src/latency/device-profile.ts';
import { createLatencyModel } from '../src/latency/index.ts';
import { uniformPolicy, type LayerPolicy, type Precision } from '../src/policy.ts';

const { values: args } = parseArgs({ options: { 'ort-runs': { type: 'string', default: '20' }, threads: { type: 'string', default: '2' } } });

const ex = PPOCR_MODELS.rec;
const model = upgradeOpset(loadModel(ex.path));
let t0 = performance.now();
const { graph, layers, inputShapes } = await discoverLayers(model, { inputShapes: { x: ex.inputShape } });
const latencyGraph = await buildLatencyGraph(model, graph, layers, inputShapes);
const plan = planKernels(latencyGraph);
console.log(`PP-OCRv4 rec ${ex.inputShape.join('x')}: ${layers.length} layers, ${plan.kernels.length} engine kernels; discovery + latency graph ${((performance.now() - t0) / 1000).toFixed(2)} s`);

const names = layers.map((l) => l.name);
const alternating: LayerPolicy = Object.fromEntries(names.map((n, i) => [n, { precision: i % 2 ? 'fp16' : 'int8' }]));
console.log('\nroofline, batch 1 (ms)');
console.log('device       fp32     fp16     int8     alt int8/fp16');
for (const id of deviceIds()) {
  const d = loadDeviceProfile(id);
  const ms = (['fp32', 'fp16', 'int8'] as Precision[]).map((p) => estimateRoofline(plan, d, uniformPolicy(names, p)).totalMs);
  const alt = estimateRoofline(plan, d, alternating).totalMs;
  console.log(`${id.padEnd(11)} ${[...ms, alt].map((x) => x.toFixed(3).padStart(8)).join(' ')}`);
}

const t4 = loadDeviceProfile('t4');
const n = 2000;
t0 = performance.now();
for (let i = 0; i < n; i++) estimateRoofline(plan, t4, i % 2 ? alternating : uniformPolicy(names, 'int8'));
const perEstimate = (performance.now() - t0) / n;
console.log(`\nroofline estimate: ${(perEstimate * 1000).toFixed(1)} us each (${Math.round(1000 / perEstimate)} per second)`);

const threads = Number(args.threads);
const ort = await createLatencyModel('ort-cpu', layers, { model, graph, inputShapes, latencyGraph, threads, timedRuns: Number(args['ort-runs']), warmupRuns: 3 });
console.log(`\nort-cpu: simulated model, median of ${args['ort-runs']} runs after 3 warm-up, intraOpNumThreads ${threads}, ${cpus()[0]?.model ?? 'cpu'} (${cpus().length} logical CPUs)`);
for (const p of ['fp32', 'fp16', 'int8', 'mixed'] as Precision[]) {
  t0 = performance.now();
  const e = await ort.estimate(uniformPolicy(names, p));
  console.log(`  all-${p.padEnd(5)} ${e.totalMs.toFixed(2).padStart(7)} ms  (measured in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${(e.otherMs ?? 0).toFixed(2)} ms outside layers)`);
}
t0 = performance.now();
await ort.estimate(uniformPolicy(names, 'int8'));
console.log(`  cached repeat: ${(performance.now() - t0).toFixed(2)} ms`);

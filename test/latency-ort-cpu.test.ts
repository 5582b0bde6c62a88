import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { decodeModel, encodeModel, type ModelProto } from '../src/onnx/model.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import type { Graph } from '../src/onnx/graph.ts';
import type { Layer } from '../src/onnx/layer-types.ts';
import { buildLatencyGraph } from '../src/latency/onnx-graph.ts';
import { planKernels } from '../src/latency/graph.ts';
import { OrtCpuLatencyModel, median, simulatedModelBuilder } from '../src/latency/ort-cpu.ts';
import { createLatencyModel, parseTarget, timingSimulation } from '../src/latency/index.ts';
import { policyKey, uniformPolicy, type LayerPolicy } from '../src/policy.ts';
import { isUserError } from '../src/errors.ts';
import { tinyCnn } from './fixtures/models.ts';

let model: ModelProto;
let graph: Graph;
let layers: Layer[];
let inputShapes: Record<string, number[]>;

before(async () => {
  model = tinyCnn();
  ({ graph, layers, inputShapes } = await discoverLayers(model));
});

test('median of odd and even lists', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('ort-cpu times each policy once (cached by policyKey) and splits the median over the layers', async () => {
  const built: string[] = [];
  const names = layers.map((l) => l.name);
  const lg = await buildLatencyGraph(model, graph, layers, inputShapes);
  const ort = new OrtCpuLatencyModel({
    buildModel: async (policy: LayerPolicy) => {
      built.push(policyKey(names, policy));
      return encodeModel(model);
    },
    layers, inputShapes, graph: lg, plan: planKernels(lg), threads: 1, warmupRuns: 1, timedRuns: 5,
  });
  const fp16 = uniformPolicy(names, 'fp16');
  const a = await ort.estimate(fp16);
  const b = await ort.estimate({ ...fp16 });
  assert.equal(a, b);
  assert.equal(built.length, 1);
  assert.equal(ort.measurements, 1);
  await ort.estimate(uniformPolicy(names, 'int8'));
  assert.equal(built.length, 2);
  assert.ok(a.totalMs > 0);
  assert.deepEqual(a.perLayer.map((l) => [l.name, l.precision]), names.map((n) => [n, 'fp16']));
  const sum = a.perLayer.reduce((s, l) => s + l.ms + l.reformatMs, 0) + (a.otherMs ?? 0);
  assert.ok(Math.abs(sum - a.totalMs) < 1e-9 * a.totalMs + 1e-12);
  // onnxruntime's profiler names nodes after the ONNX nodes (or their outputs): every conv is found
  for (const name of ['conv1', 'dw2', 'pw3']) assert.ok(a.perLayer.find((l) => l.name === name)!.ms > 0, name);
});

test('a failed measurement is not cached', async () => {
  let calls = 0;
  const ort = new OrtCpuLatencyModel({
    buildModel: async () => {
      calls++;
      if (calls === 1) throw new Error('simulator failed');
      return encodeModel(model);
    },
    layers, inputShapes, threads: 1, warmupRuns: 0, timedRuns: 1, perLayer: false,
  });
  const p = uniformPolicy(layers.map((l) => l.name), 'fp16');
  await assert.rejects(ort.estimate(p), /simulator failed/);
  const e = await ort.estimate(p);
  assert.ok(e.totalMs > 0 && e.otherMs === e.totalMs, 'without per-layer profiling everything is otherMs');
});

test('the default builder times the simulated model: Q/DQ for int8, none for fp32', async () => {
  const build = simulatedModelBuilder(await timingSimulation(model, graph, layers, inputShapes));
  const names = layers.map((l) => l.name);
  const count = (bytes: Uint8Array, op: string) => (decodeModel(bytes).graph!.node ?? []).filter((n) => n.opType === op).length;
  assert.equal(count(await build(uniformPolicy(names, 'fp32')), 'QuantizeLinear'), 0);
  assert.ok(count(await build(uniformPolicy(names, 'int8')), 'QuantizeLinear') >= layers.length);
  const ort = await createLatencyModel('ort-cpu', layers, { model, graph, inputShapes, threads: 1, warmupRuns: 1, timedRuns: 3 });
  assert.equal(ort.target, 'ort-cpu');
  const est = await ort.estimate(uniformPolicy(names, 'int8'));
  assert.ok(est.totalMs > 0);
});

test('targets parse; an unknown one is a user error listing the known ones', () => {
  assert.deepEqual(parseTarget('T4'), { kind: 'roofline', device: 't4' });
  assert.deepEqual(parseTarget('ort-cpu'), { kind: 'ort-cpu' });
  assert.deepEqual(parseTarget('profile:./p'), { kind: 'profile', dir: './p' });
  assert.throws(() => parseTarget('rtx4090'), (e) => isUserError(e) && /known targets: a10, a100, h100, h200, l4, orin-agx, orin-nano, t4, xavier-agx, ort-cpu, profile:DIR/.test((e as Error).message));
  assert.throws(() => parseTarget('profile:'), (e) => isUserError(e) && /needs a folder/.test((e as Error).message));
});

test('--batch on a model with a fixed batch dimension is a user error', async () => {
  const fixed = tinyCnn({ batch: 1 });
  const d = await discoverLayers(fixed);
  await assert.rejects(
    createLatencyModel('ort-cpu', d.layers, { model: fixed, graph: d.graph, inputShapes: d.inputShapes, batch: 4, buildModel: async () => encodeModel(fixed) }),
    (e) => isUserError(e) && /fixed batch of 1/.test((e as Error).message),
  );
});

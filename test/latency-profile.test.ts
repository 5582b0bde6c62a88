import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { discoverLayers } from '../src/onnx/layers.ts';
import { buildLatencyGraph } from '../src/latency/onnx-graph.ts';
import { planKernels, type KernelPlan, type LatencyGraph } from '../src/latency/graph.ts';
import { importBuild, mapEngineLayer, nameParts, NodeIndex, parseLayerInfo, parseTrtProfile } from '../src/latency/trt-profile.ts';
import { ProfileLatencyModel, readProfileDir } from '../src/latency/profile-model.ts';
import { loadDeviceProfile } from '../src/latency/device-profile.ts';
import { estimateRoofline } from '../src/latency/roofline.ts';
import { averageRanks, spearman } from '../src/latency/validate.ts';
import { uniformPolicy } from '../src/policy.ts';
import { isUserError } from '../src/errors.ts';
import { tinyCnn } from './fixtures/models.ts';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'trt-profile-tinycnn');
let graph: LatencyGraph;
let plan: KernelPlan;

before(async () => {
  const model = tinyCnn();
  const d = await discoverLayers(model);
  graph = await buildLatencyGraph(model, d.graph, d.layers, d.inputShapes);
  plan = planKernels(graph);
});

test('fused engine-layer names split into ONNX node names', () => {
  assert.deepEqual(nameParts('conv1 + relu1'), ['conv1', 'relu1']);
  assert.deepEqual(nameParts('pw3 + PWN(sig3, swish3)'), ['pw3', 'sig3', 'swish3']);
  assert.deepEqual(nameParts('Conv_59 || Conv_88'), ['Conv_59', 'Conv_88']);
  assert.deepEqual(
    nameParts('PWN(PWN(PWN(209 + (Unnamed Layer* 11) [Shuffle] + Add_43, Clip_46), Mul_47), PWN(215 + (Unnamed Layer* 16) [Shuffle], Div_49))'),
    ['209', 'Add_43', 'Clip_46', 'Mul_47', '215', 'Div_49'],
  );
});

test('the trtexec profile format: {count} first, then per-layer times (median preferred)', () => {
  const p = parseTrtProfile([{ count: 10 }, { name: 'a', timeMs: 5, averageMs: 0.5, medianMs: 0.4, percentage: 50 }, { name: 'b', timeMs: 2 }]);
  assert.equal(p.count, 10);
  assert.deepEqual(p.layers, [{ name: 'a', ms: 0.4 }, { name: 'b', ms: 0.2 }]);
  assert.throws(() => parseTrtProfile({ Layers: [] }), /array/);
  assert.throws(() => parseTrtProfile([{ name: 'a' }]), /count/);
  assert.throws(() => parseTrtProfile([{ count: 1 }, { name: 'a' }]), /no medianMs/);
});

test('the hand-written FP16 profile of the tiny CNN maps every engine layer, fused and reformat ones included', () => {
  const files = readProfileDir(FIXTURE);
  const fp16 = importBuild('fp16', files.fp16!.profile, graph, plan, files.fp16!.info);
  assert.deepEqual(fp16.unmapped, []);
  assert.deepEqual(fp16.unknownParts, []);
  assert.equal(fp16.mapped.length, 9);
  const byName = Object.fromEntries(fp16.mapped.map((m) => [m.name, m]));
  assert.deepEqual(byName['pw3 + PWN(sig3, swish3)'].nodes, ['pw3', 'sig3', 'swish3']);
  assert.deepEqual(byName['Reformatting CopyNode for Input Tensor 0 to conv1 + relu1'].nodes, ['conv1', 'relu1']);
  assert.equal(byName['Reformatting CopyNode for Input Tensor 0 to conv1 + relu1'].reformat, true);
  const ms = (name: string) => fp16.layers.get(name)!;
  assert.deepEqual(ms('conv1'), { ms: 0.0057, reformatMs: 0.0031 });
  assert.deepEqual(ms('dw2'), { ms: 0.0046, reformatMs: 0 });
  // the pooling follows pw3's precision and the flatten is a view of its output: both are reported under pw3
  assert.ok(Math.abs(ms('pw3').ms - (0.0046 + 0.0035 + 0.0018)) < 1e-12);
  assert.deepEqual(ms('fc'), { ms: 0.0041, reformatMs: 0 });
  assert.deepEqual(ms('node_of_logits'), { ms: 0.0039, reformatMs: 0.003 });
  const attributed = [...fp16.layers.values()].reduce((s, l) => s + l.ms + l.reformatMs, 0);
  assert.ok(Math.abs(attributed - fp16.totalMs) < 1e-12, 'every millisecond of the profile lands on a layer');
});

test('the INT8 profile maps its Myelin region by name and by layer-info metadata alike', () => {
  const files = readProfileDir(FIXTURE);
  assert.ok(files.int8!.infoPath?.endsWith('int8.layers.json'));
  for (const info of [files.int8!.info, []]) {
    const int8 = importBuild('int8', files.int8!.profile, graph, plan, info);
    assert.deepEqual(int8.unmapped, []);
    const foreign = int8.mapped.find((m) => m.name.startsWith('{ForeignNode'))!;
    assert.deepEqual(foreign.nodes, ['flat', 'fc', 'node_of_logits']);
    // the region's time splits between its two layers by MACs (fc 160, MatMul 40)
    assert.ok(Math.abs(int8.layers.get('fc')!.ms - 0.0062 * 0.8) < 1e-12);
    assert.ok(Math.abs(int8.layers.get('node_of_logits')!.ms - 0.0062 * 0.2) < 1e-12);
    // the output reformat after the region belongs to its last layer
    assert.equal(int8.layers.get('node_of_logits')!.reformatMs, 0.0029);
    assert.equal(int8.layers.get('fc')!.reformatMs, 0);
  }
});

test('layer-info metadata maps engine layers whose names say nothing', () => {
  const index = new NodeIndex(graph);
  const [info] = parseLayerInfo({ Layers: [{ Name: '__myl_Fused_7', LayerType: 'kgen', Metadata: '[ONNX Layer: dw2]\u001f[ONNX Layer: clip2]' }] });
  assert.deepEqual(mapEngineLayer(info.name, index, info.onnxNodes).nodes, ['dw2', 'clip2']);
  assert.deepEqual(mapEngineLayer('__myl_Fused_7', index).nodes, []);
  // default verbosity: names only
  assert.deepEqual(parseLayerInfo({ Layers: ['conv1 + relu1'] }), [{ name: 'conv1 + relu1', onnxNodes: [] }]);
});

test('names that map to no ONNX node are reported, not thrown', () => {
  const profile = parseTrtProfile([
    { count: 1 },
    { name: 'conv1 + relu1', averageMs: 0.01 },
    { name: '(Unnamed Layer* 12) [Constant]', averageMs: 0.001 },
    { name: 'ghost_layer', averageMs: 0.002 },
    { name: 'dw2 + mystery_op', averageMs: 0.003 },
    { name: 'conv1_2', averageMs: 0.004 },
    { name: 'fc_out', averageMs: 0.005 },
  ]);
  const b = importBuild('fp16', profile, graph, plan);
  assert.deepEqual(b.unmapped.map((u) => [u.name, u.reason]), [
    ['(Unnamed Layer* 12) [Constant]', 'TensorRT-internal layer'],
    ['ghost_layer', 'no ONNX node named "ghost_layer"'],
  ]);
  assert.deepEqual(b.unknownParts, ['mystery_op']);
  assert.equal(b.layers.get('dw2')!.ms, 0.003);
  assert.equal(b.layers.get('conv1')!.ms, 0.01 + 0.004, 'conv1_2 is an extra layer of node conv1');
  assert.equal(b.layers.get('fc')!.ms, 0.005, 'a tensor name maps to the node producing it');
});

test('a profile folder without an INT8 profile, or with broken JSON, is a user error naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-profiles-'));
  copyFileSync(join(FIXTURE, 'fp16.profile.json'), join(dir, 'fp16.profile.json'));
  assert.throws(() => readProfileDir(dir), (e) => isUserError(e) && /lacks the int8 profile/.test((e as Error).message));
  writeFileSync(join(dir, 'int8.profile.json'), '[{"count": 3}, {"name": ');
  assert.throws(() => readProfileDir(dir), (e) => isUserError(e) && /int8\.profile\.json is not valid JSON/.test((e as Error).message));
  writeFileSync(join(dir, 'int8.profile.json'), '[{"count": 3}, {"name": "x"}]');
  assert.throws(() => readProfileDir(dir), (e) => isUserError(e) && /int8\.profile\.json: entry 1/.test((e as Error).message));
  assert.throws(() => readProfileDir(join(dir, 'nope')), (e) => isUserError(e) && /does not exist/.test((e as Error).message));
});

test('profile latency: a layer costs its time in the build of its precision; mixed policies add reformats', async () => {
  const model = new ProfileLatencyModel(`profile:${FIXTURE}`, graph, plan, readProfileDir(FIXTURE), loadDeviceProfile('t4'));
  const names = graph.layers.map((l) => l.name);
  const fp16 = await model.estimate(uniformPolicy(names, 'fp16'));
  const int8 = await model.estimate(uniformPolicy(names, 'int8'));
  assert.deepEqual(fp16.perLayer.map((l) => l.ms), names.map((n) => model.builds.fp16!.layers.get(n)!.ms));
  assert.deepEqual(int8.perLayer.map((l) => l.ms), names.map((n) => model.builds.int8!.layers.get(n)!.ms));
  assert.equal(fp16.otherMs, 0);
  const mixed = await model.estimate({ ...uniformPolicy(names, 'int8'), dw2: { precision: 'fp16' } });
  assert.equal(mixed.perLayer[1].ms, model.builds.fp16!.layers.get('dw2')!.ms);
  const reformats = (e: typeof fp16) => e.perLayer.reduce((s, l) => s + l.reformatMs, 0);
  assert.ok(reformats(mixed) > reformats(int8));
  // fp32 has no build here: the fp16 time scaled by the roofline's fp32/fp16 ratio of that layer (tiny layers can
  // run faster in fp32 than in fp16, as measured on the H200: shorter fixed cost of the fp32 kernels)
  const fp32 = await model.estimate(uniformPolicy(names, 'fp32'));
  const d = loadDeviceProfile('t4');
  const roof = (p: 'fp16' | 'fp32') => estimateRoofline(plan, d, uniformPolicy(names, p)).perLayer;
  fp32.perLayer.forEach((l, i) => {
    const expected = fp16.perLayer[i].ms * (roof('fp32')[i].ms / roof('fp16')[i].ms);
    assert.ok(Math.abs(l.ms - expected) < 1e-12, `${l.name}: ${l.ms} != ${expected}`);
  });
});

test('Spearman rho: average ranks for ties, +1 / -1 for monotone orders', () => {
  assert.deepEqual(averageRanks([10, 20, 20, 5]), [2, 3.5, 3.5, 1]);
  assert.equal(spearman([1, 2, 3, 4], [10, 100, 1000, 10000]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  // with a tie: y = [2, 1, 4, 3, 3] ranks [2, 1, 5, 3.5, 3.5]; Pearson of the ranks = 5.5 / sqrt(10 * 9.5)
  const rho = spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 3]);
  assert.ok(Math.abs(rho - 5.5 / Math.sqrt(95)) < 1e-12, String(rho));
  assert.ok(Number.isNaN(spearman([1], [1])));
});

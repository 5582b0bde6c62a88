import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadModel } from '../src/onnx/model.ts';
import { upgradeOpset } from '../src/onnx/opset.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import { PPOCR_MODELS } from '../src/examples.ts';
import { buildLatencyGraph } from '../src/latency/onnx-graph.ts';
import { planKernels, type KernelPlan } from '../src/latency/graph.ts';
import { estimateRoofline } from '../src/latency/roofline.ts';
import { deviceIds, loadDeviceProfile } from '../src/latency/device-profile.ts';
import { uniformPolicy, type LayerPolicy } from '../src/policy.ts';

const plans: Partial<Record<'rec' | 'det', KernelPlan>> = {};

before(async () => {
  for (const id of ['rec', 'det'] as const) {
    const ex = PPOCR_MODELS[id];
    const model = upgradeOpset(loadModel(ex.path));
    const { graph, layers, inputShapes } = await discoverLayers(model, { inputShapes: { x: ex.inputShape } });
    plans[id] = planKernels(await buildLatencyGraph(model, graph, layers, inputShapes));
  }
});

test('the PP-OCR plans hold every layer and fuse the decomposed hardswish into its conv', () => {
  const rec = plans.rec!;
  assert.equal(rec.kernels.filter((k) => k.kind === 'layer').length, rec.layers.length);
  // conv + (x * clip(x + 3, 0, 6) / 6): the conv kernel swallows the pointwise chain
  const hswish = rec.kernels.find((k) => k.layer?.activation === 'hardswish')!;
  const ops = new Set(hswish.nodes.map((n) => n.replace(/^p2o\.|\.\d+$/g, '')));
  assert.ok(['Add', 'Clip', 'Div', 'Mul'].every((op) => ops.has(op)), hswish.nodes.join(' '));
  assert.deepEqual(hswish.reads.length, 1);
  assert.ok(rec.kernels.length < rec.layers.length * 2, `${rec.kernels.length} kernels for ${rec.layers.length} layers`);
  assert.ok(plans.det!.layers.some((l) => l.op === 'ConvTranspose'));
});

for (const id of ['rec', 'det'] as const) {
  // Layers with fewer than 16 channels on either side gain nothing from int8 (channels pad to 32; ModelOpt leaves
  // them in fp16): det's 3-channel stem and 1-channel output ConvTranspose make its all-int8 slower than all-fp16.
  // At batch 1 big GPUs run these layers near their fixed kernel time, where int8 buys about nothing: only fp16 < fp32.
  test(`PP-OCR ${id}: int8 (layers of >= 16 channels) < all-fp16 < all-fp32 on every GPU profile (int8: batch 32)`, () => {
    const plan = plans[id]!;
    const names = plan.layers.map((l) => l.name);
    const wide: LayerPolicy = Object.fromEntries(plan.layers.map((l) => [l.name, { precision: Math.min(l.inChannels, l.outChannels) >= 16 ? 'int8' : 'fp16' }]));
    for (const device of deviceIds()) {
      const d = loadDeviceProfile(device);
      for (const batch of [1, 32]) {
        const [fp32, fp16] = (['fp32', 'fp16'] as const).map((p) => estimateRoofline(plan, d, uniformPolicy(names, p), batch).totalMs);
        const int8 = estimateRoofline(plan, d, wide, batch).totalMs;
        if (batch === 32) assert.ok(int8 < fp16, `${id} on ${device}, batch ${batch}: int8 ${int8} >= fp16 ${fp16}`);
        assert.ok(fp16 < fp32, `${id} on ${device}, batch ${batch}: fp16 ${fp16} >= fp32 ${fp32}`);
      }
    }
  });
}

test('PP-OCR rec: alternating int8/fp16 layer by layer costs more than all-int8 on every GPU', () => {
  const plan = plans.rec!;
  const names = plan.layers.map((l) => l.name);
  const alternating: LayerPolicy = Object.fromEntries(names.map((n, i) => [n, { precision: i % 2 ? 'fp16' : 'int8' }]));
  for (const device of deviceIds()) {
    const d = loadDeviceProfile(device);
    const int8 = estimateRoofline(plan, d, uniformPolicy(names, 'int8')).totalMs;
    const alt = estimateRoofline(plan, d, alternating).totalMs;
    assert.ok(alt > int8, `${device}: alternating ${alt} <= int8 ${int8}`);
  }
});

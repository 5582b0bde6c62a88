import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { discoverLayers } from '../src/onnx/layers.ts';
import { loadDeviceProfile } from '../src/latency/device-profile.ts';
import {
  DATASHEET_EFFICIENCY, fittedEfficiency, gemmShape, isMisaligned, layerKernelTime, parseEfficiencyModel, smoothMax,
  type ClassEfficiency, type EfficiencyModel,
} from '../src/latency/efficiency.ts';
import {
  fitClass, isolatedBytes, isolatedKernelSeconds, kernelSeconds, nelderMead, sampleClass, sweepSamples,
  type KernelSample, type SweepMeasurements,
} from '../src/latency/fit.ts';
import { layerFromShape, layerShapeOf, type LayerShape } from '../src/latency/layer-shape.ts';
import { tinyCnn } from './fixtures/models.ts';

const h200 = loadDeviceProfile('h200');
const conv = (cin: number, cout: number, hw: number, k: number, groups = 1): LayerShape => ({
  op: 'Conv', cin, cout, h: hw, w: hw, oh: hw, ow: hw, kernel: [k, k], stride: [1, 1], pads: [(k - 1) / 2, (k - 1) / 2], dilation: [1, 1], groups,
});

test('a discovered layer and the Layer rebuilt from its shape price the same (shape, MACs, params)', async () => {
  const { layers } = await discoverLayers(tinyCnn());
  assert.ok(layers.length >= 4);
  for (const l of layers) {
    const shape = layerShapeOf(l)!;
    const rebuilt = layerFromShape(shape, l.name);
    assert.equal(rebuilt.macs, l.macs, l.name);
    assert.equal(rebuilt.depthwise, l.depthwise, l.name);
    const [a, b] = [gemmShape(l), gemmShape(rebuilt)];
    assert.deepEqual({ ...b, opClass: b.opClass }, { ...a, opClass: a.opClass }, l.name);
  }
});

test('smoothMax: q = 1 adds, q = Infinity is the roofline max, large q approaches it', () => {
  assert.equal(smoothMax(3, 4, 1), 7);
  assert.equal(smoothMax(3, 4, Infinity), 4);
  assert.ok(Math.abs(smoothMax(3, 4, 2) - 5) < 1e-12);
  assert.ok(smoothMax(3, 4, 8) > 4 && smoothMax(3, 4, 8) < 4.1);
  assert.equal(smoothMax(0, 0, 2), 0);
  assert.ok(Number.isFinite(smoothMax(1e-3, 1e300, 8)));
});

test('stems, asymmetric strides and 197-token products are off the fast paths; aligned layers are not', () => {
  assert.equal(isMisaligned('conv', 3, 27, 32), true);
  assert.equal(isMisaligned('conv', 64, 576, 64), false);
  assert.equal(isMisaligned('depthwise', 96, 9, 1, [2, 1]), true);
  assert.equal(isMisaligned('depthwise', 96, 9, 1, [2, 2]), false);
  assert.equal(isMisaligned('attention', 64, 64, 197), true);
  assert.equal(isMisaligned('attention', 64, 64, 128), false);
  assert.equal(isMisaligned('gemm', 768, 768, 3072), false);
});

test('the fit prices a sample exactly as the roofline does (unit terms scaled = the production path)', () => {
  const terms: ClassEfficiency = { compute: 0.7, memory: 0.6, fixed: 2, overlap: 2, misaligned: 0.4, tileM: 128, tileN: 64 };
  const model: EfficiencyModel = { source: 'test', tileFill: true, classes: { fp16: { ...DATASHEET_EFFICIENCY.classes.fp16, conv: terms }, fp32: DATASHEET_EFFICIENCY.classes.fp32 } };
  const unitTerms: ClassEfficiency = { compute: 1, memory: 1, fixed: 1, overlap: 1, misaligned: 1, tileM: 128, tileN: 64 };
  const unit: EfficiencyModel = { source: 'unit', tileFill: true, classes: { fp16: { ...model.classes.fp16, conv: unitTerms }, fp32: model.classes.fp32 } };
  for (const shape of [conv(64, 128, 28, 3), conv(3, 32, 112, 3), conv(512, 512, 7, 1)]) {
    for (const batch of [1, 32]) {
      const layer = layerFromShape(shape, 'x');
      const g = gemmShape(layer);
      const bytes = isolatedBytes(layer, shape, g, 'fp16', batch);
      const base = layerKernelTime(g, layer.macs, bytes, 'fp16', batch, h200, unit);
      const viaFit = kernelSeconds(terms, base.computeS, bytes / h200.memoryBytesPerS, g.misaligned, h200.launchOverheadS);
      const viaRoofline = isolatedKernelSeconds(shape, 'fp16', batch, h200, model);
      assert.ok(Math.abs(viaFit / viaRoofline - 1) < 1e-12, `${JSON.stringify(shape)} b${batch}: ${viaFit} vs ${viaRoofline}`);
    }
  }
});

test('Nelder-Mead finds the minimum of a shifted quadratic valley', () => {
  const f = (x: number[]) => (x[0] - 1) ** 2 + 10 * (x[1] + 2) ** 2 + (x[0] - 1) * (x[1] + 2);
  const { x, fx } = nelderMead(f, [5, 5]);
  assert.ok(Math.abs(x[0] - 1) < 1e-4 && Math.abs(x[1] + 2) < 1e-4, String(x));
  assert.ok(fx < 1e-8);
});

test('fitting kernels timed by known terms recovers those terms', () => {
  const truth: ClassEfficiency = { compute: 0.55, memory: 0.7, fixed: 2.2, overlap: 3, misaligned: 1, tileM: 128, tileN: 64 };
  const model: EfficiencyModel = { source: 'truth', tileFill: true, classes: { fp16: { ...DATASHEET_EFFICIENCY.classes.fp16, conv: truth }, fp32: DATASHEET_EFFICIENCY.classes.fp32 } };
  const samples: KernelSample[] = [];
  for (const [cin, cout, hw, k] of [[16, 32, 112, 3], [64, 64, 56, 3], [128, 256, 28, 3], [256, 256, 14, 1], [512, 1024, 7, 1], [32, 96, 56, 1], [96, 24, 56, 1], [384, 384, 14, 3], [1024, 256, 14, 1], [48, 48, 28, 5]]) {
    for (const batch of [1, 32]) {
      const shape = conv(cin, cout, hw, k);
      samples.push({ shape, precision: 'fp16', batch, us: isolatedKernelSeconds(shape, 'fp16', batch, h200, model) * 1e6 });
    }
  }
  assert.ok(samples.every((s) => sampleClass(s) === 'conv'));
  const fit = fitClass(samples, h200, { launchS: h200.launchOverheadS });
  assert.equal(fit.terms.tileM, 128);
  assert.equal(fit.terms.tileN, 64);
  assert.ok(fit.medianRelativeError < 0.01, String(fit.medianRelativeError));
  for (const k of ['compute', 'memory', 'fixed'] as const) assert.ok(Math.abs(fit.terms[k] / truth[k] - 1) < 0.05, `${k}: ${fit.terms[k]} vs ${truth[k]}`);
});

test('sweep samples leave out every shape a held-out model has, and take the first run\'s time', () => {
  const a = conv(64, 64, 56, 3);
  const b = conv(32, 32, 28, 1);
  const key = (s: LayerShape) => JSON.stringify(s);
  const run = (us: number, sweep: LayerShape[], held: LayerShape[]): SweepMeasurements => ({
    device: 'x', torch: '', cudnn: 0, batches: [1], int8Gemm: {}, extras: {},
    shapes: Object.fromEntries([...sweep, ...held].map((s) => [key(s), s])),
    times: Object.fromEntries([...sweep, ...held].map((s) => [key(s), { fp16: { 1: us } }])),
    sweep: sweep.map(key),
    models: { m: { source: '', input: [], layers: held.map(key) } },
  });
  const { samples, shapes, excluded } = sweepSamples([run(5, [a, b], [b]), run(7, [a], [])]);
  assert.equal(shapes, 1);
  assert.equal(excluded, 1);
  assert.deepEqual(samples.map((s) => [key(s.shape), s.us]), [[key(a), 5]]);
});

test('the shipped fit is reproducible from the committed measurements (the attention class, fp16)', () => {
  const runs = ['measurements-h200.json', 'measurements-h200-run2.json']
    .map((f) => JSON.parse(readFileSync(new URL(`../bench/latency-fit/${f}`, import.meta.url), 'utf8')) as SweepMeasurements);
  const { samples } = sweepSamples(runs);
  const attention = samples.filter((s) => s.precision === 'fp16' && sampleClass(s) === 'attention');
  assert.ok(attention.length >= 40, String(attention.length));
  const fit = fitClass(attention, h200, { launchS: h200.launchOverheadS });
  const shipped = fittedEfficiency().classes.fp16.attention;
  for (const k of ['compute', 'memory', 'fixed', 'overlap', 'misaligned'] as const) {
    assert.ok(Math.abs(fit.terms[k] / shipped[k] - 1) < 0.01, `${k}: refit ${fit.terms[k]} vs shipped ${shipped[k]}`);
  }
  assert.deepEqual([fit.terms.tileM, fit.terms.tileN], [shipped.tileM, shipped.tileN]);
});

test('an efficiency file with a missing or non-positive term is rejected, naming it', () => {
  const raw = JSON.parse(readFileSync(new URL('../src/latency/efficiency-fit.json', import.meta.url), 'utf8'));
  assert.match(parseEfficiencyModel(raw, 'fit').source, /sweep shapes measured on an NVIDIA H200/);
  raw.classes.fp32.depthwise.memory = 0;
  assert.throws(() => parseEfficiencyModel(raw, 'fit.json'), /classes\.fp32\.depthwise\.memory/);
});

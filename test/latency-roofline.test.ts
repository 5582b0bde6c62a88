import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import seedrandom from 'seedrandom';
import { deviceIds, loadDeviceProfile, parseDeviceProfile } from '../src/latency/device-profile.ts';
import { alignmentUtilization, gemmShape, waveUtilization } from '../src/latency/efficiency.ts';
import { planKernels, type LatencyGraph } from '../src/latency/graph.ts';
import { estimateRoofline, priceKernels, inputPrecision, outputPrecision } from '../src/latency/roofline.ts';
import { uniformPolicy, PRECISIONS, type LayerPolicy, type Precision } from '../src/policy.ts';
import { chainGraph, convLayer } from './latency-helpers.ts';

const GPUS = ['a10', 'a100', 'h100', 'h200', 'l4', 'orin-agx', 'orin-nano', 't4', 'xavier-agx'];

test('every GPU of the issue has a profile whose numbers all carry a source', () => {
  assert.deepEqual(deviceIds(), GPUS);
  for (const id of GPUS) {
    const path = fileURLToPath(new URL(`../src/latency/profiles/${id}.json`, import.meta.url));
    const file = parseDeviceProfile(JSON.parse(readFileSync(path, 'utf8')), path);
    assert.equal(file.id, id);
    for (const field of ['int8Tops', 'fp16Tflops', 'fp32Tflops', 'memoryGBs'] as const) {
      assert.match(file[field].source, /datasheet|Data Sheet|Technical Brief|whitepaper|Derived/i, `${id}.${field}`);
    }
    const d = loadDeviceProfile(id);
    // dense tensor-core int8 is twice fp16 on every listed architecture; CUDA-core fp32 is far below both
    assert.ok(Math.abs(d.int8OpsPerS / d.fp16FlopsPerS - 2) < 0.05, id);
    assert.ok(d.fp32FlopsPerS < d.fp16FlopsPerS / 3, id);
  }
  assert.equal(loadDeviceProfile('t4').int8OpsPerS, 130e12);
  assert.equal(loadDeviceProfile('t4').memoryBytesPerS, 320e9);
});

test('a profile with an unsourced number is rejected', () => {
  const t4 = JSON.parse(readFileSync(fileURLToPath(new URL('../src/latency/profiles/t4.json', import.meta.url)), 'utf8'));
  t4.memoryGBs = { value: 320 };
  assert.throws(() => parseDeviceProfile(t4, 't4.json'), /memoryGBs/);
});

test('actions map to the precisions TensorRT reads and writes (mixed: int8 in, fp16 out)', () => {
  assert.deepEqual(PRECISIONS.map(inputPrecision), ['int8', 'int8', 'fp16', 'fp32']);
  assert.deepEqual(PRECISIONS.map(outputPrecision), ['int8', 'fp16', 'fp16', 'fp32']);
});

test('small-channel layers use int8 tensor cores worse than fp16 ones; aligned ones fully', () => {
  const stem = gemmShape(convLayer({ name: 'stem', cin: 3, cout: 16, k: 3, h: 24, w: 160, input: 'x', output: 'y' }));
  assert.ok(alignmentUtilization(stem, 'int8') < alignmentUtilization(stem, 'fp16'));
  assert.equal(alignmentUtilization(stem, 'fp32'), 1);
  const wide = gemmShape(convLayer({ name: 'wide', cin: 256, cout: 256, k: 3, h: 28, w: 28, input: 'x', output: 'y' }));
  assert.equal(alignmentUtilization(wide, 'int8'), 1);
  assert.equal(alignmentUtilization(wide, 'fp16'), 1);
  // batch fills the SMs of a big GPU
  assert.ok(waveUtilization(wide, 1, 132) < waveUtilization(wide, 32, 132));
});

test('a depthwise conv gains less from int8 than a dense conv of equal MACs, on every GPU', () => {
  const dense = planKernels(chainGraph([{ name: 'dense', cin: 64, cout: 64, k: 3, h: 28, w: 28 }]));
  const dw = planKernels(chainGraph([{ name: 'dw', cin: 256, cout: 256, k: 3, groups: 256, h: 112, w: 112 }]));
  assert.equal(dense.layers[0].macs, dw.layers[0].macs);
  assert.ok(dw.layers[0].depthwise && !dense.layers[0].depthwise);
  for (const id of GPUS) {
    const d = loadDeviceProfile(id);
    for (const batch of [1, 8]) {
      const t = (plan: typeof dense, p: Precision) => priceKernels(plan, d, { [plan.layers[0].name]: { precision: p } }, batch).kernels[0].seconds;
      const denseGain = t(dense, 'fp16') / t(dense, 'int8');
      const dwGain = t(dw, 'fp16') / t(dw, 'int8');
      assert.ok(denseGain > 1.03, `${id} batch ${batch}: dense gain ${denseGain}`);
      assert.ok(dwGain < denseGain, `${id} batch ${batch}: depthwise gain ${dwGain} >= dense gain ${denseGain}`);
    }
  }
});

const chain = () => chainGraph([
  { name: 'c0', cin: 32, cout: 64, k: 3, h: 56, w: 56 },
  { name: 'c1', cin: 64, cout: 64, k: 3, h: 56, w: 56 },
  { name: 'c2', cin: 64, cout: 128, k: 1, h: 56, w: 56 },
  { name: 'c3', cin: 128, cout: 128, k: 3, h: 56, w: 56 },
  { name: 'c4', cin: 128, cout: 64, k: 1, h: 56, w: 56 },
  { name: 'c5', cin: 64, cout: 64, k: 3, h: 56, w: 56 },
]);

test('activations fuse into their conv: one kernel per layer, reads and writes only at the boundaries', () => {
  const plan = planKernels(chain());
  assert.equal(plan.kernels.length, 6);
  assert.deepEqual(plan.kernels.map((k) => k.nodes.length), [2, 2, 2, 2, 2, 2]);
  assert.deepEqual(plan.kernels[1].reads, ['c0.act']);
  assert.deepEqual(plan.kernels[1].writes, ['c1.act']);
  assert.deepEqual(plan.outputs, ['c5.act']);
});

test('alternating int8/fp16 layer by layer costs more than all-int8 and than all-fp16 (reformat coupling)', () => {
  const plan = planKernels(chain());
  const names = plan.layers.map((l) => l.name);
  const alternating: LayerPolicy = Object.fromEntries(names.map((n, i) => [n, { precision: i % 2 ? 'fp16' : 'int8' }]));
  for (const id of GPUS) {
    const d = loadDeviceProfile(id);
    const int8 = estimateRoofline(plan, d, uniformPolicy(names, 'int8')).totalMs;
    const fp16 = estimateRoofline(plan, d, uniformPolicy(names, 'fp16')).totalMs;
    const alt = estimateRoofline(plan, d, alternating);
    assert.ok(alt.totalMs > int8, `${id}: alternating ${alt.totalMs} <= all-int8 ${int8}`);
    // every boundary reformats: 5 inside the chain, plus the graph input into int8 and the fp16 output to fp32
    assert.equal(priceKernels(plan, d, alternating).reformats.length, 7);
    assert.ok(alt.perLayer.slice(1).every((l) => l.reformatMs > 0));
    assert.ok(fp16 > int8, id);
  }
});

test('mixed layers write fp16: no reformat before an fp16 consumer, one before an int8 consumer', () => {
  const plan = planKernels(chain());
  const d = loadDeviceProfile('t4');
  const all8 = uniformPolicy(plan.layers.map((l) => l.name), 'int8');
  const reformatted = (c2: Precision, c3: Precision) =>
    priceKernels(plan, d, { ...all8, c2: { precision: c2 }, c3: { precision: c3 } }).reformats.filter((r) => r.tensor === 'c2.act').map((r) => `${r.from}->${r.to}`);
  assert.deepEqual(reformatted('mixed', 'fp16'), []);
  assert.deepEqual(reformatted('int8', 'fp16'), ['int8->fp16']);
  assert.deepEqual(reformatted('mixed', 'int8'), ['fp16->int8']);
  assert.deepEqual(reformatted('int8', 'int8'), []);
  // int8 outputs move half the bytes of fp16: c2's kernel moves less when it writes int8
  const mem = (p: Precision) => priceKernels(plan, d, { ...all8, c2: { precision: p } }).kernels[2].memoryS;
  assert.ok(mem('int8') < mem('mixed'));
});

test('a layer\'s own time depends only on its precision; neighbours act through reformats alone', () => {
  // The environment masks actions with sums of per-layer times: this makes those sums a lower bound.
  const plan = planKernels(chain());
  const names = plan.layers.map((l) => l.name);
  const d = loadDeviceProfile('orin-agx');
  const uniform = new Map((['int8', 'mixed', 'fp16', 'fp32'] as const).map((p) => [p, estimateRoofline(plan, d, uniformPolicy(names, p))]));
  const rng = seedrandom('latency-lower-bound');
  for (let trial = 0; trial < 20; trial++) {
    const policy: LayerPolicy = Object.fromEntries(names.map((n) => [n, { precision: PRECISIONS[Math.floor(rng() * 4)] }]));
    const est = estimateRoofline(plan, d, policy);
    est.perLayer.forEach((l, i) => assert.equal(l.ms, uniform.get(l.precision)!.perLayer[i].ms));
    const sum = est.perLayer.reduce((s, l) => s + l.ms + l.reformatMs, 0);
    assert.ok(Math.abs(sum - est.totalMs) < 1e-12);
  }
});

test('a residual add fuses into the later conv and reads the skip tensor; pooling is its own kernel', () => {
  const g = chainGraph([
    { name: 'a', cin: 16, cout: 32, k: 3, h: 32, w: 32 },
    { name: 'b', cin: 32, cout: 32, k: 3, h: 32, w: 32 },
    { name: 'c', cin: 32, cout: 32, k: 3, h: 32, w: 32 },
  ]);
  const graph: LatencyGraph = {
    ...g,
    nodes: [
      ...g.nodes,
      { name: 'add', op: 'Add', inputs: ['a.act', 'c.act'], outputs: ['sum'] },
      { name: 'reshape', op: 'Reshape', inputs: ['sum', 'shape_const'], outputs: ['sum2'] },
      { name: 'pool', op: 'GlobalAveragePool', inputs: ['sum2'], outputs: ['pooled'] },
    ],
    tensorElems: new Map([...g.tensorElems, ['sum', 32 * 32 * 32], ['sum2', 32 * 32 * 32], ['pooled', 32]]),
    outputs: ['pooled'],
  };
  const plan = planKernels(graph);
  assert.equal(plan.kernels.length, 4);
  assert.deepEqual(plan.kernels[2].nodes, ['c', 'c.relu', 'add']);
  assert.deepEqual(plan.kernels[2].reads, ['b.act', 'a.act']);
  assert.equal(plan.kernels[2].ownReads, 1);
  assert.deepEqual(plan.kernels[0].writes, ['a.act']);
  assert.deepEqual(plan.kernels[3].reads, ['sum'], 'the reshape is a view');
  assert.equal(plan.kernels[3].owner, 'c');
  // c in fp16 after int8 a and b: its input and the skip operand are reformatted to fp16, once each
  const d = loadDeviceProfile('t4');
  const r = priceKernels(plan, d, { a: { precision: 'int8' }, b: { precision: 'int8' }, c: { precision: 'fp16' } }).reformats;
  assert.deepEqual(r.map((x) => [x.tensor, x.from, x.to, x.owner]), [
    ['x', 'fp32', 'int8', 'a'], ['b.act', 'int8', 'fp16', 'c'], ['a.act', 'int8', 'fp16', 'c'], ['pooled', 'fp16', 'fp32', 'c'],
  ]);
});

test('batch scales the work; fixed per-kernel time is amortised', () => {
  const plan = planKernels(chain());
  const names = plan.layers.map((l) => l.name);
  const d = loadDeviceProfile('a10');
  const one = estimateRoofline(plan, d, uniformPolicy(names, 'fp16'), 1).totalMs;
  const eight = estimateRoofline(plan, d, uniformPolicy(names, 'fp16'), 8).totalMs;
  assert.ok(eight > one && eight < 8 * one, `${one} ${eight}`);
});

test('precision changes fuse into non-layer kernels (Q/DQ fusion); between two layers they are reformat kernels', () => {
  // a -> LayerNormalization (no int8 kernel: runs fp16) -> b: TensorRT dequantizes in the normalization's prologue and
  // quantizes in its epilogue, so an all-int8 policy pays no reformat kernel around it (the small-ViT artefact).
  const g = chainGraph([
    { name: 'a', cin: 64, cout: 64, k: 3, h: 28, w: 28 },
    { name: 'b', cin: 64, cout: 64, k: 3, h: 28, w: 28 },
  ]);
  const b = g.layers[1];
  const graph: LatencyGraph = {
    ...g,
    nodes: [
      g.nodes[0], g.nodes[1],
      { name: 'ln', op: 'LayerNormalization', inputs: ['a.act'], outputs: ['a.norm'] },
      { ...g.nodes[2], inputs: ['a.norm', b.weight] }, g.nodes[3],
    ],
    tensorElems: new Map([...g.tensorElems, ['a.norm', 64 * 28 * 28]]),
  };
  const plan = planKernels(graph);
  assert.deepEqual(plan.kernels.map((k) => k.kind), ['layer', 'standalone', 'layer']);
  const d = loadDeviceProfile('t4');
  const tensors = (policy: LayerPolicy) => priceKernels(plan, d, policy).reformats.map((r) => `${r.tensor}:${r.from}->${r.to}`);
  assert.deepEqual(tensors(uniformPolicy(['a', 'b'], 'int8')), ['x:fp32->int8', 'b.act:int8->fp32']);
  assert.deepEqual(tensors({ a: { precision: 'int8' }, b: { precision: 'fp16' } }), ['x:fp32->int8', 'b.act:fp16->fp32']);
  // without the normalization in between, int8 a feeding fp16 b needs a reformat kernel
  const direct = planKernels(chainGraph([{ name: 'a', cin: 64, cout: 64, k: 3, h: 28, w: 28 }, { name: 'b', cin: 64, cout: 64, k: 3, h: 28, w: 28 }]));
  assert.deepEqual(priceKernels(direct, d, { a: { precision: 'int8' }, b: { precision: 'fp16' } }).reformats.map((r) => `${r.tensor}:${r.from}->${r.to}`), ['x:fp32->int8', 'a.act:int8->fp16', 'b.act:fp16->fp32']);
});

/**
 * The roofline prices what model.qdq.onnx runs (src/latency/roofline.ts with a placement): the ops outside the
 * layers in FP16 or FP32 as --other-ops and AutoCast decide, not in the precision of their input; an int8 layer
 * whose readers compute in float writes their type itself (a wider write, no reformat kernel); a Q shared by every
 * reader fuses into the producing kernel; a residual skip fused into an int8 kernel is read in INT8; FP16/FP32
 * boundaries the placement casts at are reformats.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discoverLayers } from '../src/onnx/layers.ts';
import type { ModelProto, NodeProto } from '../src/onnx/model.ts';
import { makeAttr } from '../src/onnx/tensor.ts';
import { collectStatistics, CalibrationTable } from '../src/quant/calibrate.ts';
import { quantizableTensors } from '../src/quant/placement.ts';
import type { SimulationBase } from '../src/quant/simulate.ts';
import { sliceFeeds } from '../src/quant/evaluator.ts';
import { createLatencyModel } from '../src/latency/index.ts';
import type { RooflineLatencyModel } from '../src/latency/roofline.ts';
import { uniformPolicy, type LayerPolicy, type OtherOps } from '../src/policy.ts';
import { makeModel, randomInput, randomTensor, valueInfo } from './fixtures/models.ts';

/** conv_a -> relu -> conv_b -> Add(., x) -> relu -> Softmax over channels -> conv_c. */
function model(): ModelProto {
  const conv = (name: string, x: string, y = name): NodeProto => ({ name, opType: 'Conv', input: [x, `${name}.w`], output: [y], attribute: [makeAttr.ints('kernel_shape', [1, 1])] });
  const nodes: NodeProto[] = [
    conv('conv_a', 'x'), { name: 'relu_a', opType: 'Relu', input: ['conv_a'], output: ['ra'] },
    conv('conv_b', 'ra'), { name: 'residual', opType: 'Add', input: ['conv_b', 'x'], output: ['sum'] },
    { name: 'relu_b', opType: 'Relu', input: ['sum'], output: ['rb'] },
    { name: 'softmax', opType: 'Softmax', input: ['rb'], output: ['p'], attribute: [makeAttr.int('axis', 1)] },
    conv('conv_c', 'p', 'y'),
  ];
  const init = ['conv_a', 'conv_b', 'conv_c'].map((n) => randomTensor(`${n}.w`, [64, 64, 1, 1], n, 0.2));
  return makeModel(nodes, [valueInfo('x', ['N', 64, 32, 32])], [valueInfo('y', ['N', 64, 32, 32])], init);
}

async function roofline(otherOps: OtherOps): Promise<{ latency: RooflineLatencyModel; names: string[] }> {
  const m = model();
  const { graph, layers, inputShapes } = await discoverLayers(m);
  const data = { count: 2, inputs: { x: { data: randomInput([2, 64, 32, 32], 'lat'), dims: [2, 64, 32, 32] } } };
  const stats = await collectStatistics(m, quantizableTensors(graph, layers), 2, (s, e) => sliceFeeds(data, s, e));
  const simulation: SimulationBase = { model: m, graph, layers, calibration: new CalibrationTable(stats, 2), defaultCalibration: { method: 'max' }, otherOps };
  const latency = (await createLatencyModel('t4', layers, { model: m, graph, inputShapes, simulation })) as RooflineLatencyModel;
  return { latency, names: layers.map((l) => l.name) };
}

const fp16 = { precision: 'fp16', fp32: {} } as const;

test('other ops compute in FP16 or FP32 as --other-ops says, whatever the layer before them', async () => {
  const half = await roofline(fp16);
  const full = await roofline({ precision: 'fp32', fp32: {} });
  const int8: LayerPolicy = uniformPolicy(half.names, 'int8');
  const softmax = (r: RooflineLatencyModel) => r.breakdown(int8).kernels.find((k) => k.kernel.op === 'Softmax')!;
  assert.equal(softmax(half.latency).precision, 'fp16', 'TensorRT 11 runs it as model.qdq.onnx types it, not in the int8 of its input');
  assert.equal(softmax(full.latency).precision, 'fp32');
  assert.ok(softmax(full.latency).seconds > softmax(half.latency).seconds);
  assert.ok((await full.latency.estimate(int8)).totalMs > (await half.latency.estimate(int8)).totalMs, 'FP32 other ops cost more');
  // An op AutoCast keeps in FP32 is priced in FP32, with the casts around it.
  const kept = await roofline({ precision: 'fp16', fp32: { softmax: 'range: test' } });
  assert.equal(softmax(kept.latency).precision, 'fp32');
  const reformats = kept.latency.breakdown(int8).reformats.filter((r) => r.tensor === 'p' || r.tensor === 'rb');
  assert.ok(reformats.length > 0, 'the Casts around the FP32 op are reformats');
});

test('an int8 kernel writes its float readers\' type itself; the residual skip is read in INT8; a layer\'s own time ignores its neighbours', async () => {
  const { latency, names } = await roofline(fp16);
  const int8 = uniformPolicy(names, 'int8');
  const b = latency.breakdown(int8);
  // conv_b's kernel takes the residual Add and its ReLU and hands rb to the FP16 Softmax: written in FP16, no kernel.
  const wider = b.reformats.find((r) => r.tensor === 'rb')!;
  assert.deepEqual([wider.from, wider.to], ['int8', 'fp16']);
  assert.ok(wider.seconds < latency.device.launchOverheadS, `a wider write, not a reformat kernel (${wider.seconds} s)`);
  // conv_c quantizes the Softmax's result, its only reader: TensorRT fuses that Q into the Softmax kernel.
  assert.ok(!b.reformats.some((r) => r.tensor === 'p'), 'no separate quantize kernel for p');
  const twoReaders = latency.breakdown({ ...int8, conv_c: { precision: 'fp16' } }).reformats.filter((r) => r.tensor === 'p');
  assert.deepEqual(twoReaders, [], 'an fp16 conv_c reads the fp16 Softmax result as it is');
  // A mixed conv_b still reads the quantized skip in INT8 (its output is what goes FP16).
  const mixed = latency.breakdown({ ...int8, conv_b: { precision: 'mixed' } }).reformats.filter((r) => r.tensor === 'x').map((r) => r.to);
  assert.deepEqual(mixed, ['int8'], 'x is read in INT8 only, by conv_a and by the skip alike');
  // conv_a's own kernel time is the same whatever conv_b runs in.
  const own = (p: LayerPolicy) => latency.breakdown(p).kernels.find((k) => k.kernel.layer?.name === 'conv_a')!.seconds;
  assert.equal(own(int8), own({ ...int8, conv_b: { precision: 'fp16' } }));
  assert.equal(own(int8), own({ ...int8, conv_b: { precision: 'fp32' } }));
});

/**
 * model.qdq.onnx against the rules TensorRT's explicit quantization needs and against the simulation: both render
 * one placement (src/quant/placement.ts), so a policy without FP16 ops gives outputs identical to the simulated
 * model's (same int8 weights, scales and Q/DQ). With FP16 ops (fp16 layers, or --other-ops fp16) the QDQ model
 * holds float16 tensors where the simulation holds float32 values rounded to float16; onnxruntime computes each
 * float16 op in float32 and rounds its result, as the simulation does, so values agree to float16 rounding,
 * except where an int8-reading layer downstream sees a value on the other side of a rounding boundary: outputs
 * within 1% of their range, mean difference within 0.1% of the range. bench/export-qdq.ts measures the largest
 * difference on the built-in example and on a small ViT.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { decodeModel, encodeModel, type ModelProto } from '../src/onnx/model.ts';
import { collectStatistics, CalibrationTable, calibrationTensors } from '../src/quant/calibrate.ts';
import { buildSimulatedModel, placementOf, resolveAmax, type SimulationBase } from '../src/quant/simulate.ts';
import { runModel, type SampleSet } from '../src/quant/evaluator.ts';
import type { LayerPolicy, PolicyFile, Precision } from '../src/policy.ts';
import { readsInt8 } from '../src/policy.ts';
import { buildQdqModel, renderExport } from '../src/export/index.ts';
import { exportFixture, type ExportFixture } from './export-fixture.ts';
import { checkQdqRules } from './export-qdq-rules.ts';
import { randomInput } from './fixtures/models.ts';
import { DataType } from '../src/onnx/model.ts';
import { autocastTensors, classifyOtherOps, collectRanges } from '../src/quant/autocast.ts';

const N = 24;
let fx: ExportFixture;
let base: SimulationBase;
let samples: SampleSet;

before(async () => {
  fx = await exportFixture();
  const data = randomInput([N, 3, 8, 8], 'export-qdq', 2);
  samples = { count: N, inputs: { x: { data, dims: [N, 3, 8, 8] } } };
  const per = 3 * 8 * 8;
  const stats = await collectStatistics(fx.model, calibrationTensors(fx.layers), N, (s, e) => ({ x: { data: data.subarray(s * per, e * per), dims: [e - s, 3, 8, 8] } }));
  base = { model: fx.model, graph: fx.graph, layers: fx.layers, calibration: new CalibrationTable(stats, N), defaultCalibration: { method: 'max' } };
});

/** The policy file a search would save for these decisions: amax as the simulator resolves them. */
function policyFor(lp: LayerPolicy, b: SimulationBase = base): PolicyFile {
  return {
    ...fx.policy,
    layers: fx.layers.map((l) => ({ name: l.name, op: l.op, precision: lp[l.name].precision, macs: l.macs, ...(lp[l.name].calibration ? { calibration: lp[l.name].calibration } : {}) })),
    calibration: { method: 'max', amax: resolveAmax(b, lp) },
    ...(b.otherOps ? { otherOps: b.otherOps } : {}),
  };
}

function decide(precisions: Record<string, Precision>): LayerPolicy {
  return Object.fromEntries(Object.entries(precisions).map(([k, precision]) => [k, { precision }]));
}

async function outputs(model: ModelProto) {
  return runModel(decodeModel(encodeModel(model)), samples, 8);
}

test('int8/mixed policy: Q/DQ rules hold node by node and the outputs equal the simulation\'s exactly', async () => {
  const lp = decide({ conv1: 'int8', conv10: 'int8', 'block:conv': 'mixed', fc: 'int8', gram: 'mixed' });
  lp.conv10.calibration = { method: 'percentile', percentile: 99 };
  const policy = policyFor(lp);
  const { model, placement } = buildQdqModel(fx.model, fx.graph, fx.layers, policy);
  const counts = checkQdqRules(model, fx.graph, fx.layers, lp, placement.kernelOutput);
  // Q/DQ on the quantized layers' inputs only (x, r1, hs10, f, t, tt), none on the int8 results (logits, hs10
  // written by conv10 is conv3's input and quantized as that).
  const needQ = new Set<string>();
  for (const l of fx.layers) if (readsInt8(lp[l.name].precision)) { needQ.add(l.input); if (!l.weightIsConstant) needQ.add(l.weight); }
  assert.equal(counts.q, needQ.size, 'one Q/DQ per quantized input tensor, shared by its readers');
  assert.equal(counts.dq, needQ.size + fx.layers.filter((l) => l.weightIsConstant).length);
  const [sim, qdq] = [await outputs(buildSimulatedModel(base, lp)), await outputs(model)];
  for (let i = 0; i < N; i++) for (const k of Object.keys(sim[i])) assert.deepEqual(qdq[i][k].data, sim[i][k].data, `sample ${i} ${k}`);
});

test('policy with fp16 and fp32 layers: Cast rules hold, outputs match the simulation within the stated tolerance', async () => {
  for (const precisions of [
    { conv1: 'int8', conv10: 'mixed', 'block:conv': 'fp16', fc: 'int8', gram: 'int8' },
    { conv1: 'fp32', conv10: 'fp16', 'block:conv': 'fp16', fc: 'mixed', gram: 'fp16' },
  ] as Array<Record<string, Precision>>) {
    const lp = decide(precisions);
    const policy = policyFor(lp);
    const { model, placement } = buildQdqModel(fx.model, fx.graph, fx.layers, policy);
    checkQdqRules(model, fx.graph, fx.layers, lp, placement.kernelOutput);
    const [sim, qdq] = [await outputs(buildSimulatedModel(base, lp)), await outputs(model)];
    for (const k of Object.keys(sim[0])) {
      const range = Math.max(...sim.map((s) => s[k].data.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
      const bound = 0.01 * range;
      let worst = 0;
      let sum = 0;
      let count = 0;
      for (let i = 0; i < N; i++) {
        sim[i][k].data.forEach((v, j) => {
          const d = Math.abs(v - qdq[i][k].data[j]);
          worst = Math.max(worst, d);
          sum += d;
          count++;
        });
      }
      assert.ok(worst <= bound, `${JSON.stringify(precisions)} ${k}: max |diff| ${worst} > ${bound}`);
      // Most values agree to float16 rounding: the mean difference stays at that scale.
      assert.ok(sum / count <= 1e-3 * range, `${JSON.stringify(precisions)} ${k}: mean |diff| ${sum / count} > ${1e-3 * range}`);
    }
  }
});

test('--other-ops fp16: the export casts exactly where the simulation rounds; outputs agree to float16 rounding', async () => {
  const per = 3 * 8 * 8;
  const data = samples.inputs.x.data;
  const ranges = await collectRanges(fx.model, autocastTensors(fx.graph, fx.layers), N, (s, e) => ({ x: { data: data.subarray(s * per, e * per), dims: [e - s, 3, 8, 8] } }));
  const half: SimulationBase = { ...base, otherOps: classifyOtherOps('fp16', fx.graph, fx.layers, ranges) };
  for (const precisions of [
    { conv1: 'int8', conv10: 'int8', 'block:conv': 'int8', fc: 'int8', gram: 'int8' },
    { conv1: 'int8', conv10: 'mixed', 'block:conv': 'fp16', fc: 'fp32', gram: 'int8' },
  ] as Array<Record<string, Precision>>) {
    const lp = decide(precisions);
    const { model, placement } = buildQdqModel(fx.model, fx.graph, fx.layers, policyFor(lp, half));
    const { types } = checkQdqRules(model, fx.graph, fx.layers, lp, placement.kernelOutput);
    // The pooling and the tokens' transpose run in float16 in the export, and are rounded in the simulation.
    const gap = fx.graph.nodes.findIndex((n) => n.name === 'gap');
    assert.equal(placement.nodeType[gap], 'fp16');
    assert.equal(types.get('g'), DataType.FLOAT16, 'GlobalAveragePool writes float16');
    const sim = buildSimulatedModel(half, lp);
    assert.deepEqual(placementOf(half, lp).qdq.keys().next(), placement.qdq.keys().next(), 'one placement for both');
    const rounds = sim.graph!.node!.filter((n) => n.opType === 'Cast').length;
    assert.ok(rounds > 0, 'the simulation rounds to float16');
    const [a, b] = [await outputs(sim), await outputs(model)];
    for (const k of Object.keys(a[0])) {
      const range = Math.max(...a.map((o) => o[k].data.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
      let worst = 0;
      a.forEach((o, i) => o[k].data.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][k].data[j])))));
      assert.ok(worst <= 0.01 * range, `${JSON.stringify(precisions)} ${k}: max |diff| ${worst} > 1% of ${range}`);
    }
    // And they differ from the all-FP32 other ops: the float16 really is there.
    const fp32 = await outputs(buildSimulatedModel(base, lp));
    assert.ok(Object.keys(a[0]).some((k) => a.some((o, i) => o[k].data.some((v, j) => v !== fp32[i][k].data[j]))));
  }
});

test('the rewrite leaves the input model alone and drops the float weights it replaced', () => {
  const before = encodeModel(fx.model);
  const lp = decide({ conv1: 'int8', conv10: 'fp16', 'block:conv': 'int8', fc: 'int8', gram: 'fp32' });
  const { model } = buildQdqModel(fx.model, fx.graph, fx.layers, policyFor(lp));
  assert.deepEqual(encodeModel(fx.model), before);
  const names = new Set((model.graph!.initializer ?? []).map((t) => t.name));
  for (const w of ['w1', 'w3', 'wfc', 'w10']) assert.ok(!names.has(w), `${w} replaced by its int8 / float16 copy`);
  // The opset-13 model still declares the same inputs and outputs.
  assert.deepEqual(model.graph!.output, fx.model.graph!.output);
  assert.deepEqual(model.graph!.input, fx.model.graph!.input);
});

test('renderExport qdq-onnx writes the bytes of a loadable model', async () => {
  const lp = decide({ conv1: 'int8', conv10: 'mixed', 'block:conv': 'fp16', fc: 'int8', gram: 'int8' });
  const bytes = renderExport('qdq-onnx', { policy: policyFor(lp), layers: fx.layers, graph: fx.graph, model: { path: 'm.onnx', sha256: fx.sha256 } }).content;
  const out = await runModel(bytes, samples, 8, 2);
  assert.equal(out.length, 2);
  assert.deepEqual(Object.keys(out[0]).sort(), ['gram_out', 'logits']);
});

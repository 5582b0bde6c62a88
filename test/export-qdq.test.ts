/**
 * model.qdq.onnx against the rules TensorRT's explicit quantization needs and against the simulation.
 *
 * Tolerance held: a policy without fp16 layers gives outputs identical to the simulated model's (same int8
 * weights, scales and Q/DQ placement). With fp16 layers the QDQ model computes them, fused ops included, in
 * float16 in onnxruntime, where the simulation computes in float32 from float16-rounded operands. Values then
 * agree to float16 rounding, except where an int8-reading layer downstream sees a value on the other side of a
 * rounding boundary: here, int8 outputs within two quantization steps, other outputs within 1% of their range,
 * mean difference within 0.1% of the range. On the example (100 lines) the character accuracy stays within
 * 0.015 of the simulated score: bench/export-qdq.ts measured at most 0.0070 over 15 random policies with fp16
 * layers, 0 for every policy without (test/export-ppocr.test.ts holds the 0.015).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { decodeModel, encodeModel, type ModelProto } from '../src/onnx/model.ts';
import { collectStatistics, CalibrationTable, calibrationTensors } from '../src/quant/calibrate.ts';
import { buildSimulatedModel, resolveAmax, type SimulationBase } from '../src/quant/simulate.ts';
import { runModel, type SampleSet } from '../src/quant/evaluator.ts';
import type { LayerPolicy, PolicyFile, Precision } from '../src/policy.ts';
import { readsInt8 } from '../src/policy.ts';
import { buildQdqModel, renderExport } from '../src/export/index.ts';
import { exportFixture, type ExportFixture } from './export-fixture.ts';
import { checkQdqRules } from './export-qdq-rules.ts';
import { randomInput } from './fixtures/models.ts';

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
function policyFor(lp: LayerPolicy): PolicyFile {
  return {
    ...fx.policy,
    layers: fx.layers.map((l) => ({ name: l.name, op: l.op, precision: lp[l.name].precision, macs: l.macs, ...(lp[l.name].calibration ? { calibration: lp[l.name].calibration } : {}) })),
    calibration: { method: 'max', amax: resolveAmax(base, lp) },
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
  const { model } = buildQdqModel(fx.model, fx.graph, fx.layers, policy);
  const counts = checkQdqRules(model, fx.graph, fx.layers, lp);
  // Q on x, r1, c10's input is r1 (shared), hs10 (int8 out of conv10), f, t, tt, logits; block:conv reads hs10.
  const needQ = new Set<string>();
  for (const l of fx.layers) {
    if (readsInt8(lp[l.name].precision)) { needQ.add(l.input); if (!l.weightIsConstant) needQ.add(l.weight); }
    if (lp[l.name].precision === 'int8') needQ.add(l.fusedOutput);
  }
  assert.equal(counts.q, needQ.size, 'one Q/DQ per int8 tensor, shared by its readers');
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
    const { model } = buildQdqModel(fx.model, fx.graph, fx.layers, policy);
    checkQdqRules(model, fx.graph, fx.layers, lp);
    const [sim, qdq] = [await outputs(buildSimulatedModel(base, lp)), await outputs(model)];
    for (const k of Object.keys(sim[0])) {
      const layer = fx.layers.find((l) => l.fusedOutput === k)!;
      const range = Math.max(...sim.map((s) => s[k].data.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
      // int8 outputs: two steps of the output scale (float32, as in the model); others: 1% of the output range.
      const bound = precisions[layer.name] === 'int8' ? 2 * Math.fround(policy.calibration.amax[k] / 127) * (1 + 1e-5) : 0.01 * range;
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

/**
 * How closely model.qdq.onnx reproduces the simulation, on the built-in example (PP-OCRv4 recognizer, character
 * accuracy): for uniform and seeded random policies, the score of the simulated model and of the exported QDQ
 * model, their largest output difference, and the time to build the QDQ model.
 *
 *   node --import tsx bench/export-qdq.ts [--samples 100] [--calib 64] [--policies 6]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import seedrandom from 'seedrandom';
import { loadModelAndLayers } from '../src/cli/model-options.ts';
import { collectStatistics, CalibrationTable, calibrationTensors } from '../src/quant/calibrate.ts';
import { buildSimulatedModel, resolveAmax, type SimulationBase } from '../src/quant/simulate.ts';
import { runModel, sliceFeeds, type SampleSet } from '../src/quant/evaluator.ts';
import { buildQdqModel } from '../src/export/qdq-onnx.ts';
import { DEFAULT_ACTIONS, type LayerPolicy, type Precision } from '../src/policy.ts';
import { charAccuracy, decodeAll } from '../experiments/ppocr/char-accuracy.mjs';
import { loadRecExample } from '../experiments/ppocr/dataset.ts';

const args = yargs(hideBin(process.argv))
  .option('samples', { type: 'number', default: 100 })
  .option('calib', { type: 'number', default: 64 })
  .option('policies', { type: 'number', default: 6 })
  .strict()
  .parseSync();

const rec = loadRecExample({ limit: args.calib + args.samples });
const m = await loadModelAndLayers({});
const all: SampleSet = { count: rec.count, inputs: rec.inputs };
const calib = { count: args.calib, inputs: sliceFeeds(all, 0, args.calib) };
const evalSet: SampleSet = { count: args.samples, inputs: sliceFeeds(all, args.calib, args.calib + args.samples), labels: rec.labels.slice(args.calib) };
const stats = await collectStatistics(m.model, calibrationTensors(m.layers), calib.count, (s, e) => sliceFeeds(calib, s, e));
const base: SimulationBase = { model: m.model, graph: m.graph, layers: m.layers, calibration: new CalibrationTable(stats, calib.count), defaultCalibration: { method: 'percentile', percentile: 99.99 } };

const rng = seedrandom('bench-export-qdq');
const policies: Array<[string, LayerPolicy]> = [
  ['int8', Object.fromEntries(m.layers.map((l) => [l.name, { precision: 'int8' as Precision }]))],
  ['fp16', Object.fromEntries(m.layers.map((l) => [l.name, { precision: 'fp16' as Precision }]))],
];
for (let i = 0; i < args.policies; i++) {
  const withFp16 = i % 2 === 0;
  const actions: readonly Precision[] = withFp16 ? DEFAULT_ACTIONS : ['int8', 'mixed'];
  policies.push([`random-${i}${withFp16 ? '' : ' (no fp16)'}`, Object.fromEntries(m.layers.map((l) => [l.name, { precision: actions[Math.floor(rng() * actions.length)] }]))]);
}

console.log(`PP-OCRv4 rec, ${m.layers.length} layers, calibration ${calib.count} lines (percentile 99.99), evaluation ${evalSet.count} lines`);
console.log('policy                 sim score  qdq score   |diff|   max |output diff|  build ms');
for (const [name, lp] of policies) {
  const amax = resolveAmax(base, lp);
  const policy = { layers: m.layers.map((l) => ({ name: l.name, op: l.op, precision: lp[l.name].precision, macs: l.macs })), calibration: { method: 'percentile', amax } };
  const t0 = performance.now();
  const { model: qdq } = buildQdqModel(m.model, m.graph, m.layers, policy);
  const buildMs = performance.now() - t0;
  const simOut = await runModel(buildSimulatedModel(base, lp), evalSet, 16);
  const qdqOut = await runModel(qdq, evalSet, 16);
  const simScore = charAccuracy(decodeAll(simOut), evalSet.labels as string[]);
  const qdqScore = charAccuracy(decodeAll(qdqOut), evalSet.labels as string[]);
  let maxDiff = 0;
  simOut.forEach((o, i) => {
    for (const k of Object.keys(o)) o[k].data.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - qdqOut[i][k].data[j]))));
  });
  console.log(`${name.padEnd(22)} ${simScore.toFixed(4).padStart(9)}  ${qdqScore.toFixed(4).padStart(9)}  ${Math.abs(simScore - qdqScore).toFixed(4).padStart(7)}  ${maxDiff.toExponential(2).padStart(17)}  ${buildMs.toFixed(0).padStart(8)}`);
}

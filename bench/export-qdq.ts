/**
 * How closely model.qdq.onnx reproduces the simulation, on the built-in example (PP-OCRv4 recognizer, character
 * accuracy) and on a small ViT built in code (test/fixtures/vit.ts; SQNR vs FP32 on seeded random images), under
 * --other-ops fp32 and fp16: for uniform and seeded random policies, the score of the simulated model and of the
 * exported QDQ model, their largest output difference, the Q/DQ pairs the placement puts in and those the earlier
 * placement (Q/DQ on every int8 layer's result too) would have, and the time to build the QDQ model.
 *
 *   node --import tsx bench/export-qdq.ts [--samples 100] [--calib 64] [--policies 6] [--model builtin|vit|both]
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import seedrandom from 'seedrandom';
import { loadModelAndLayers } from '../src/cli/model-options.ts';
import { discoverLayers } from '../src/onnx/layers.ts';
import type { Graph } from '../src/onnx/graph.ts';
import type { Layer } from '../src/onnx/layer-types.ts';
import type { ModelProto } from '../src/onnx/model.ts';
import { collectStatistics, CalibrationTable } from '../src/quant/calibrate.ts';
import { quantizableTensors } from '../src/quant/placement.ts';
import { autocastTensors, classifyOtherOps, collectRanges } from '../src/quant/autocast.ts';
import { buildSimulatedModel, resolveAmax, type SimulationBase } from '../src/quant/simulate.ts';
import { runModel, sliceFeeds, type SampleSet } from '../src/quant/evaluator.ts';
import { loadMetric } from '../src/quant/metrics.ts';
import { buildQdqModel } from '../src/export/qdq-onnx.ts';
import { DEFAULT_ACTIONS, readsInt8, type LayerPolicy, type OtherOpsPrecision, type Precision } from '../src/policy.ts';
import { charAccuracy, decodeAll } from '../experiments/ppocr/char-accuracy.mjs';
import { loadRecExample } from '../experiments/ppocr/dataset.ts';
import { tinyVit } from '../test/fixtures/vit.ts';
import { randomInput } from '../test/fixtures/models.ts';

const args = yargs(hideBin(process.argv))
  .option('samples', { type: 'number', default: 100 })
  .option('calib', { type: 'number', default: 64 })
  .option('policies', { type: 'number', default: 6 })
  .option('model', { choices: ['builtin', 'vit', 'both'], default: 'both' })
  .strict()
  .parseSync();

interface Subject {
  name: string;
  model: ModelProto;
  graph: Graph;
  layers: Layer[];
  calib: SampleSet;
  evalSet: SampleSet;
  score: (outputs: Awaited<ReturnType<typeof runModel>>, reference: Awaited<ReturnType<typeof runModel>>) => Promise<number>;
  metric: string;
  /** Samples whose result differs between the two (PP-OCR: the decoded text line). */
  differing?: (a: Awaited<ReturnType<typeof runModel>>, b: Awaited<ReturnType<typeof runModel>>) => number;
}

async function builtin(): Promise<Subject> {
  const rec = loadRecExample({ limit: args.calib + args.samples });
  const m = await loadModelAndLayers({});
  const all: SampleSet = { count: rec.count, inputs: rec.inputs };
  const labels = rec.labels.slice(args.calib) as string[];
  return {
    name: 'PP-OCRv4 rec', model: m.model, graph: m.graph, layers: m.layers, metric: 'char accuracy',
    calib: { count: args.calib, inputs: sliceFeeds(all, 0, args.calib) },
    evalSet: { count: args.samples, inputs: sliceFeeds(all, args.calib, args.calib + args.samples) },
    score: async (outputs) => charAccuracy(decodeAll(outputs), labels),
    differing: (a, b) => { const [x, y] = [decodeAll(a), decodeAll(b)]; return x.filter((t: string, i: number) => t !== y[i]).length; },
  };
}

async function vit(): Promise<Subject> {
  const model = tinyVit();
  const { graph, layers } = await discoverLayers(model, { inputShapes: { x: [1, 3, 32, 32] } });
  const n = args.calib + args.samples;
  const all: SampleSet = { count: n, inputs: { x: { data: randomInput([n, 3, 32, 32], 'bench-vit'), dims: [n, 3, 32, 32] } } };
  const sqnr = await loadMetric('sqnr');
  return {
    name: 'tiny ViT', model, graph, layers, metric: 'SQNR vs FP32 (dB)',
    calib: { count: args.calib, inputs: sliceFeeds(all, 0, args.calib) },
    evalSet: { count: args.samples, inputs: sliceFeeds(all, args.calib, n) },
    score: async (outputs, reference) => sqnr.score({ outputs, reference, labels: [] }) as Promise<number>,
  };
}

/** Q/DQ pairs of the earlier placement: every quantized layer's inputs, plus every int8 layer's fused output. */
function earlierPairs(layers: readonly Layer[], lp: LayerPolicy): number {
  const t = new Set<string>();
  for (const l of layers) {
    const p = lp[l.name]?.precision ?? 'fp32';
    if (readsInt8(p)) { t.add(l.input); if (!l.weightIsConstant) t.add(l.weight); }
    if (p === 'int8') t.add(l.fusedOutput);
  }
  return t.size;
}

const subjects = args.model === 'both' ? [await builtin(), await vit()] : [args.model === 'vit' ? await vit() : await builtin()];
for (const s of subjects) {
  const batches = (start: number, end: number) => sliceFeeds(s.calib, start, end);
  const stats = await collectStatistics(s.model, quantizableTensors(s.graph, s.layers), s.calib.count, batches);
  const tensorRanges = await collectRanges(s.model, autocastTensors(s.graph, s.layers), s.calib.count, batches);
  const reference = await runModel(s.model, s.evalSet, 16);
  const rng = seedrandom('bench-export-qdq');
  const policies: Array<[string, LayerPolicy]> = (['int8', 'mixed', 'fp16'] as Precision[]).map((p) => [p, Object.fromEntries(s.layers.map((l) => [l.name, { precision: p }]))]);
  for (let i = 0; i < args.policies; i++) {
    const withFp16 = i % 2 === 0;
    const actions: readonly Precision[] = withFp16 ? DEFAULT_ACTIONS : ['int8', 'mixed'];
    policies.push([`random-${i}${withFp16 ? '' : ' (no fp16)'}`, Object.fromEntries(s.layers.map((l) => [l.name, { precision: actions[Math.floor(rng() * actions.length)] }]))]);
  }
  for (const otherOps of ['fp32', 'fp16'] as OtherOpsPrecision[]) {
    const base: SimulationBase = {
      model: s.model, graph: s.graph, layers: s.layers, calibration: new CalibrationTable(stats, s.calib.count),
      defaultCalibration: { method: 'percentile', percentile: 99.99 }, otherOps: classifyOtherOps(otherOps, s.graph, s.layers, tensorRanges),
    };
    console.log(`\n${s.name}, ${s.layers.length} layers, --other-ops ${otherOps} (${Object.keys(base.otherOps!.fp32).length} ops kept FP32), calibration ${s.calib.count} samples (percentile 99.99), evaluation ${s.evalSet.count}; score = ${s.metric}`);
    console.log(`policy                 sim score  qdq score   |diff|${s.differing ? ' differ' : ''}  max |output diff| of max |output|, share > |output|/2048  Q/DQ pairs (earlier)  build ms`);
    for (const [name, lp] of policies) {
      const amax = resolveAmax(base, lp);
      const policy = { layers: s.layers.map((l) => ({ name: l.name, op: l.op, precision: lp[l.name].precision, macs: l.macs })), calibration: { method: 'percentile-99.99', amax }, otherOps: base.otherOps };
      const t0 = performance.now();
      const { model: qdq } = buildQdqModel(s.model, s.graph, s.layers, policy);
      const buildMs = performance.now() - t0;
      const pairs = qdq.graph!.node!.filter((n) => n.opType === 'QuantizeLinear').length;
      const simOut = await runModel(buildSimulatedModel(base, lp), s.evalSet, 16);
      const qdqOut = await runModel(qdq, s.evalSet, 16);
      const [simScore, qdqScore] = [await s.score(simOut, reference), await s.score(qdqOut, reference)];
      let maxDiff = 0;
      let range = 0;
      let values = 0;
      simOut.forEach((o) => { for (const k of Object.keys(o)) o[k].data.forEach((v) => { range = Math.max(range, Math.abs(v)); values++; }); });
      // Beyond float16 rounding of the output itself (2^-11 of the range): where a rounding difference upstream moved an int8 level.
      let beyond = 0;
      simOut.forEach((o, i) => {
        for (const k of Object.keys(o)) o[k].data.forEach((v, j) => { const d = Math.abs(v - qdqOut[i][k].data[j]); maxDiff = Math.max(maxDiff, d); if (d > range / 2048) beyond++; });
      });
      const diff = maxDiff === 0 ? '0 (bit-identical)' : `${maxDiff.toExponential(2)} of ${range.toPrecision(3)}, ${(100 * beyond / values).toFixed(2)}%`;
      const lines = s.differing ? ` ${s.differing(simOut, qdqOut)}/${s.evalSet.count}` : '';
      console.log(`${name.padEnd(22)} ${simScore.toFixed(4).padStart(9)}  ${qdqScore.toFixed(4).padStart(9)}  ${Math.abs(simScore - qdqScore).toFixed(4).padStart(7)}${lines.padStart(7)}  ${diff.padStart(32)}  ${String(pairs).padStart(10)} (${earlierPairs(s.layers, lp)})  ${buildMs.toFixed(0).padStart(8)}`);
    }
  }
}

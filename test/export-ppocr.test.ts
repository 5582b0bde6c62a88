/**
 * Every export of a policy on the built-in example (PP-OCRv4 recognizer): names that line up across formats and
 * with the model, and a QDQ model that scores like the simulation (tolerance: see test/export-qdq.test.ts).
 * The policy is made here (calibrated on example lines, seeded precisions over every action) so that this test
 * does not depend on a search run.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { loadModelAndLayers, type LoadedModel } from '../src/cli/model-options.ts';
import { trtLayerName } from '../src/onnx/graph.ts';
import { decodeModel } from '../src/onnx/model.ts';
import { collectStatistics, CalibrationTable, calibrationTensors } from '../src/quant/calibrate.ts';
import { buildSimulatedModel, resolveAmax, type SimulationBase } from '../src/quant/simulate.ts';
import { runModel, sliceFeeds, type SampleSet } from '../src/quant/evaluator.ts';
import { PRECISIONS, type LayerPolicy, type PolicyFile } from '../src/policy.ts';
import { writeExports, parseCalibrationCache, type ExportInputs } from '../src/export/index.ts';
import { sha256Hex } from '../src/export/policy-file.ts';
import { charAccuracy, decodeAll } from '../experiments/ppocr/char-accuracy.mjs';
import { loadRecExample } from '../experiments/ppocr/dataset.ts';
import { checkQdqRules } from './export-qdq-rules.ts';
import { buildQdqModel } from '../src/export/qdq-onnx.ts';
import { TRT_GENERATION_LABELS } from '../src/export/trtexec.ts';
import { autocastTensors, classifyOtherOps, collectRanges } from '../src/quant/autocast.ts';

const CALIB = 8;
const EVAL = 100;
let m: LoadedModel;
let dir: string;
let lp: LayerPolicy;
let policy: PolicyFile;
let base: SimulationBase;
let evalSet: SampleSet;
let layerNames: Set<string>;

function shellWords(line: string): string[] {
  const script = `trtexec() { printf '%s\\0' "$@"; }\npolygraphy() { printf '%s\\0' "$@"; }\n${line}\n`;
  return execFileSync('sh', ['-c', script], { encoding: 'utf8' }).split('\0').slice(0, -1);
}

function flagValue(words: string[], flag: string): string {
  const w = words.find((x) => x.startsWith(`${flag}=`));
  assert.ok(w, `${flag} missing`);
  return w.slice(flag.length + 1);
}

/** The TensorRT 8.4-10.x (implicit quantization) command of trtexec.txt / polygraphy.txt. */
function implicitLine(text: string): string {
  const lines = text.split('\n');
  return lines[lines.indexOf(`# ${TRT_GENERATION_LABELS.implicit}`) + 1];
}

/** trtexec's parsing: split on ',', then at the last ':', quotes removed; only known types. */
function parseSpec(value: string): Map<string, string> {
  return new Map(value.split(',').map((item) => {
    const at = item.lastIndexOf(':');
    const type = item.slice(at + 1);
    assert.ok(['fp32', 'fp16', 'int8'].includes(type), `type ${type}`);
    return [item.slice(0, at).replace(/'/g, ''), type] as [string, string];
  }));
}

before(async () => {
  m = await loadModelAndLayers({});
  const rec = loadRecExample({ limit: CALIB + EVAL });
  const all: SampleSet = { count: rec.count, inputs: rec.inputs };
  const calib: SampleSet = { count: CALIB, inputs: sliceFeeds(all, 0, CALIB) };
  evalSet = { count: EVAL, inputs: sliceFeeds(all, CALIB, CALIB + EVAL), labels: rec.labels.slice(CALIB) };
  const stats = await collectStatistics(m.model, calibrationTensors(m.layers), CALIB, (s, e) => sliceFeeds(calib, s, e));
  base = { model: m.model, graph: m.graph, layers: m.layers, calibration: new CalibrationTable(stats, CALIB), defaultCalibration: { method: 'percentile', percentile: 99.99 } };
  const rng = seedrandom('export-ppocr');
  lp = Object.fromEntries(m.layers.map((l) => [l.name, { precision: PRECISIONS[Math.floor(rng() * PRECISIONS.length)] }]));
  policy = {
    version: 1,
    model: { path: m.path, sha256: sha256Hex(readFileSync(m.path)) },
    layers: m.layers.map((l) => ({ name: l.name, op: l.op, precision: lp[l.name].precision, macs: l.macs })),
    calibration: { method: 'percentile', amax: resolveAmax(base, lp) },
    metrics: { score: 0, fp32Score: 0, latencyMs: 0, fp16LatencyMs: 0, target: 't4' },
    search: { agent: 'test', seed: 0, evaluations: 0, seconds: 0 },
  };
  const inputs: ExportInputs = { policy, layers: m.layers, graph: m.graph, model: policy.model, inputShapes: m.inputShapes };
  dir = mkdtempSync(join(tmpdir(), 'trtmix-export-ppocr-'));
  writeExports(dir, inputs);
  layerNames = new Set((m.original.graph!.node ?? []).filter((n) => n.opType !== 'Constant').map(trtLayerName));
});

test('PP-OCR: the trtexec line parses like trtexec and names only layers of the model', () => {
  const words = shellWords(implicitLine(readFileSync(join(dir, 'trtexec.txt'), 'utf8')));
  const precisions = parseSpec(flagValue(words, '--layerPrecisions'));
  const outputTypes = parseSpec(flagValue(words, '--layerOutputTypes'));
  for (const name of [...precisions.keys(), ...outputTypes.keys()]) assert.ok(layerNames.has(name), `${name} is not a layer of the model`);
  for (const l of m.layers) {
    const expected = { int8: 'int8', mixed: 'int8', fp16: 'fp16', fp32: 'fp32' }[lp[l.name].precision];
    assert.equal(precisions.get(l.name), expected, l.name);
  }
});

test('PP-OCR: build_engine.py and polygraphy.txt name the trtexec line\'s layers with the same types', () => {
  const words = shellWords(implicitLine(readFileSync(join(dir, 'trtexec.txt'), 'utf8')));
  const precisions = parseSpec(flagValue(words, '--layerPrecisions'));
  const outputTypes = parseSpec(flagValue(words, '--layerOutputTypes'));
  const script = join(dir, 'build_engine.py');
  execFileSync('python3', ['-c', 'import ast,sys; ast.parse(open(sys.argv[1]).read())', script]);
  const printed = JSON.parse(execFileSync('python3', [script, '--print-plan'], { encoding: 'utf8' }));
  assert.deepEqual(new Map(Object.entries(printed.layerPrecisions)), precisions);
  assert.deepEqual(new Map(Object.entries(printed.layerOutputTypes)), outputTypes);
  const poly = shellWords(implicitLine(readFileSync(join(dir, 'polygraphy.txt'), 'utf8')));
  const pairs = poly.slice(poly.indexOf('--layer-precisions') + 1, poly.indexOf('-o'));
  const dtype: Record<string, string> = { float32: 'fp32', float16: 'fp16', int8: 'int8' };
  assert.deepEqual(new Map(pairs.map((p) => [p.slice(0, p.lastIndexOf(':')), dtype[p.slice(p.lastIndexOf(':') + 1)]])), precisions);
});

test('PP-OCR: calibration.cache holds amax/127 of every tensor int8 layers read or write', () => {
  const cache = parseCalibrationCache(readFileSync(join(dir, 'calibration.cache'), 'utf8'));
  assert.equal(cache.versionCode, 8601);
  // The recorded amax, plus the node output of an int8 Conv whose only fused op is a ReLU (its post-ReLU amax).
  const reluOutputs = new Map(m.layers.filter((l) => lp[l.name].precision === 'int8' && ['relu', 'relu6', 'clip'].includes(l.activation ?? '') && m.graph.producer.get(l.fusedOutput)!.input![0] === l.output)
    .map((l) => [l.output, l.fusedOutput]));
  assert.ok(reluOutputs.size > 0, 'the example has Conv + ReLU layers in int8');
  // Every tensor a quantized layer reads is in the cache; results only where their readers read them in int8.
  const recorded = new Set([...Object.keys(policy.calibration.amax), ...reluOutputs.keys()]);
  for (const t of cache.scales.keys()) assert.ok(recorded.has(t), `${t} is not a recorded tensor`);
  for (const l of m.layers) if (lp[l.name].precision === 'int8' || lp[l.name].precision === 'mixed') assert.ok(cache.scales.has(l.input), `${l.name}'s input ${l.input}`);
  for (const [tensor, scale] of cache.scales) {
    assert.equal(scale, Math.fround(policy.calibration.amax[reluOutputs.get(tensor) ?? tensor] / 127), tensor);
  }
});

test('PP-OCR: model.qdq.onnx obeys the Q/DQ rules, runs in onnxruntime and scores like the simulation (within 0.015)', async () => {
  const qdq = decodeModel(readFileSync(join(dir, 'model.qdq.onnx')));
  checkQdqRules(qdq, m.graph, m.layers, lp);
  const labels = evalSet.labels as string[];
  const simScore = charAccuracy(decodeAll(await runModel(buildSimulatedModel(base, lp), evalSet, 8)), labels);
  const qdqScore = charAccuracy(decodeAll(await runModel(qdq, evalSet, 8)), labels);
  assert.ok(simScore > 0.5, `the policy keeps the recognizer working (${simScore})`);
  assert.ok(Math.abs(qdqScore - simScore) <= 0.015, `qdq ${qdqScore} vs simulated ${simScore}`);
});

test('PP-OCR, --other-ops fp16: model.qdq.onnx runs the other ops in float16 and scores like the simulation (within 0.015)', async () => {
  const rec = loadRecExample({ limit: CALIB });
  const ranges = await collectRanges(m.model, autocastTensors(m.graph, m.layers), CALIB, (s, e) => sliceFeeds({ count: CALIB, inputs: rec.inputs }, s, e));
  const half: SimulationBase = { ...base, otherOps: classifyOtherOps('fp16', m.graph, m.layers, ranges) };
  const p16: PolicyFile = { ...policy, calibration: { method: 'percentile', amax: resolveAmax(half, lp) }, otherOps: half.otherOps };
  const { model, placement } = buildQdqModel(m.model, m.graph, m.layers, p16);
  const { types } = checkQdqRules(model, m.graph, m.layers, lp, placement.kernelOutput);
  assert.ok([...types.values()].filter((t) => t === 10).length > 50, 'many float16 tensors');
  // 40 lines keep this test short; bench/export-qdq.ts measures the gap on more.
  const few: SampleSet = { count: 40, inputs: sliceFeeds(evalSet, 0, 40) };
  const labels = (evalSet.labels as string[]).slice(0, 40);
  const simScore = charAccuracy(decodeAll(await runModel(buildSimulatedModel(half, lp), few, 8)), labels);
  const qdqScore = charAccuracy(decodeAll(await runModel(model, few, 8)), labels);
  assert.ok(simScore > 0.5, `the policy keeps the recognizer working (${simScore})`);
  assert.ok(Math.abs(qdqScore - simScore) <= 0.015, `qdq ${qdqScore} vs simulated ${simScore}`);
});

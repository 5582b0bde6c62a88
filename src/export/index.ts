/**
 * Exports of a policy for every TensorRT path: trtexec flags, precision.json, build_engine.py and Polygraphy
 * args (TensorRT 8.4–10.x, implicit quantization), the calibration cache (TensorRT <= 10), and the explicitly
 * quantized model (TensorRT 10 explicit quantization, the only form TensorRT 11 accepts). Every format comes
 * from the same policy, layers and amax, so they agree on names and types (test/export*.test.ts checks it).
 */
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { correctedModel, correctionsOf } from '../quant/bias-correction.ts';
import { sha256Hex } from './policy-file.ts';
import type { PolicyFile } from '../policy.ts';
import type { Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { encodeModelFile, saveModel, savesExternalData, type ModelProto } from '../onnx/model.ts';
import { hasExternalData } from '../onnx/external-data.ts';
import { writeFileAtomic } from '../fs.ts';
import { buildPrecisionPlan, type PrecisionPlan } from './plan.ts';
import { trtexecCommand } from './trtexec.ts';
import { polygraphyCommand } from './polygraphy.ts';
import { precisionDocument, precisionJson, type ModelRef } from './precision-json.ts';
import { trtPythonScript } from './trt-python.ts';
import { calibrationCache, trtVersionCode } from './calib-cache.ts';
import { buildQdqModel } from './qdq-onnx.ts';

export const EXPORT_FORMATS = ['trtexec', 'json', 'polygraphy', 'trt-python', 'qdq-onnx', 'calib-cache'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** File names in a search's output folder (DESIGN.md). */
export const EXPORT_FILE_NAMES: Readonly<Record<ExportFormat, string>> = {
  trtexec: 'trtexec.txt',
  json: 'precision.json',
  polygraphy: 'polygraphy.txt',
  'trt-python': 'build_engine.py',
  'qdq-onnx': 'model.qdq.onnx',
  'calib-cache': 'calibration.cache',
};

/** TensorRT release the calibration cache header names unless told otherwise (JetPack 6's TensorRT). */
export const DEFAULT_TRT_VERSION = '8.6.1';

/** The model the TensorRT <= 10 implicit path builds from when the policy corrects biases (--bias-correction). */
export const CORRECTED_MODEL_FILE = 'model.corrected.onnx';

export interface ExportInputs {
  policy: Pick<PolicyFile, 'layers' | 'calibration' | 'otherOps' | 'biasCorrection'>;
  layers: readonly Layer[];
  /** The graph the layers were discovered on; its model (default opset >= 13) is what qdq-onnx rewrites. */
  graph: Graph;
  /** The model as the written commands refer to it (path as the user runs them) and its sha256. */
  model: ModelRef;
  /** Input shapes the policy was evaluated with; build_engine.py uses them for dynamic dims. */
  inputShapes?: Record<string, number[]>;
}

export interface ExportOptions {
  /** trtexec: write `name*` patterns (TensorRT 10 trtexec). */
  wildcard?: boolean;
  /** Calibration cache header version, e.g. 8.6.1 or 10.3.0. */
  trtVersion?: string;
  /** Where the commands expect calibration.cache, model.qdq.onnx, build_engine.py and the engine. */
  calibPath?: string;
  qdqPath?: string;
  scriptPath?: string;
  enginePath?: string;
  /**
   * model.corrected.onnx as the commands refer to it (writeCorrectedModel writes it): the implicit-quantization
   * commands build from it instead of the user's model. Required where the policy corrects biases.
   */
  correctedModel?: ModelRef;
}

/** Text formats render to a string, model.qdq.onnx to protobuf bytes. */
export type ExportContent<F extends ExportFormat = ExportFormat> = F extends 'qdq-onnx' ? Uint8Array : string;

export interface RenderedExport<F extends ExportFormat = ExportFormat> {
  content: ExportContent<F>;
  warnings: string[];
  /**
   * qdq-onnx: the model itself, written with writeExport. Where the user's model came with external data, or the
   * model is too large for one protobuf, its weights go to `<file>.data` beside the file; `content` is then empty.
   */
  model?: { proto: ModelProto; externalData: boolean };
}

/** Writes a rendered export to `path` (atomically; model.qdq.onnx with external data where it has some). */
export function writeExport(path: string, out: RenderedExport): void {
  if (out.model) saveModel(out.model.proto, path, { externalData: out.model.externalData });
  else writeFileAtomic(path, out.content);
}

export function planFor(inputs: ExportInputs): PrecisionPlan {
  return buildPrecisionPlan(inputs.policy, inputs.layers, inputs.graph);
}

export function renderExport<F extends ExportFormat>(format: F, inputs: ExportInputs, opts: ExportOptions = {}, plan = planFor(inputs)): RenderedExport<F> {
  return render(format, inputs, opts, plan) as RenderedExport<F>;
}

/** True where the policy carries bias corrections (the implicit path then builds from model.corrected.onnx). */
export function correctsBiases(policy: ExportInputs['policy']): boolean {
  return Object.keys(policy.biasCorrection?.layers ?? {}).length > 0;
}

/**
 * Writes model.corrected.onnx: the user's model with the policy's corrected biases and nothing else changed (same
 * node and tensor names: the per-layer flags and the calibration cache apply to it as they are). Returns its files.
 */
export function writeCorrectedModel(path: string, inputs: ExportInputs): { files: string[]; ref: ModelRef } {
  const model = correctedModel(inputs.graph, inputs.layers, correctionsOf(inputs.policy.biasCorrection)!);
  const externalData = hasExternalData(inputs.graph.model) || savesExternalData(model);
  saveModel(model, path, { externalData });
  return { files: externalData ? [path, `${path}.data`] : [path], ref: { path, sha256: sha256Hex(readFileSync(path)) } };
}

function render(format: ExportFormat, inputs0: ExportInputs, opts: ExportOptions, plan: PrecisionPlan): RenderedExport {
  const warnings = [...plan.warnings];
  if (format !== 'qdq-onnx' && format !== 'calib-cache' && correctsBiases(inputs0.policy) && !opts.correctedModel) {
    throw new Error(`${format} of a bias-corrected policy needs model.corrected.onnx (writeCorrectedModel)`);
  }
  // The implicit path builds from the corrected model; model.qdq.onnx carries the corrections itself.
  const inputs = opts.correctedModel ? { ...inputs0, model: opts.correctedModel } : inputs0;
  const doc = () => precisionDocument(plan, inputs.model, inputs.policy.calibration?.method ?? 'unknown', inputs.inputShapes);
  switch (format) {
    case 'trtexec': {
      const cmd = trtexecCommand(plan, {
        modelPath: inputs.model.path,
        qdqPath: opts.qdqPath,
        shapes: dynamicInputShapes(inputs),
        calibPath: opts.calibPath,
        enginePath: opts.enginePath,
        wildcard: opts.wildcard,
      });
      return { content: cmd.text, warnings: [...warnings, ...cmd.warnings] };
    }
    case 'polygraphy':
      return {
        content: polygraphyCommand(plan, { modelPath: inputs.model.path, qdqPath: opts.qdqPath, calibPath: opts.calibPath, enginePath: opts.enginePath, scriptPath: opts.scriptPath, shapes: dynamicInputShapes(inputs) }).text,
        warnings,
      };
    case 'json':
      return { content: precisionJson(doc()), warnings };
    case 'trt-python':
      return { content: trtPythonScript(plan, doc(), { enginePath: opts.enginePath, qdqPath: opts.qdqPath }), warnings };
    case 'calib-cache':
      return { content: calibrationCache(plan.amax, trtVersionCode(opts.trtVersion ?? DEFAULT_TRT_VERSION)), warnings };
    case 'qdq-onnx': {
      const qdq = buildQdqModel(inputs.graph.model, inputs.graph, inputs.layers, inputs.policy, plan.placement);
      const externalData = hasExternalData(inputs.graph.model) || savesExternalData(qdq.model);
      return { content: externalData ? new Uint8Array(0) : encodeModelFile(qdq.model), model: { proto: qdq.model, externalData }, warnings: [...warnings, ...qdq.warnings] };
    }
  }
}

/**
 * The evaluated shapes of the inputs whose declared dims are not all fixed. trtexec and Polygraphy need an
 * optimization profile for those (trtexec silently sets each dynamic dim to 1: a width-1 engine for PP-OCR).
 */
function dynamicInputShapes(inputs: ExportInputs): Record<string, number[]> | undefined {
  const out: Record<string, number[]> = {};
  for (const v of inputs.graph.inputs) {
    const name = v.name ?? '';
    const shape = inputs.inputShapes?.[name];
    const declared = inputs.graph.declaredShape(name);
    if (shape && (!declared || declared.some((d) => typeof d !== 'number' || d <= 0))) out[name] = shape;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Writes every format into a search's output folder, each file atomically, with the commands referring to the
 * folder's own calibration.cache, build_engine.py and model.engine. Returns the paths written and the warnings.
 */
export function writeExports(dir: string, inputs: ExportInputs, opts: ExportOptions = {}): { files: string[]; warnings: string[] } {
  const plan = planFor(inputs);
  const local: ExportOptions = {
    calibPath: join(dir, EXPORT_FILE_NAMES['calib-cache']),
    qdqPath: join(dir, EXPORT_FILE_NAMES['qdq-onnx']),
    scriptPath: join(dir, EXPORT_FILE_NAMES['trt-python']),
    enginePath: join(dir, 'model.engine'),
    ...opts,
  };
  const files: string[] = [];
  const warnings = new Set<string>();
  if (correctsBiases(inputs.policy) && !local.correctedModel) {
    const written = writeCorrectedModel(join(dir, CORRECTED_MODEL_FILE), inputs);
    files.push(...written.files);
    // The commands refer to where the file is meant to be (a ladder step is written beside its final place).
    local.correctedModel = { ...written.ref, path: local.enginePath ? join(dirname(local.enginePath), CORRECTED_MODEL_FILE) : written.ref.path };
  }
  for (const format of EXPORT_FORMATS) {
    const out = renderExport(format, inputs, local, plan);
    const path = join(dir, EXPORT_FILE_NAMES[format]);
    writeExport(path, out);
    files.push(path);
    if (out.model?.externalData) files.push(`${path}.data`);
    out.warnings.forEach((w) => warnings.add(w));
  }
  return { files, warnings: [...warnings] };
}

export type { PrecisionPlan, PlanEntry, PlanLayer, PlanGraph, TrtType } from './plan.ts';
export { buildPrecisionPlan, ACTION_TYPES } from './plan.ts';
export { trtexecCommand } from './trtexec.ts';
export { polygraphyCommand } from './polygraphy.ts';
export { precisionDocument } from './precision-json.ts';
export { trtPythonScript } from './trt-python.ts';
export { calibrationCache, parseCalibrationCache, trtVersionCode, scaleHex, hexScale } from './calib-cache.ts';
export { buildQdqModel } from './qdq-onnx.ts';

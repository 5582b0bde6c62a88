/**
 * Exports of a policy for every TensorRT path: trtexec flags, precision.json, build_engine.py and Polygraphy
 * args (TensorRT 8.4–10.x, implicit quantization), the calibration cache (TensorRT <= 10), and the explicitly
 * quantized model (TensorRT 10 explicit quantization, the only form TensorRT 11 accepts). Every format comes
 * from the same policy, layers and amax, so they agree on names and types (test/export*.test.ts checks it).
 */
import { join } from 'node:path';
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

export interface ExportInputs {
  policy: Pick<PolicyFile, 'layers' | 'calibration'>;
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

function render(format: ExportFormat, inputs: ExportInputs, opts: ExportOptions, plan: PrecisionPlan): RenderedExport {
  const warnings = [...plan.warnings];
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

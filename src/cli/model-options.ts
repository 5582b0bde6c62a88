/** Options and loading shared by every command that takes a model. */
import type { Argv } from 'yargs';
import { loadModel } from '../onnx/model.ts';
import { upgradeOpset } from '../onnx/opset.ts';
import { discoverLayers } from '../onnx/layers.ts';
import type { Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import type { ModelProto } from '../onnx/model.ts';
import { PPOCR_MODELS } from '../examples.ts';
import { UserError } from '../errors.ts';

export interface ModelArgs {
  model?: string;
  'input-shape'?: string[];
}

export function withModelOptions<T>(y: Argv<T>, required = false): Argv<T & ModelArgs> {
  return y
    .option('model', { type: 'string', describe: required ? 'ONNX model file' : 'ONNX model file (default: the built-in PP-OCRv4 recognizer)', demandOption: required })
    .option('input-shape', { type: 'string', array: true, describe: 'Concrete input shape for dynamic dims, name:1x3x48x320 (repeat per input)' }) as Argv<T & ModelArgs>;
}

/** Parses `name:1x3x48x320` values. */
export function parseInputShapes(values: string[] | undefined): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const v of values ?? []) {
    const at = v.lastIndexOf(':');
    const dims = at > 0 ? v.slice(at + 1).split('x').map(Number) : [];
    if (at <= 0 || dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new UserError(`--input-shape ${v} is not of the form name:1x3x48x320 (positive integers joined by x)`);
    }
    out[v.slice(0, at)] = dims;
  }
  return out;
}

export interface LoadedModel {
  path: string;
  /** The model as given (for hashing and for exports that keep the user's opset). */
  original: ModelProto;
  /** The model with its default opset raised to 13 where needed (what the simulator rewrites). */
  model: ModelProto;
  graph: Graph;
  layers: Layer[];
  inputShapes: Record<string, number[]>;
  builtIn: boolean;
}

export async function loadModelAndLayers(args: ModelArgs): Promise<LoadedModel> {
  const builtIn = !args.model;
  const path = args.model ?? PPOCR_MODELS.rec.path;
  const shapes = parseInputShapes(args['input-shape']);
  if (builtIn && Object.keys(shapes).length === 0) shapes.x = PPOCR_MODELS.rec.inputShape;
  const original = loadModel(path);
  const model = upgradeOpset(loadModel(path));
  const { graph, layers, inputShapes } = await discoverLayers(model, { inputShapes: shapes });
  return { path, original, model, graph, layers, inputShapes, builtIn };
}

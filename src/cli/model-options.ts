/** Options and loading shared by every command that takes a model. */
import type { Argv } from 'yargs';
import { loadModel, structuralCopy } from '../onnx/model.ts';
import { upgradeOpset } from '../onnx/opset.ts';
import { discoverLayers, modelInputs } from '../onnx/layers.ts';
import { Graph } from '../onnx/graph.ts';
import type { Feeds } from '../onnx/runtime.ts';
import type { Dataset } from '../data/dataset.ts';
import { batchInputs, sampleGroups } from '../data/batches.ts';
import type { Layer } from '../onnx/layer-types.ts';
import type { ControlFlowLayer } from '../onnx/support.ts';
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

/** A model file as loaded, before its layers are known. */
export interface ModelFile {
  path: string;
  /** The model as given (for hashing and for exports that keep the user's opset). */
  original: ModelProto;
  /** The model with its default opset raised to 13 where needed (what the simulator rewrites). */
  model: ModelProto;
  graph: Graph;
  builtIn: boolean;
}

export interface LoadedModel extends ModelFile {
  layers: Layer[];
  /** Quantizable nodes inside If/Loop/Scan bodies, which stay FP32. */
  controlFlowLayers: ControlFlowLayer[];
  /** The shapes layers were probed at (batch included): from --input-shape, else the data, else the declared dims. */
  inputShapes: Record<string, number[]>;
}

/** Loads the model of --model (default: the built-in example), external data and opset upgrade included. */
export function loadModelFile(args: ModelArgs): ModelFile {
  const builtIn = !args.model;
  const path = args.model ?? PPOCR_MODELS.rec.path;
  const original = loadModel(path);
  const model = upgradeOpset(structuralCopy(original));
  return { path, original, model, graph: new Graph(model), builtIn };
}

export interface DiscoveryInputs {
  /** The user's data: dynamic dims come from it (the shape group with the most samples). */
  data?: Dataset;
  /** Shapes a search recorded in policy.json, for commands run on a policy without data. */
  recordedShapes?: Record<string, number[]>;
}

/** The probe batch of a dataset: the first sample of its largest shape group, padded to a fixed batch. */
export function probeFeeds(data: Dataset): Feeds {
  const groups = sampleGroups(data);
  const g = groups.reduce((best, x) => (x.count > best.count ? x : best), groups[0]);
  return batchInputs(data, g.start, g.start + 1);
}

/** Finds the layers, probing at --input-shape, else the data's shapes, else what policy.json recorded. */
export async function discoverModelLayers(file: ModelFile, args: ModelArgs, inputs: DiscoveryInputs = {}): Promise<LoadedModel> {
  const shapes = parseInputShapes(args['input-shape']);
  if (file.builtIn && Object.keys(shapes).length === 0 && !inputs.data) shapes.x = PPOCR_MODELS.rec.inputShape;
  const recorded = inputs.recordedShapes && fitsModel(inputs.recordedShapes, file.graph) ? inputs.recordedShapes : {};
  const given = Object.keys(shapes).length > 0 ? shapes : inputs.data ? {} : recorded;
  const { layers, inputShapes, controlFlowLayers } = await discoverLayers(file.model, { inputShapes: given, original: file.original, ...(inputs.data ? { feeds: probeFeeds(inputs.data) } : {}) });
  return { ...file, layers, inputShapes, controlFlowLayers };
}

/**
 * Whether recorded shapes describe this model's inputs (names, ranks, fixed dims); a policy of another model is
 * then refused by its layer names, not by its shapes.
 */
function fitsModel(shapes: Record<string, number[]>, graph: Graph): boolean {
  const inputs = modelInputs(graph);
  return inputs.length === Object.keys(shapes).length && inputs.every((i) => {
    const s = shapes[i.name];
    return s !== undefined && s.length === i.dims.length && i.dims.every((d, k) => typeof d !== 'number' || d === s[k]);
  });
}

/** The input shapes a search recorded in policy.json (`search.inputShapes`), if it did. */
export function recordedInputShapes(policy: { search?: Record<string, unknown> }): Record<string, number[]> | undefined {
  const shapes = policy.search?.inputShapes;
  if (!shapes || typeof shapes !== 'object') return undefined;
  const ok = Object.values(shapes).every((d) => Array.isArray(d) && d.every((x) => Number.isInteger(x) && x > 0));
  return ok ? (shapes as Record<string, number[]>) : undefined;
}

export async function loadModelAndLayers(args: ModelArgs, inputs: DiscoveryInputs = {}): Promise<LoadedModel> {
  return discoverModelLayers(loadModelFile(args), args, inputs);
}

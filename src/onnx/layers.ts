/**
 * Layer discovery: every Conv, ConvTranspose, Gemm and MatMul of the model, with the facts the simulator, the
 * latency models and the agent's observation need. Shapes are probed by running the model once in onnxruntime,
 * since real exports (Paddle2ONNX, PyTorch) rarely carry value_info for intermediate tensors.
 */
import type { ModelProto, NodeProto } from './model.ts';
import { Graph, trtLayerName } from './graph.ts';
import { attrInt, attrInts, attrFloat } from './tensor.ts';
import { createSession, isOrtError, ortMessage, probeTensors, toOrtFeeds, type Feeds } from './runtime.ts';
import type { FusedActivation, Layer, QuantizableOp } from './layer-types.ts';
import { QUANTIZABLE_OPS } from './layer-types.ts';
import { UserError } from '../errors.ts';
import { checkSearchable, controlFlowLayers, type ControlFlowLayer } from './support.ts';
import { DTYPE_OF_ONNX, onnxTypeName, typedArray, type TensorDtype } from '../data/dtype.ts';

export interface DiscoverOptions {
  /** Concrete shapes for model inputs (batch included), e.g. from --input-shape; they win over everything else. */
  inputShapes?: Record<string, number[]>;
  /**
   * Feeds to probe with (a real sample, batch included): dynamic dims are taken from them where `inputShapes`
   * gives none. Without either, inputs are probed with zeros of the declared shape.
   */
  feeds?: Feeds;
  /**
   * The model as the user gave it (before the opset upgrade): where onnxruntime fails on the model, it tells the
   * user's problem (the model itself does not load or run) from trtmix's (only the rewritten model fails).
   */
  original?: ModelProto;
}

export interface ModelInputSpec {
  name: string;
  /** Declared dims: numbers, or strings for symbolic ones. */
  dims: Array<number | string>;
  elemType: number;
}

export function modelInputs(graph: Graph): ModelInputSpec[] {
  return graph.inputs.map((v) => ({
    name: v.name ?? '',
    dims: graph.declaredShape(v.name ?? '') ?? [],
    elemType: v.type?.tensorType?.elemType ?? 0,
  }));
}

const isFixedDim = (d: number | string | undefined): d is number => typeof d === 'number' && d >= 0;

/**
 * Concrete input shapes, in this order of preference: given ones (checked against the declared dims), the shapes
 * of the probe feeds (the user's data), the declared dims with a symbolic batch set to 1; any other dynamic dim
 * without data is an error naming the input.
 */
export function resolveInputShapes(graph: Graph, given: Record<string, number[]> = {}, fromData: Record<string, number[]> = {}): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const name of Object.keys(given)) {
    if (!graph.inputs.some((v) => v.name === name)) {
      throw new UserError(`--input-shape names ${name}, but the model's inputs are ${graph.inputs.map((v) => v.name).join(', ')}`);
    }
  }
  for (const input of modelInputs(graph)) {
    const declared = input.dims;
    const g = given[input.name] ?? fromData[input.name];
    if (g) {
      if (g.length !== declared.length || g.some((d, i) => isFixedDim(declared[i]) && declared[i] !== d)) {
        throw new UserError(`input shape ${g.join('x')} for ${input.name} does not match the model's [${declared.join(', ')}]`);
      }
      out[input.name] = g;
      continue;
    }
    const dims = declared.map((d, i) => (isFixedDim(d) ? d : i === 0 ? 1 : NaN));
    if (dims.some((d) => Number.isNaN(d))) {
      throw new UserError(
        `model input ${input.name} has dynamic dims [${declared.join(', ')}]; pass --data (its arrays give them), or concrete ones with --input-shape ${input.name}:${declared.map((d, i) => (isFixedDim(d) ? d : i === 0 ? 1 : 'N')).join('x')}`,
      );
    }
    out[input.name] = dims;
  }
  return out;
}

/** The dtype every model input takes (float32 where the model leaves it undeclared). */
export function inputDtypes(graph: Graph): Record<string, TensorDtype> {
  const out: Record<string, TensorDtype> = {};
  for (const input of modelInputs(graph)) {
    const dtype = input.elemType ? DTYPE_OF_ONNX[input.elemType] : 'float32';
    if (!dtype) throw new UserError(`model input ${input.name} takes ${onnxTypeName(input.elemType)}, which trtmix cannot feed; export the model with a float32, float16 or integer input`);
    out[input.name] = dtype;
  }
  return out;
}

/** Zeros of every input's dtype and shape (token id 0 and an all-zero mask are valid inputs too). */
export function zeroFeeds(graph: Graph, shapes: Record<string, number[]>): Feeds {
  const out: Feeds = {};
  for (const [name, dtype] of Object.entries(inputDtypes(graph))) {
    const dims = shapes[name];
    if (dims) out[name] = { data: typedArray(dtype, prod(dims)), dims, dtype };
  }
  return out;
}

/**
 * An onnxruntime failure while probing, as the user's problem where it is theirs: the model they gave does not load
 * in onnxruntime, or does not run on the probe inputs (all zeros without data: shape inputs, say, need real values).
 * Where the user's model loads and runs, the failure is trtmix's own and is passed on as it is.
 */
async function explainFailure(e: unknown, original: ModelProto | undefined, feeds: Feeds, fromData: boolean): Promise<unknown> {
  if (!original || !isOrtError(e)) return e;
  let session: Awaited<ReturnType<typeof createSession>>;
  try {
    session = await createSession(original, { optimization: 'basic' });
  } catch (loadError) {
    return new UserError(`onnxruntime cannot load the model: ${ortMessage(loadError)}`, { cause: loadError });
  }
  try {
    await session.run(toOrtFeeds(feeds));
  } catch (runError) {
    return new UserError(fromData
      ? `onnxruntime fails on the first sample of --data: ${ortMessage(runError)}; check the data's values (token ids below the vocabulary size, valid shapes and indices)`
      : `onnxruntime cannot run the model on all-zero inputs: ${ortMessage(runError)}; pass --data with real inputs`, { cause: runError });
  } finally {
    await session.release();
  }
  return e;
}

interface FusionResult {
  fusedOutput: string;
  activation?: FusedActivation;
  activationRange?: [number, number];
}

const POINTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Clip', 'Relu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'LeakyRelu', 'Gelu', 'Erf', 'BatchNormalization']);
const MAX_FUSED_NODES = 12;

/**
 * What TensorRT fuses into a Conv/Gemm/MatMul: the chain of pointwise ops fed only by the layer's output and
 * constants (BatchNormalization, scale/bias, and activations, including decomposed ones such as PP-LCNet's
 * x * clip(x + 3, 0, 6) / 6 and swish x * sigmoid(b * x)), provided the chain hands exactly one tensor onward.
 */
function findFusion(graph: Graph, output: string): FusionResult {
  const region: NodeProto[] = [];
  const inRegion = new Set<string>([output]);
  for (let changed = true; changed && region.length < MAX_FUSED_NODES; ) {
    changed = false;
    for (const t of [...inRegion]) {
      for (const c of graph.consumersOf(t)) {
        if (region.includes(c) || !POINTWISE.has(c.opType ?? '')) continue;
        const ready = (c.input ?? []).every((i) => !i || inRegion.has(i) || graph.isConstant(i));
        if (!ready) continue;
        region.push(c);
        for (const o of c.output ?? []) if (o) inRegion.add(o);
        changed = true;
      }
    }
  }
  const escaping = [...inRegion].filter(
    (t) => graph.isGraphOutput(t) || graph.consumersOf(t).some((c) => !region.includes(c)),
  );
  if (escaping.length !== 1 || region.length === 0) return { fusedOutput: output };
  const fusedOutput = escaping[0];
  const ops = new Set(region.map((n) => n.opType ?? ''));
  const last = graph.producer.get(fusedOutput)!;
  let activation: FusedActivation | undefined;
  let activationRange: [number, number] | undefined;
  if (last.opType === 'Clip') {
    const [lo, hi] = clipBounds(graph, last);
    activation = lo === 0 && hi === 6 ? 'relu6' : 'clip';
    activationRange = [lo, hi];
  } else if (last.opType === 'Relu') activation = 'relu';
  else if (last.opType === 'HardSigmoid') { activation = 'hardsigmoid'; activationRange = [0, 1]; }
  else if (last.opType === 'Sigmoid') { activation = 'sigmoid'; activationRange = [0, 1]; }
  else if (last.opType === 'Tanh') { activation = 'tanh'; activationRange = [-1, 1]; }
  else if (ops.has('HardSwish') || (ops.has('Clip') && ops.has('Mul')) || (ops.has('HardSigmoid') && ops.has('Mul'))) activation = 'hardswish';
  else if (ops.has('Sigmoid') && ops.has('Mul')) activation = 'swish';
  else if (ops.has('Erf') || ops.has('Gelu')) activation = 'gelu';
  else if (ops.has('LeakyRelu')) activation = 'leakyrelu';
  return { fusedOutput, ...(activation ? { activation } : {}), ...(activationRange ? { activationRange } : {}) };
}

function clipBounds(graph: Graph, clip: NodeProto): [number, number] {
  const ins = clip.input ?? [];
  const fromInput = (i: number, fallback: number) => {
    const v = ins[i] ? graph.constantValues(ins[i]) : undefined;
    return v && v.data.length > 0 ? v.data[0] : fallback;
  };
  if (ins.length > 1) return [fromInput(1, -Infinity), fromInput(2, Infinity)];
  return [attrFloat(clip, 'min', -Infinity), attrFloat(clip, 'max', Infinity)];
}

const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);

/** Finds the quantizable layers, probing every tensor they touch once with onnxruntime. */
export interface Discovery {
  graph: Graph;
  layers: Layer[];
  inputShapes: Record<string, number[]>;
  /** Quantizable nodes inside If/Loop/Scan bodies: not decided, they stay FP32 (src/onnx/support.ts). */
  controlFlowLayers: ControlFlowLayer[];
}

export async function discoverLayers(model: ModelProto, opts: DiscoverOptions = {}): Promise<Discovery> {
  checkSearchable(model);
  const controlFlow = controlFlowLayers(model);
  const graph = new Graph(model);
  const fed = Object.keys(opts.inputShapes ?? {}).length === 0 && opts.feeds ? opts.feeds : undefined;
  const inputShapes = resolveInputShapes(graph, opts.inputShapes, fed ? Object.fromEntries(Object.entries(fed).map(([k, v]) => [k, v.dims])) : {});
  const candidates = graph.nodes
    .map((node, nodeIndex) => ({ node, nodeIndex }))
    .filter(({ node }) => (!node.domain || node.domain === 'ai.onnx') && QUANTIZABLE_OPS.includes(node.opType as QuantizableOp));
  if (candidates.length === 0) {
    throw new UserError(controlFlow.length > 0
      ? `the model's quantizable layers are all inside If/Loop/Scan bodies (${controlFlow.length}), which stay FP32; there is nothing for trtmix to decide`
      : 'the model has no quantizable layers (Conv, ConvTranspose, Gemm, MatMul); there is nothing for trtmix to decide');
  }
  const toProbe = new Set<string>();
  for (const { node } of candidates) {
    const [x, w] = node.input ?? [];
    toProbe.add(x);
    if (!graph.isConstant(w)) toProbe.add(w);
    toProbe.add(node.output![0]);
  }
  const feeds = fed ?? zeroFeeds(graph, inputShapes);
  let probed: Awaited<ReturnType<typeof probeTensors>>;
  try {
    probed = await probeTensors(model, feeds, [...toProbe]);
  } catch (e) {
    throw await explainFailure(e, opts.original, feeds, fed !== undefined);
  }
  const batch = Object.values(inputShapes)[0]?.[0] ?? 1;
  // Only float layers are TensorRT's to quantize (a MatMul of int64 shape arithmetic is not one).
  const halfLayer = candidates.find(({ node }) => ['float16', 'bfloat16'].includes(probed[node.input![0]].type));
  if (halfLayer) {
    throw new UserError(`the model computes in float16 (${trtLayerName(halfLayer.node)} reads a ${probed[halfLayer.node.input![0]].type} tensor); trtmix measures every precision against the FP32 model and decides itself which layers run in FP16: export it in float32 (model.float() before torch.onnx.export)`);
  }
  const floatLayers = candidates.filter(({ node }) => probed[node.input![0]].type === 'float32');
  if (floatLayers.length === 0) throw new UserError('the model has no float Conv, ConvTranspose, Gemm or MatMul layers (only integer ones); there is nothing for trtmix to decide');

  const layers: Layer[] = floatLayers.map(({ node, nodeIndex }, index) => {
    const op = node.opType as QuantizableOp;
    const [input, weight, bias] = node.input ?? [];
    const output = node.output![0];
    const weightIsConstant = graph.isConstant(weight);
    const weightShape = weightIsConstant ? graph.constantValues(weight)!.dims : probed[weight].dims;
    const inputShape = probed[input].dims;
    const outputShape = probed[output].dims;
    const fusion = findFusion(graph, output);
    const spatialRank = Math.max(0, weightShape.length - 2);
    let kernel: number[] = [];
    let stride: number[] = [];
    let dilation: number[] = [];
    let groups = 1;
    let inChannels: number;
    let outChannels: number;
    let weightAxis: number;
    let macs: number;
    if (op === 'Conv' || op === 'ConvTranspose') {
      kernel = attrInts(node, 'kernel_shape') ?? weightShape.slice(2);
      stride = attrInts(node, 'strides') ?? new Array(spatialRank).fill(1);
      dilation = attrInts(node, 'dilations') ?? new Array(spatialRank).fill(1);
      groups = attrInt(node, 'group', 1);
      inChannels = inputShape[1];
      outChannels = outputShape[1];
      if (op === 'Conv') {
        weightAxis = 0;
        macs = (prod(outputShape) / batch) * (inChannels / groups) * prod(kernel);
      } else {
        weightAxis = 1;
        macs = (prod(inputShape) / batch) * (outChannels / groups) * prod(kernel);
      }
    } else if (op === 'Gemm') {
      const transB = attrInt(node, 'transB', 0);
      const transA = attrInt(node, 'transA', 0);
      inChannels = transA ? inputShape[0] : inputShape[inputShape.length - 1];
      outChannels = outputShape[outputShape.length - 1];
      weightAxis = transB ? 0 : 1;
      macs = (prod(outputShape) / batch) * inChannels;
    } else {
      inChannels = inputShape[inputShape.length - 1];
      outChannels = outputShape[outputShape.length - 1];
      weightAxis = weightShape.length - 1;
      macs = (prod(outputShape) / batch) * inChannels;
    }
    const biasParams = bias && graph.isConstant(bias) ? prod(graph.constantValues(bias)!.dims) : 0;
    const params = (weightIsConstant ? prod(weightShape) : 0) + biasParams;
    return {
      name: trtLayerName(node),
      index,
      nodeIndex,
      op,
      input,
      weight,
      weightIsConstant,
      ...(bias ? { bias } : {}),
      output,
      fusedOutput: fusion.fusedOutput,
      ...(fusion.activation ? { activation: fusion.activation } : {}),
      ...(fusion.activationRange ? { activationRange: fusion.activationRange } : {}),
      inputShape,
      weightShape,
      outputShape,
      inChannels,
      outChannels,
      kernel,
      stride,
      dilation,
      groups,
      depthwise: groups > 1 && groups === inChannels,
      weightAxis,
      macs,
      params,
    };
  });
  return { graph, layers, inputShapes, controlFlowLayers: controlFlow };
}

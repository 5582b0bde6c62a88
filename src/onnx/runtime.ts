/**
 * The one place that touches onnxruntime: session creation with trtmix's fixed settings, and running a
 * model with intermediate tensors exposed as outputs (shape and range probing).
 */
import * as ort from 'onnxruntime-node';
import type { ModelProto } from './model.ts';
import { encodeModel } from './model.ts';
import { sessionModel, weightStore } from './external-data.ts';
import { dtypeOfOrt, toFloat32, type TensorDtype, type TypedData } from '../data/dtype.ts';

export { ort };

export interface SessionOptions {
  /** Threads for one operator; fixed so that timings and float summation order are repeatable. */
  intraOpThreads?: number;
  /** onnxruntime graph optimisation level. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

export function defaultThreads(): number {
  const env = Number(process.env.TRTMIX_THREADS);
  return Number.isFinite(env) && env > 0 ? env : 2;
}

/**
 * The session option that points onnxruntime at the weight store, where every external tensor of a session lives
 * (see external-data.ts); nothing when no model has external data.
 */
export function externalDataOptions(folder = weightStore.dir): ort.InferenceSession.SessionOptions {
  return folder ? { extra: { session: { model_external_initializers_file_folder_path: folder } } } : {};
}

/** A model as session bytes: large tensors by reference into the weight store, the graph inline. */
export function sessionBytes(model: ModelProto): Uint8Array {
  return encodeModel(sessionModel(model).model);
}

export async function createSession(model: Uint8Array | ModelProto, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const bytes = model instanceof Uint8Array ? model : sessionBytes(model);
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: opts.intraOpThreads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: opts.optimization ?? 'all',
    // Failures come back as exceptions, which trtmix reports itself; onnxruntime's own log would add lines to stderr.
    logSeverityLevel: 4,
    // Q/DQ in trtmix's graphs simulate TensorRT: computed as written (float math on dequantized int8 values, float
    // bias). onnxruntime's QDQ rewrites (int32 bias quantization, integer kernels) fire or not depending on what
    // follows a layer, so without this a layer's numbers would depend on its neighbours' precision.
    extra: { session: { disable_quant_qdq: '1', ...(externalDataOptions().extra as { session?: Record<string, string> } | undefined)?.session } },
  });
}

/** An input tensor in the dtype the model takes (absent: float32; float16 as raw bits). */
export interface FeedTensor {
  data: TypedData;
  dims: number[];
  dtype?: TensorDtype;
}
export type Feeds = Record<string, FeedTensor>;

export function toOrtFeeds(feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new ort.Tensor(t.dtype ?? 'float32', t.data, t.dims);
  return out;
}

/** An onnxruntime tensor's values as float32, whatever its type (metrics and statistics read float32). */
export function floatData(t: ort.Tensor): Float32Array {
  const dtype = dtypeOfOrt(t.type);
  if (!dtype) throw new Error(`tensor of type ${t.type} has no numeric values`);
  return toFloat32(t.data as TypedData, dtype);
}

/**
 * A model whose graph outputs are the given tensors, of whatever type onnxruntime infers for them (a shallow copy:
 * the weights are shared, not copied).
 */
export function withOutputs(model: ModelProto, names: string[]): ModelProto {
  return { ...model, graph: { ...model.graph!, output: names.map((name) => ({ name })) } };
}

export interface ProbedTensor {
  /** Values as float32, whatever the tensor's type. */
  data: Float32Array;
  dims: number[];
  /** onnxruntime's type name (float32, float16, int64, bool, ...). */
  type: string;
}

/** Runs the model once and returns the named tensors (any intermediate tensor of the graph). */
export async function probeTensors(model: ModelProto, feeds: Feeds, names: string[], opts: SessionOptions = {}): Promise<Record<string, ProbedTensor>> {
  const session = await createSession(withOutputs(model, names), { optimization: 'basic', ...opts });
  try {
    const result = await session.run(toOrtFeeds(feeds));
    const out: Record<string, ProbedTensor> = {};
    for (const name of names) {
      const t = result[name];
      out[name] = { data: floatData(t), dims: [...t.dims], type: t.type };
    }
    return out;
  } finally {
    await session.release();
  }
}

/** Errors thrown by onnxruntime (loading or running a model), as opposed to trtmix's own. */
export function isOrtError(e: unknown): boolean {
  const m = e instanceof Error ? e.message : '';
  return /onnxruntime|ONNX Runtime|ONNXRuntimeError|Non-zero status code|ShapeInferenceError|TypeInferenceError|Type Error|Load model|This is an invalid model|Unrecognized attribute|Got invalid dimensions|Unexpected input data type|invalid (rank|dimensions|input)|Invalid (rank|Feed|input|Output)|is not a registered function\/op|Could not find an implementation|Required inputs/i.test(m);
}

/** onnxruntime's message as one readable line: source locations and C++ signatures dropped. */
export function ortMessage(e: unknown): string {
  const m = (e instanceof Error ? e.message : String(e))
    .replace(/\/onnxruntime_src\/\S+:\d+ /g, '')
    .replace(/\S*onnxruntime::[\w:]+\([^)]*\)( const)? /g, '')
    .replace(/\s+/g, ' ')
    .trim();
  const opset = /Opset (\d+) is under development.*?Current official support for domain (\S+) is till opset (\d+)/.exec(m);
  if (opset) return `opset ${opset[1]} of ${opset[2]} is newer than onnxruntime ${ort.env.versions.common} supports (up to opset ${opset[3]}); re-export with opset ${opset[3]} or lower`;
  return m.length > 400 ? `${m.slice(0, 400)}...` : m;
}

/**
 * The one place that touches onnxruntime: session creation with trtmix's fixed settings, and running a
 * model with intermediate tensors exposed as outputs (shape and range probing).
 */
import * as ort from 'onnxruntime-node';
import type { ModelProto } from './model.ts';
import { encodeModel } from './model.ts';
import { sessionModel, weightStore } from './external-data.ts';

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
    logSeverityLevel: 3,
    ...externalDataOptions(),
  });
}

export type Feeds = Record<string, { data: Float32Array; dims: number[] }>;

export function toOrtFeeds(feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new ort.Tensor('float32', t.data, t.dims);
  return out;
}

/**
 * A model whose graph outputs are the given tensors, of whatever type onnxruntime infers for them (a shallow copy:
 * the weights are shared, not copied).
 */
export function withOutputs(model: ModelProto, names: string[]): ModelProto {
  return { ...model, graph: { ...model.graph!, output: names.map((name) => ({ name })) } };
}

/** Runs the model once and returns the named float tensors (any intermediate tensor of the graph). */
export async function probeTensors(model: ModelProto, feeds: Feeds, names: string[], opts: SessionOptions = {}): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const session = await createSession(withOutputs(model, names), { optimization: 'basic', ...opts });
  try {
    const result = await session.run(toOrtFeeds(feeds));
    const out: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const name of names) {
      const t = result[name];
      out[name] = { data: t.data as Float32Array, dims: [...t.dims] };
    }
    return out;
  } finally {
    await session.release();
  }
}

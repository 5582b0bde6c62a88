/**
 * The one place that touches onnxruntime: session creation with trtmix's fixed settings, and running a
 * model with intermediate tensors exposed as outputs (shape and range probing).
 */
import * as ort from 'onnxruntime-node';
import type { ModelProto } from './model.ts';
import { cloneModel, encodeModel } from './model.ts';

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

export async function createSession(model: Uint8Array | ModelProto, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const bytes = model instanceof Uint8Array ? model : encodeModel(model);
  return ort.InferenceSession.create(bytes, {
    intraOpNumThreads: opts.intraOpThreads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: opts.optimization ?? 'all',
    logSeverityLevel: 3,
    // Q/DQ in trtmix's graphs simulate TensorRT: computed as written (float math on dequantized int8 values, float
    // bias). onnxruntime's QDQ rewrites (int32 bias quantization, integer kernels) fire or not depending on what
    // follows a layer, so without this a layer's numbers would depend on its neighbours' precision.
    extra: { session: { disable_quant_qdq: '1' } },
  });
}

export type Feeds = Record<string, { data: Float32Array; dims: number[] }>;

export function toOrtFeeds(feeds: Feeds): Record<string, ort.Tensor> {
  const out: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new ort.Tensor('float32', t.data, t.dims);
  return out;
}

/** A copy of the model whose graph outputs are the given tensors (declared float; types beyond are not probed). */
export function withOutputs(model: ModelProto, names: string[]): ModelProto {
  const copy = cloneModel(model);
  copy.graph!.output = names.map((name) => ({ name, type: { tensorType: { elemType: 1 } } }));
  return copy;
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

/**
 * Which of the ops outside the quantizable layers stay FP32 under `--other-ops fp16`: ModelOpt AutoCast's rules
 * (modelopt/onnx/autocast/nodeclassifier.py, convert.py) on the FP32 model's calibration data, plus a bound for
 * reductions whose sum can overflow FP16 while their inputs and outputs stay small:
 *   range        any input or output beyond data_max = 512 in magnitude (FP16's spacing there is 0.5: beyond it
 *                FP16 loses more than AutoCast accepts, and products overflow 65504 soon after)
 *   initializer  any float constant input beyond 65504, the largest FP16 value
 *   reduction    a sum-like reduction (ReduceSum, ReduceMean, ReduceL1/L2, ReduceSumSquare, GlobalAveragePool) whose n summed values (n = elements in / elements out) can exceed
 *                65504: n * max|x| (n * max|x|^2 for ReduceL2/ReduceSumSquare)
 *   op           ops without a float16 form among those trtmix runs in FP16
 * Data-movement ops are not classified: they keep the type of the data they read.
 */
import type { ModelProto } from '../onnx/model.ts';
import { DataType } from '../onnx/model.ts';
import { trtLayerName, type Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { sweep, type BatchSource } from './calibrate.ts';
import type { OtherOps, OtherOpsPrecision } from '../policy.ts';
import { elementTypes, FP16_OPS, SUM_REDUCTIONS } from './op-types.ts';
import { otherOpNodes, structureOf } from './placement.ts';

/** AutoCast's data_max: activations beyond it in magnitude keep their op in FP32. */
export const DATA_MAX = 512;
/** The largest float16 value: initializers beyond it, and sums that can reach it, keep their op in FP32. */
export const FP16_MAX = 65504;

export interface TensorRange {
  absMax: number;
  /** Elements seen over all calibration samples (ratios of these give a reduction's size). */
  count: number;
}

/** The float tensors the classification reads: every input and output of the ops it classifies. */
export function autocastTensors(graph: Graph, layers: readonly Layer[]): string[] {
  const s = structureOf(graph, layers);
  const names = new Set<string>();
  for (const i of otherOpNodes(graph, layers)) {
    const n = graph.nodes[i];
    for (const t of [...(n.input ?? []), ...(n.output ?? [])]) if (t && s.activations.has(t)) names.add(t);
  }
  return [...names];
}

/**
 * One FP32 pass over the calibration samples recording max |x| of each tensor. `ranges` are the batches
 * (src/data/batches.ts: a fixed batch and shape buckets respected; padding is not counted), by default batches of 2:
 * every tensor comes back at once, so small batches keep that within memory on large models.
 */
export async function collectRanges(
  model: ModelProto, tensors: string[], count: number, batchOf: BatchSource,
  opts: { ranges?: ReadonlyArray<readonly [number, number]>; onBatch?: (done: number) => void } = {},
): Promise<Record<string, TensorRange>> {
  const out: Record<string, TensorRange> = {};
  for (const t of tensors) out[t] = { absMax: 0, count: 0 };
  if (tensors.length === 0) return out;
  const batches = opts.ranges ?? Array.from({ length: Math.ceil(count / 2) }, (_, i) => [2 * i, Math.min(count, 2 * i + 2)] as const);
  await sweep(model, tensors, batches, batchOf, (t, data) => {
    const r = out[t];
    let m = r.absMax;
    for (let i = 0; i < data.length; i++) {
      const a = Math.abs(data[i]);
      if (a > m || Number.isNaN(a)) m = Number.isNaN(a) ? Infinity : a;
    }
    r.absMax = m;
    r.count += data.length;
  }, opts.onBatch);
  return out;
}

/** Why a node must stay FP32, or undefined when FP16 suits it. */
function fp32Reason(graph: Graph, node: number, ranges: Readonly<Record<string, TensorRange>>, activations: ReadonlySet<string>): string | undefined {
  const n = graph.nodes[node];
  const op = n.opType ?? '';
  if (!FP16_OPS.has(op)) return `op: ${op} has no float16 form here`;
  const types = elementTypes(graph);
  for (const x of n.input ?? []) {
    if (!x || activations.has(x) || types.get(x) !== DataType.FLOAT) continue;
    const v = graph.constantValues(x);
    if (!v) continue;
    let m = 0;
    for (const w of v.data) m = Math.max(m, Math.abs(w));
    if (m > FP16_MAX) return `initializer: ${x} holds |w| = ${m.toPrecision(4)} > ${FP16_MAX}`;
  }
  for (const t of [...(n.input ?? []), ...(n.output ?? [])]) {
    const r = t ? ranges[t] : undefined;
    if (r && r.absMax > DATA_MAX) return `range: |${t}| reaches ${r.absMax.toPrecision(4)} > ${DATA_MAX} on the calibration data`;
  }
  const kind = SUM_REDUCTIONS[op];
  const [input, output] = [ranges[(n.input ?? [])[0] ?? ''], ranges[(n.output ?? [])[0] ?? '']];
  if (kind && input && output && output.count > 0) {
    const size = input.count / output.count;
    const sum = size * (kind === 'square' ? input.absMax * input.absMax : input.absMax);
    if (sum > FP16_MAX) return `reduction: ${Math.round(size)} values of |x| <= ${input.absMax.toPrecision(4)} can sum to ${sum.toPrecision(4)} > ${FP16_MAX}`;
  }
  return undefined;
}

/**
 * The `otherOps` a search records: under fp16, every classified op AutoCast keeps in FP32, by TensorRT layer name
 * with the reason; under fp32 nothing to list (everything is FP32).
 */
export function classifyOtherOps(precision: OtherOpsPrecision, graph: Graph, layers: readonly Layer[], ranges: Readonly<Record<string, TensorRange>>): OtherOps {
  if (precision === 'fp32') return { precision, fp32: {} };
  const { activations } = structureOf(graph, layers);
  const fp32: Record<string, string> = {};
  for (const i of otherOpNodes(graph, layers)) {
    const why = fp32Reason(graph, i, ranges, activations);
    if (why) fp32[trtLayerName(graph.nodes[i])] = why;
  }
  return { precision, fp32 };
}

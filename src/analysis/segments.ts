/**
 * Running a model from a cut instead of from its inputs. Per layer, the analyzer scores a policy that differs
 * from a fixed one (all FP32, or all INT8) only at that layer and after it; everything upstream computes exactly
 * what the fixed policy computes. So the activations crossing the cut just before the layer are computed once,
 * walking the layers in topological order, and each per-layer model runs only from that cut to the outputs:
 * about half the work of a whole-model run on a backbone, where cost is spread along the layers.
 *
 * A cut is named by base-graph tensors. buildSimulatedModel keeps every base tensor name with its meaning (a
 * quantized output keeps its name; only new tensors get new names), so the same names address the same values
 * in the simulated model of any policy that agrees with the fixed one upstream of the cut.
 *
 * The numbers are those of the whole model, bit for bit (tests check it): int8 simulation is sensitive to the
 * last bit, since a value at a rounding tie moves a whole level, so the cut models are declared and fed so that
 * onnxruntime plans them as it plans the whole model (see inputInfo and CutWalker).
 */
import { allInputs, type Graph } from '../onnx/graph.ts';
import type { ModelProto, NodeProto, ValueInfoProto } from '../onnx/model.ts';
import { DataType } from '../onnx/model.ts';
import { tensorToFloat32 } from '../onnx/tensor.ts';
import { createSession, ort } from '../onnx/runtime.ts';
import type { SampleSet } from '../quant/evaluator.ts';
import { sliceFeeds } from '../quant/evaluator.ts';
import { batchRanges, inputNames } from '../data/batches.ts';

/**
 * The non-constant tensors that cross the cut just before node `nodeIndex` of the topologically sorted graph:
 * graph inputs and tensors produced before it that a node at or after it (or the graph's output list) reads.
 * `nodeIndex` = graph.nodes.length gives the tensors the graph outputs need.
 */
export function cutBefore(graph: Graph, nodeIndex: number): string[] {
  const position = new Map<NodeProto, number>();
  graph.nodes.forEach((n, i) => position.set(n, i));
  const crosses = (t: string) => graph.isGraphOutput(t) || graph.consumersOf(t).some((c) => position.get(c)! >= nodeIndex);
  const cut: string[] = [];
  for (const v of graph.inputs) if (v.name && crosses(v.name)) cut.push(v.name);
  for (let i = 0; i < Math.min(nodeIndex, graph.nodes.length); i++) {
    for (const o of graph.nodes[i].output ?? []) if (o && !graph.isConstant(o) && crosses(o)) cut.push(o);
  }
  return cut;
}

const ELEM_TYPES: Record<string, number> = {
  float32: DataType.FLOAT, float16: DataType.FLOAT16, float64: DataType.DOUBLE, int8: DataType.INT8, uint8: DataType.UINT8,
  int32: DataType.INT32, int64: DataType.INT64, bool: DataType.BOOL,
};

/**
 * A graph input for a tensor fed at the cut, typed as the tensor is. Its shape is declared the way the whole
 * model would know it: the batch axis symbolic (as the model's own input declares it), the other dims fixed
 * where every batch agrees. onnxruntime plans, folds and fuses by the declared shapes, and a different plan sums
 * in a different order, which moves int8 roundings that sit on a tie; a fixed batch dim alone changed the
 * all-INT8 char accuracy of PP-OCRv4 by a few characters in 128 lines.
 */
function inputInfo(name: string, batches: readonly ort.Tensor[], sizes: readonly number[], fixedBatch: boolean): ValueInfoProto {
  const first = batches[0];
  const elemType = ELEM_TYPES[first.type];
  if (elemType === undefined) throw new Error(`cannot feed tensor ${name} of type ${first.type} at a cut`);
  // A model with a fixed batch declares it fixed, so the cut models do too.
  const batchAxis = !fixedBatch && elemType !== DataType.INT64 && elemType !== DataType.INT32 && first.dims.length > 0 && batches.every((b, i) => b.dims[0] === sizes[i]);
  const dim = first.dims.map((d, axis) => ((axis === 0 && batchAxis) || !batches.every((b) => b.dims[axis] === d) ? { dimParam: `${name}:${axis}` } : { dimValue: d }));
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

/**
 * The part of a model that computes `outputs` from `inputs` (fed tensors replace their producers). Keeps only the
 * nodes and initializers that part needs. The model's nodes must be in topological order (buildSimulatedModel's are).
 */
export function extractSubgraph(model: ModelProto, inputs: ValueInfoProto[], outputs: string[]): ModelProto {
  const g = model.graph!;
  const fed = new Set(inputs.map((v) => v.name!));
  const initializers = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  const live = new Set(outputs);
  const nodes = g.node ?? [];
  const keep: NodeProto[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!(n.output ?? []).some((o) => live.has(o) && !fed.has(o))) continue;
    keep.push(n);
    for (const x of allInputs(n)) if (x) live.add(x);
  }
  for (const o of outputs) if (fed.has(o)) throw new Error(`output ${o} is fed at the cut; read it from the cut instead`);
  keep.reverse();
  const produced = new Set(keep.flatMap((n) => n.output ?? []));
  const usedInputs = new Set<string>();
  for (const name of live) {
    if (fed.has(name)) usedInputs.add(name);
    else if (!produced.has(name) && !initializers.has(name)) throw new Error(`tensor ${name} is needed after the cut but neither fed nor computed there`);
  }
  return {
    ...model,
    graph: {
      ...g,
      node: keep,
      input: inputs.filter((v) => usedInputs.has(v.name!)),
      output: outputs.map((name) => ({ name })),
      initializer: [...live].filter((name) => initializers.has(name) && !fed.has(name)).map((name) => initializers.get(name)!),
      valueInfo: (g.valueInfo ?? []).filter((v) => live.has(v.name!) && !fed.has(v.name!)),
    },
  };
}

export type TensorBatch = Record<string, ort.Tensor>;

/** A cut tensor that the fixed model computes as DequantizeLinear(source, scale, zeroPoint): stored as int8. */
interface Dequantized {
  source: string;
  scaleName: string;
  zeroPointName: string;
  scale: number;
  zeroPoint: number;
}

function scalarInitializer(model: ModelProto, name: string): number | undefined {
  const t = (model.graph!.initializer ?? []).find((i) => i.name === name);
  if (!t) return undefined;
  const v = tensorToFloat32(t);
  return v.length === 1 ? v[0] : undefined;
}

/**
 * The activations at one cut for every batch of the first `count` samples, advanced cut by cut through a fixed
 * model. Holds one cut at a time (plus whatever the caller keeps of a run's extra outputs).
 *
 * A cut tensor that is the output of a per-tensor DequantizeLinear (an int8 layer's output) is kept as the int8
 * tensor before it, and a model that dequantizes it the same way is fed that int8 tensor with the
 * DequantizeLinear left in: onnxruntime then sees the same DequantizeLinear -> MatMul pattern as in the whole
 * model and runs the same integer kernel (MatMulIntegerToFloat), where a fed float tensor would take the float
 * MatMul and round differently. It also keeps the cut at a quarter of the memory.
 */
export class CutWalker {
  /** Per batch: the stored tensors of the current cut (the int8 source for dequantized ones). */
  private batches: TensorBatch[];
  private names: string[];
  private dequantized = new Map<string, Dequantized>();
  /** Tensors the fixed model computes. */
  private readonly produced: Set<string>;
  private readonly producer: Map<string, NodeProto>;

  /**
   * `ranges`: the samples of each batch; `rows`: the rows each batch is fed with (more than its samples where a
   * fixed batch is padded; see src/data/batches.ts).
   */
  private constructor(readonly model: ModelProto, readonly ranges: Array<[number, number]>, readonly rows: number[], private readonly fixedBatch: boolean, batches: TensorBatch[], names: string[]) {
    this.batches = batches;
    this.names = names;
    this.producer = producers(model);
    this.produced = new Set(this.producer.keys());
  }

  /** Starts at the graph inputs. `model` is the fixed policy's simulated model that cuts are taken from. */
  static start(model: ModelProto, data: SampleSet, count: number, batchSize: number): CutWalker {
    const ranges = batchRanges(data, batchSize, count);
    const batches = ranges.map(([s, e]) => {
      const out: TensorBatch = {};
      for (const [name, t] of Object.entries(sliceFeeds(data, s, e))) out[name] = new ort.Tensor(t.dtype ?? 'float32', t.data, t.dims);
      return out;
    });
    const rows = batches.map((b, i) => Object.values(b)[0]?.dims[0] ?? ranges[i][1] - ranges[i][0]);
    return new CutWalker(model, ranges, rows, data.fixedBatch !== undefined, batches, inputNames(data));
  }

  get cut(): readonly string[] {
    return this.names;
  }

  private stored(name: string): string {
    return this.dequantized.get(name)?.source ?? name;
  }

  /**
   * The part of `model` that computes `outputs` from the current cut. A dequantized cut tensor is fed as its int8
   * source where `model` dequantizes it with the same node inputs, else as float.
   */
  subgraph(model: ModelProto, outputs: string[]): ModelProto {
    const producer = model === this.model ? this.producer : producers(model);
    const sizes = this.rows;
    const inputs = this.names.map((n) => {
      const d = this.dequantized.get(n);
      const p = producer.get(n);
      if (d && p?.opType === 'DequantizeLinear' && sameInputs(p, [d.source, d.scaleName, d.zeroPointName])) {
        return inputInfo(d.source, this.batches.map((b) => b[d.source]), sizes, this.fixedBatch);
      }
      return inputInfo(n, this.batches.map((b) => this.floatOf(b, n)), sizes, this.fixedBatch);
    });
    return extractSubgraph(model, inputs, outputs);
  }

  /** A cut tensor of one batch as the float it stands for (dequantized exactly as DequantizeLinear does). */
  private floatOf(batch: TensorBatch, name: string): ort.Tensor {
    const d = this.dequantized.get(name);
    if (!d) return batch[name];
    const q = batch[d.source];
    const data = q.data as Int8Array;
    const out = new Float32Array(data.length);
    // An int8 times a float32 is exact in double, so fround rounds it once, as float32 arithmetic does.
    for (let i = 0; i < data.length; i++) out[i] = Math.fround((data[i] - d.zeroPoint) * d.scale);
    return new ort.Tensor('float32', out, q.dims);
  }

  /**
   * Moves to a new cut: computes its tensors from the current ones with the fixed model. `keep` names further
   * tensors of the fixed model to return from the same run, for the batches that hold the first `keepSamples`
   * samples (e.g. a layer's FP32 output for the statistics samples). Cut tensors the fixed model does not compute
   * (constant-folded weight paths it replaced) are left out; a model that needs them computes them itself.
   */
  async advance(next: readonly string[], keep: readonly string[] = [], keepSamples = Infinity): Promise<TensorBatch[]> {
    const have = new Set(this.names);
    const reachable = next.filter((n) => have.has(n) || this.produced.has(n));
    const dequantized = new Map<string, Dequantized>();
    for (const n of reachable) {
      const d = have.has(n) ? this.dequantized.get(n) : this.dequantizedOf(n);
      if (d) dequantized.set(n, d);
    }
    const wanted = (n: string) => dequantized.get(n)?.source ?? n;
    const outputs = [...new Set([...reachable.filter((n) => !have.has(n)).map(wanted), ...keep.filter((n) => !have.has(n))])];
    const keptBatches = this.ranges.filter(([start]) => start < keepSamples).length;
    const kept: TensorBatch[] = Array.from({ length: keptBatches }, () => ({}));
    const nextBatches: TensorBatch[] = this.batches.map(() => ({}));
    const take = (i: number, result: TensorBatch) => {
      const b = this.batches[i];
      for (const n of reachable) nextBatches[i][wanted(n)] = have.has(n) ? b[this.stored(n)] : result[wanted(n)];
      if (i < keptBatches) for (const n of keep) kept[i][n] = have.has(n) ? this.floatOf(b, n) : result[n];
    };
    if (outputs.length > 0) {
      await this.runEach(this.subgraph(this.model, outputs), (i, r) => take(i, r));
    } else {
      this.batches.forEach((_, i) => take(i, {}));
    }
    this.batches = nextBatches;
    this.names = reachable;
    this.dequantized = dequantized;
    return kept;
  }

  private dequantizedOf(name: string): Dequantized | undefined {
    const p = this.producer.get(name);
    if (p?.opType !== 'DequantizeLinear' || (p.attribute ?? []).some((a) => a.name === 'axis')) return undefined;
    const [source, scaleName, zeroPointName] = p.input ?? [];
    if (!source || !scaleName || !zeroPointName) return undefined;
    const scale = scalarInitializer(this.model, scaleName);
    const zeroPoint = scalarInitializer(this.model, zeroPointName);
    if (scale === undefined || zeroPoint === undefined || this.producer.get(source)?.opType !== 'QuantizeLinear') return undefined;
    return { source, scaleName, zeroPointName, scale, zeroPoint };
  }

  /** Runs a model made by subgraph() over every batch, in order; `rows` is the batch's row count, padding included. */
  async runEach(model: ModelProto, visit: (batch: number, result: TensorBatch, range: [number, number], rows: number) => void | Promise<void>): Promise<void> {
    const wanted = (model.graph!.input ?? []).map((v) => v.name!);
    const session = await createSession(model);
    try {
      for (let i = 0; i < this.batches.length; i++) {
        const b = this.batches[i];
        const feeds: TensorBatch = {};
        for (const n of wanted) feeds[n] = b[n] ?? this.floatOf(b, n);
        await visit(i, await session.run(feeds), this.ranges[i], this.rows[i]);
      }
    } finally {
      await session.release();
    }
  }
}

function producers(model: ModelProto): Map<string, NodeProto> {
  const m = new Map<string, NodeProto>();
  for (const n of model.graph!.node ?? []) for (const o of n.output ?? []) if (o) m.set(o, n);
  return m;
}

function sameInputs(node: NodeProto, inputs: string[]): boolean {
  const own = node.input ?? [];
  return own.length === inputs.length && own.every((x, i) => x === inputs[i]);
}

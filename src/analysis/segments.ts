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
 */
import type { Graph } from '../onnx/graph.ts';
import type { ModelProto, NodeProto, ValueInfoProto } from '../onnx/model.ts';
import { DataType } from '../onnx/model.ts';
import { createSession, ort } from '../onnx/runtime.ts';
import type { SampleSet } from '../quant/evaluator.ts';
import { sliceFeeds } from '../quant/evaluator.ts';

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
 * A graph input for a tensor fed at the cut, typed as the tensor is. A dim is fixed where every batch has the
 * same size there and symbolic where batches differ (the batch axis of a short last batch): onnxruntime plans
 * a known shape as it would inside the whole model, and an unknown dim can make it fuse differently, which moves
 * int8 roundings.
 */
function inputInfo(name: string, batches: readonly ort.Tensor[]): ValueInfoProto {
  const first = batches[0];
  const elemType = ELEM_TYPES[first.type];
  if (elemType === undefined) throw new Error(`cannot feed tensor ${name} of type ${first.type} at a cut`);
  const dim = first.dims.map((d, axis) => (batches.every((b) => b.dims[axis] === d) ? { dimValue: d } : { dimParam: `${name}:${axis}` }));
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
    for (const x of n.input ?? []) if (x) live.add(x);
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

/**
 * The activations at one cut for every batch of the first `count` samples, advanced cut by cut through a fixed
 * model. Holds one cut at a time (plus whatever the caller keeps of a run's extra outputs).
 */
export class CutWalker {
  /** Per batch: the tensors of the current cut. */
  private batches: TensorBatch[];
  private names: string[];

  /** Tensors the fixed model computes. */
  private readonly produced: Set<string>;

  private constructor(readonly model: ModelProto, readonly ranges: Array<[number, number]>, batches: TensorBatch[], names: string[]) {
    this.batches = batches;
    this.names = names;
    this.produced = new Set((model.graph!.node ?? []).flatMap((n) => n.output ?? []));
  }

  /** Starts at the graph inputs. `model` is the fixed policy's simulated model that cuts are taken from. */
  static start(model: ModelProto, data: SampleSet, count: number, batchSize: number): CutWalker {
    const ranges: Array<[number, number]> = [];
    for (let s = 0; s < count; s += batchSize) ranges.push([s, Math.min(count, s + batchSize)]);
    const batches = ranges.map(([s, e]) => {
      const out: TensorBatch = {};
      for (const [name, t] of Object.entries(sliceFeeds(data, s, e))) out[name] = new ort.Tensor('float32', t.data, t.dims);
      return out;
    });
    return new CutWalker(model, ranges, batches, Object.keys(data.inputs));
  }

  get cut(): readonly string[] {
    return this.names;
  }

  /** Graph inputs that feed the current cut's tensors into a model. */
  inputInfos(): ValueInfoProto[] {
    return this.names.map((n) => inputInfo(n, this.batches.map((b) => b[n])));
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
    const outputs = [...new Set([...reachable, ...keep].filter((n) => !have.has(n)))];
    const keptBatches = this.ranges.filter(([start]) => start < keepSamples).length;
    const kept: TensorBatch[] = Array.from({ length: keptBatches }, () => ({}));
    const nextBatches: TensorBatch[] = this.batches.map(() => ({}));
    const take = (i: number, result: TensorBatch) => {
      const b = this.batches[i];
      for (const n of reachable) nextBatches[i][n] = b[n] ?? result[n];
      if (i < keptBatches) for (const n of keep) kept[i][n] = b[n] ?? result[n];
    };
    if (outputs.length > 0) {
      const part = extractSubgraph(this.model, this.inputInfos(), outputs);
      await this.runEach(part, (i, r) => take(i, r));
    } else {
      this.batches.forEach((_, i) => take(i, {}));
    }
    this.batches = nextBatches;
    this.names = reachable;
    return kept;
  }

  /** Runs a model whose inputs are (a subset of) the current cut over every batch, in order. */
  async runEach(model: ModelProto, visit: (batch: number, result: TensorBatch, range: [number, number]) => void | Promise<void>): Promise<void> {
    const wanted = (model.graph!.input ?? []).map((v) => v.name!);
    const session = await createSession(model);
    try {
      for (let i = 0; i < this.batches.length; i++) {
        const feeds: TensorBatch = {};
        for (const n of wanted) feeds[n] = this.batches[i][n];
        await visit(i, await session.run(feeds), this.ranges[i]);
      }
    } finally {
      await session.release();
    }
  }
}

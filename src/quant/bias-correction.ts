/**
 * Bias correction (NNCF's BiasCorrection / FastBiasCorrection; the method's "compensation BN"): quantizing a layer's
 * input and weights shifts the mean of its output, and the layers after it inherit the shift. Per INT8/mixed layer
 * the per-output-channel mean of (FP32 output - simulated output) on calibration samples is added to its bias.
 *
 * Where the bias lives (`biasSite`):
 *   Conv / ConvTranspose  input 2 (created when the node has none)
 *   Gemm                  input C, divided by beta (created when absent; a Gemm with beta 0 is skipped)
 *   MatMul                the constant operand of the Add that reads it (PyTorch's Linear export); a MatMul without
 *                         one is skipped: an extra Add would change the layer structure that the placement, the
 *                         latency model and TensorRT's layer names rely on
 * A MatMul between two activations has no bias to correct.
 *
 * Sequential, as NNCF's BiasCorrection: each layer is corrected on the model with the corrections of the layers
 * before it. Because a layer's own delta shifts its own output mean exactly and never reaches the layers before it,
 * the sequential result is the one set of deltas under which every corrected layer's mean error is zero; it is
 * reached by passes (`passes`): each pass runs the policy's simulated model once with every corrected layer's output
 * as an extra graph output and adds the remaining mean error to each delta. One pass is the one-run approximation
 * (every layer measured on the uncorrected simulated model); pass k makes the first k layers of every path exact.
 * The FP32 side is one run, once: mean(FP32 - simulated) = mean(FP32) - mean(simulated), so no pairing is needed.
 *
 * Significance (NNCF applies a shift only where it matters): a channel whose delta is below `threshold` (default
 * 1e-3) of that channel's FP32 standard deviation is left at 0 — below FP16's resolution relative to the channel's
 * spread, so it cannot change the layer's output error measurably — and a layer left with no channel is not
 * corrected. A layer whose shift is out of scale is not corrected either (NNCF FastBiasCorrection's rule,
 * `magnitude` 2: max |delta / bias| must stay below it; against the channel's FP32 standard deviation where the
 * bias is 0 or absent): on PP-OCRv4 correcting every layer collapses the model (README, "Bias correction"). Deltas are rounded to 6 significant digits, as policy.json records them, so the simulation, the
 * exports and replay use the same float32 values.
 */
import type { NodeProto, TensorProto } from '../onnx/model.ts';
import type { Graph } from '../onnx/graph.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { createSession, floatData, toOrtFeeds, withOutputs } from '../onnx/runtime.ts';
import { attrFloat, floatTensor } from '../onnx/tensor.ts';
import { batchRanges, batchInputs, type SampleSource } from '../data/batches.ts';
import { policyKey, readsInt8, type LayerPolicy } from '../policy.ts';
import type { ModelProto } from '../onnx/model.ts';

/** Layer name -> per-output-channel delta added to the layer's output (through its bias). */
export type BiasCorrections = ReadonlyMap<string, Float32Array>;

/** policy.json `biasCorrection` (absent: no correction). */
export interface BiasCorrectionRecord {
  /** Calibration samples the means were measured on. */
  samples: number;
  /** Passes of the sequential correction (1 = every layer measured on the uncorrected simulated model). */
  passes: number;
  /** Channels whose delta is below this share of their FP32 standard deviation are not corrected. */
  threshold: number;
  /** Layers whose largest delta is this many times their bias (or FP32 spread) or more are not corrected. */
  magnitude: number;
  /** Layer name -> per-channel delta (added to the layer's output through its bias). */
  layers: Record<string, number[]>;
}

export const DEFAULT_BIAS_PASSES = 1;
export const DEFAULT_BIAS_THRESHOLD = 1e-3;
/** NNCF FastBiasCorrection's default threshold on max |shift / bias|. */
export const DEFAULT_BIAS_MAGNITUDE = 2;
/** Calibration samples the correction is measured on at most (NNCF's FastBiasCorrection default subset is 300). */
export const DEFAULT_BIAS_SAMPLES = 128;

/** Where a layer's bias is: an input of a node (present or to be created). */
export interface BiasSite {
  /** Index in graph.nodes of the node that reads the bias. */
  nodeIndex: number;
  inputIndex: number;
  /** The constant there now; absent when the input is created. */
  tensor?: string;
  channels: number;
  /** The delta enters the stored tensor divided by this (Gemm beta). */
  beta: number;
  /** Where the delta shows: the layer's output, or for a MatMul the output of its bias Add. */
  output: string;
}

/** Output axis that indexes output channels: 1 for convolutions (NCHW), the last for Gemm and MatMul. */
export function channelAxis(layer: Pick<Layer, 'op' | 'outputShape'>): number {
  return layer.op === 'Conv' || layer.op === 'ConvTranspose' ? 1 : layer.outputShape.length - 1;
}

function channelCount(layer: Layer): number {
  return layer.outputShape[channelAxis(layer)] ?? 0;
}

/** Dims of a constant bias that broadcast over the output as a per-channel vector (ends in 1 or C, 1s before). */
function broadcastsPerChannel(dims: number[], channels: number): boolean {
  return dims.slice(0, -1).every((d) => d === 1) && (dims.length === 0 || dims[dims.length - 1] === channels || dims[dims.length - 1] === 1);
}

/** Where the bias of a layer is, or undefined where it cannot be corrected (see the file comment). */
export function biasSite(graph: Graph, layer: Layer): BiasSite | undefined {
  if (!layer.weightIsConstant) return undefined;
  const channels = channelCount(layer);
  if (!(channels > 0)) return undefined;
  const node = graph.nodes[layer.nodeIndex];
  const existing = (node.input ?? [])[2] || undefined;
  if (layer.op === 'Conv' || layer.op === 'ConvTranspose') {
    if (existing && !graph.constantValues(existing)) return undefined;
    return { nodeIndex: layer.nodeIndex, inputIndex: 2, tensor: existing, channels, beta: 1, output: layer.output };
  }
  if (layer.op === 'Gemm') {
    const beta = attrFloat(node, 'beta', 1);
    if (beta === 0) return undefined;
    if (existing) {
      const c = graph.constantValues(existing);
      if (!c || (!broadcastsPerChannel(c.dims, channels) && !(c.dims.length === 2 && c.dims[1] === channels))) return undefined;
    }
    return { nodeIndex: layer.nodeIndex, inputIndex: 2, tensor: existing, channels, beta, output: layer.output };
  }
  // MatMul: the bias Add after it.
  const readers = graph.consumersOf(layer.output);
  if (readers.length !== 1 || readers[0].opType !== 'Add' || graph.isGraphOutput(layer.output)) return undefined;
  const add = readers[0];
  const k = (add.input ?? []).findIndex((x) => x !== layer.output);
  const operand = (add.input ?? [])[k];
  const c = operand ? graph.constantValues(operand) : undefined;
  if (!c || c.dims.length > layer.outputShape.length || !broadcastsPerChannel(c.dims, channels)) return undefined;
  return { nodeIndex: graph.nodes.indexOf(add), inputIndex: k, tensor: operand, channels, beta: 1, output: (add.output ?? [])[0] };
}

/** The bias tensor with the delta added (float32; per-channel, or the Gemm's 2-D C with the delta on every row). */
export function correctedBias(graph: Graph, site: BiasSite, delta: Float32Array): { dims: number[]; data: Float32Array } {
  const c = site.tensor ? graph.constantValues(site.tensor)! : undefined;
  const C = site.channels;
  if (c && c.dims.length === 2 && c.dims[0] > 1) {
    const data = new Float32Array(c.data.length);
    const cols = c.dims[1];
    for (let i = 0; i < data.length; i++) data[i] = c.data[i] + delta[i % cols] / site.beta;
    return { dims: [...c.dims], data };
  }
  const data = new Float32Array(C);
  for (let i = 0; i < C; i++) data[i] = (c ? c.data[c.data.length === 1 ? 0 : i] : 0) + delta[i] / site.beta;
  // Keep the rank of a per-channel operand ([1, C] for a MatMul's Add), else [C].
  const dims = c && c.dims.length > 1 ? [...c.dims.slice(0, -1), C] : [C];
  return { dims, data };
}

/** The bias sites of the corrected layers, by node: the rewrite (simulation and model.qdq.onnx) uses them. */
export function correctionSites(graph: Graph, layers: readonly Layer[], corrections: BiasCorrections | undefined): Map<number, Array<{ site: BiasSite; layer: Layer; delta: Float32Array }>> {
  const out = new Map<number, Array<{ site: BiasSite; layer: Layer; delta: Float32Array }>>();
  if (!corrections || corrections.size === 0) return out;
  for (const layer of layers) {
    const delta = corrections.get(layer.name);
    if (!delta) continue;
    const site = biasSite(graph, layer);
    if (!site) throw new Error(`bias correction for ${layer.name}, which has no bias site`);
    if (delta.length !== site.channels) throw new Error(`bias correction for ${layer.name} has ${delta.length} channels, the layer ${site.channels}`);
    out.set(site.nodeIndex, [...(out.get(site.nodeIndex) ?? []), { site, layer, delta }]);
  }
  return out;
}

/**
 * The model with the corrected biases and nothing else changed (model.corrected.onnx: what the TensorRT <= 10
 * implicit path builds from; same node and tensor names, so the flags and the calibration cache still apply).
 */
export function correctedModel(graph: Graph, layers: readonly Layer[], corrections: BiasCorrections): ModelProto {
  const sites = correctionSites(graph, layers, corrections);
  const added: TensorProto[] = [];
  const taken = new Set<string>([...graph.initializers.keys(), ...graph.producer.keys()]);
  const nodes: NodeProto[] = graph.nodes.map((n, i) => {
    const list = sites.get(i);
    if (!list) return n;
    const input = [...(n.input ?? [])];
    for (const { site, layer, delta } of list) {
      const v = correctedBias(graph, site, delta);
      let name = `${site.tensor ?? `${layer.name}_bias`}__corrected`;
      for (let k = 1; taken.has(name); k++) name = `${site.tensor ?? `${layer.name}_bias`}__corrected_${k}`;
      taken.add(name);
      added.push(floatTensor(name, v.dims, v.data));
      while (input.length < site.inputIndex) input.push('');
      input[site.inputIndex] = name;
    }
    return { ...n, input };
  });
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  for (const o of graph.outputs) used.add(o.name ?? '');
  const g = graph.model.graph!;
  // Initializers the corrected ones replace (unless something else reads them) go.
  const initializer = [...(g.initializer ?? []).filter((t) => used.has(t.name ?? '') || !isReplacedBias(t, sites)), ...added];
  return { ...graph.model, graph: { ...g, node: nodes, initializer } };
}

function isReplacedBias(t: TensorProto, sites: Map<number, Array<{ site: BiasSite }>>): boolean {
  for (const list of sites.values()) for (const { site } of list) if (site.tensor === t.name) return true;
  return false;
}

/** policy.json's layers of a record -> the corrections (float32, as simulated). */
export function correctionsOf(record: Pick<BiasCorrectionRecord, 'layers'> | undefined): Map<string, Float32Array> | undefined {
  if (!record) return undefined;
  return new Map(Object.entries(record.layers).map(([name, d]) => [name, Float32Array.from(d)]));
}

/** Corrections -> policy.json's layers (in layer order). */
export function correctionLayers(layers: readonly Layer[], corrections: BiasCorrections): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const l of layers) {
    const d = corrections.get(l.name);
    // The 6 digits the deltas were rounded to: they read back to the same float32 values.
    if (d) out[l.name] = Array.from(d, round6);
  }
  return out;
}

/** Per-channel sums of a batch result laid out [..., C at `axis`, ...]. */
export function addChannelSums(sum: Float64Array, sumSq: Float64Array | undefined, data: Float32Array, dims: readonly number[], axis: number): number {
  const C = dims[axis];
  let inner = 1;
  for (let d = axis + 1; d < dims.length; d++) inner *= dims[d];
  const outer = data.length / (C * inner);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < C; c++) {
      const base = (o * C + c) * inner;
      let s = 0;
      let q = 0;
      for (let j = 0; j < inner; j++) { const v = data[base + j]; s += v; q += v * v; }
      sum[c] += s;
      if (sumSq) sumSq[c] += q;
    }
  }
  return outer * inner;
}

const round6 = (x: number) => (x === 0 ? 0 : Number(x.toPrecision(6)));

interface ChannelStats { mean: Float64Array; std: Float64Array }

export interface BiasCorrectorOptions {
  passes?: number;
  threshold?: number;
  /** Layers whose largest shift is this many times their bias (or FP32 spread) or more are not corrected. */
  magnitude?: number;
  batchSize?: number;
  /** Builds the policy's simulated model with the given corrections and extra outputs. */
  simulate(policy: LayerPolicy, corrections: BiasCorrections, extraOutputs: string[]): ModelProto;
}

/**
 * Measures the corrections of a policy on calibration samples; FP32 channel statistics once, then `passes` runs of
 * the simulated model per policy. Results are kept per policy (a search writes the best one's into policy.json and
 * each ladder step's into its own), about 4 bytes per corrected channel.
 */
export class BiasCorrector {
  readonly passes: number;
  readonly threshold: number;
  readonly magnitude: number;
  private readonly cache = new Map<string, Map<string, Float32Array>>();
  private readonly sites: Map<string, BiasSite>;
  private readonly layerNames: string[];

  private constructor(
    private readonly graph: Graph,
    private readonly layers: readonly Layer[],
    private readonly data: SampleSource,
    private readonly fp32: Map<string, ChannelStats>,
    private readonly opts: BiasCorrectorOptions,
  ) {
    this.passes = opts.passes ?? DEFAULT_BIAS_PASSES;
    this.threshold = opts.threshold ?? DEFAULT_BIAS_THRESHOLD;
    this.magnitude = opts.magnitude ?? DEFAULT_BIAS_MAGNITUDE;
    this.sites = new Map();
    for (const l of layers) { const s = biasSite(graph, l); if (s) this.sites.set(l.name, s); }
    this.layerNames = layers.map((l) => l.name);
  }

  static async create(model: ModelProto, graph: Graph, layers: readonly Layer[], data: SampleSource, opts: BiasCorrectorOptions): Promise<BiasCorrector> {
    const correctable = layers.flatMap((l) => { const s = biasSite(graph, l); return s ? [{ layer: l, output: s.output }] : []; });
    const stats = await channelStats(model, correctable, data, opts.batchSize ?? 8, true);
    return new BiasCorrector(graph, layers, data, stats as Map<string, ChannelStats>, opts);
  }

  get samples(): number {
    return this.data.count;
  }

  /** The layers a policy corrects: INT8/mixed layers that have a bias site. */
  candidates(policy: LayerPolicy): Layer[] {
    return this.layers.filter((l) => this.sites.has(l.name) && readsInt8(policy[l.name]?.precision ?? 'fp32'));
  }

  /** The policy's corrections if they were measured already. */
  cached(policy: LayerPolicy): Map<string, Float32Array> | undefined {
    return this.cache.get(policyKey(this.layerNames, policy));
  }

  /** The policy's corrections, measured (or from the cache). */
  async corrections(policy: LayerPolicy): Promise<Map<string, Float32Array>> {
    const key = policyKey(this.layerNames, policy);
    const hit = this.cache.get(key);
    if (hit) return hit;
    const layers = this.candidates(policy);
    const deltas = new Map<string, Float64Array>(layers.map((l) => [l.name, new Float64Array(this.sites.get(l.name)!.channels)]));
    let applied = new Map<string, Float32Array>();
    for (let pass = 0; pass < this.passes && layers.length > 0; pass++) {
      const measured = layers.map((l) => ({ layer: l, output: this.sites.get(l.name)!.output }));
      const model = this.opts.simulate(policy, applied, measured.map((m) => m.output));
      const sim = await channelStats(model, measured, this.data, this.opts.batchSize ?? 8, false);
      let moved = 0;
      for (const l of layers) {
        const d = deltas.get(l.name)!;
        const f = this.fp32.get(l.name)!;
        const s = sim.get(l.name)!;
        const now = applied.get(l.name);
        for (let c = 0; c < d.length; c++) {
          // The residual is measured with the applied (rounded, thresholded) delta, so it corrects that one.
          const step = f.mean[c] - s.mean[c];
          d[c] = (now?.[c] ?? 0) + step;
          if (Math.abs(step) > this.threshold * f.std[c]) moved++;
        }
      }
      applied = this.significant(layers, deltas);
      if (moved === 0) break;
    }
    this.cache.set(key, applied);
    return applied;
  }

  /**
   * Deltas rounded as recorded; channels below the threshold set to 0, layers without any dropped, and layers whose
   * shift is out of scale dropped (NNCF's FastBiasCorrection magnitude rule: max |delta / bias| below 2; against the
   * channel's FP32 spread where the bias is 0 or absent).
   */
  private significant(layers: readonly Layer[], deltas: Map<string, Float64Array>): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const l of layers) {
      const d = deltas.get(l.name)!;
      const std = this.fp32.get(l.name)!.std;
      const site = this.sites.get(l.name)!;
      const bias = site.tensor ? correctedBias(this.graph, site, new Float32Array(d.length)) : undefined;
      let magnitude = 0;
      for (let c = 0; c < d.length; c++) {
        const b = bias && bias.data.length === d.length ? Math.abs(bias.data[c] * site.beta) : 0;
        magnitude = Math.max(magnitude, Math.abs(d[c]) / (b > 0 ? b : std[c] || Infinity));
      }
      if (!(magnitude < this.magnitude)) continue;
      const v = new Float32Array(d.length);
      let any = false;
      for (let c = 0; c < d.length; c++) {
        if (Math.abs(d[c]) > this.threshold * std[c] && Number.isFinite(d[c])) { v[c] = round6(d[c]); any = true; }
      }
      if (any) out.set(l.name, v);
    }
    return out;
  }

  record(corrections: BiasCorrections): BiasCorrectionRecord {
    return { samples: this.samples, passes: this.passes, threshold: this.threshold, magnitude: this.magnitude, layers: correctionLayers(this.layers, corrections) };
  }
}

/** Per-channel mean (and standard deviation) of every layer's measured tensor over the samples, in batches. */
async function channelStats(model: ModelProto, measured: ReadonlyArray<{ layer: Layer; output: string }>, data: SampleSource, batchSize: number, withStd: boolean): Promise<Map<string, { mean: Float64Array; std?: Float64Array }>> {
  const layers = measured.map((m) => m.layer);
  const out = new Map<string, { mean: Float64Array; std?: Float64Array }>();
  if (layers.length === 0) return out;
  const session = await createSession(withOutputs(model, [...new Set(measured.map((m) => m.output))]));
  const sums = layers.map((l) => ({ sum: new Float64Array(channelCount(l)), sq: withStd ? new Float64Array(channelCount(l)) : undefined, n: 0 }));
  try {
    for (const [start, end] of batchRanges(data, batchSize)) {
      const feeds = batchInputs(data, start, end);
      const rows = Object.values(feeds)[0]?.dims[0] ?? end - start;
      const result = await session.run(toOrtFeeds(feeds));
      layers.forEach((l, i) => {
        const t = result[measured[i].output];
        let values = floatData(t);
        // Padding rows (a fixed batch) repeat the last sample; they are left out.
        if (rows > end - start && t.dims[0] === rows) values = values.subarray(0, (values.length / rows) * (end - start));
        const dims = rows > end - start && t.dims[0] === rows ? [end - start, ...t.dims.slice(1)] : [...t.dims];
        const axis = channelAxis({ op: l.op, outputShape: dims });
        sums[i].n += addChannelSums(sums[i].sum, sums[i].sq, values, dims, axis);
      });
    }
  } finally {
    await session.release();
  }
  layers.forEach((l, i) => {
    const { sum, sq, n } = sums[i];
    const mean = sum.map((s) => s / n);
    out.set(l.name, sq ? { mean, std: sq.map((q, c) => Math.sqrt(Math.max(0, q / n - mean[c] * mean[c]))) } : { mean });
  });
  return out;
}

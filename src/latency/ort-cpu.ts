/**
 * `ort-cpu` latency: the simulated model of a policy, timed in onnxruntime on this machine. A measured signal:
 * warm-up runs, then the median wall time of timed runs, a fixed intra-op thread count, one result per policy
 * (cached by policyKey). Per-layer times come from extra profiled runs (onnxruntime's node profiler), as
 * shares of the median: nodes are mapped back to layers by name, layout reorders count as reformats, the rest
 * (shape arithmetic, Q/DQ of graph inputs) is reported as otherMs.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { ort, defaultThreads, externalDataOptions, sessionBytes } from '../onnx/runtime.ts';
import type { Layer } from '../onnx/layer-types.ts';
import { policyKey, type LayerPolicy } from '../policy.ts';
import { buildSimulatedModel, type SimulationBase } from '../quant/simulate.ts';
import type { LatencyEstimate, LatencyModel } from './types.ts';
import type { KernelPlan, LatencyGraph } from './graph.ts';
import { NodeIndex } from './trt-profile.ts';
import { typedArray, type TensorDtype } from '../data/dtype.ts';

export type ModelBuilder = (policy: LayerPolicy) => Promise<Uint8Array>;

/** Runs profiled for the per-layer split (their per-node median). */
const PROFILED_RUNS = 3;

export interface OrtCpuOptions {
  /** Bytes of the ONNX model to time for a policy (default wiring: the simulator of src/quant). */
  buildModel: ModelBuilder;
  layers: Layer[];
  /** Concrete input shapes (batch included). */
  inputShapes: Record<string, number[]>;
  /** The dtype each input takes (default float32): floats are fed seeded noise, integers and booleans zeros. */
  inputTypes?: Record<string, TensorDtype>;
  /** For mapping profiled nodes to layers; without it every node's time goes to otherMs. */
  graph?: LatencyGraph;
  plan?: KernelPlan;
  /** onnxruntime intraOpNumThreads (default: TRTMIX_THREADS or 2). */
  threads?: number;
  warmupRuns?: number;
  timedRuns?: number;
  /** Profile one extra run for the per-layer split (default true). */
  perLayer?: boolean;
  seed?: string;
}

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The default builder: the policy's simulated model (Q/DQ and float16 rounding per DESIGN.md's action table). */
export function simulatedModelBuilder(base: SimulationBase): ModelBuilder {
  return async (policy) => sessionBytes(buildSimulatedModel(base, policy));
}

interface NodeTime {
  name: string;
  op: string;
  us: number;
}

export class OrtCpuLatencyModel implements LatencyModel {
  readonly target = 'ort-cpu';
  readonly threads: number;
  /** How many policies were actually measured (cache misses). */
  measurements = 0;
  private readonly cache = new Map<string, Promise<LatencyEstimate>>();
  private readonly names: string[];
  private readonly feeds: Record<string, ort.Tensor>;
  private readonly ownerOfNode = new Map<string, string>();
  private readonly index?: NodeIndex;

  constructor(private readonly opts: OrtCpuOptions) {
    this.threads = opts.threads ?? defaultThreads();
    this.names = opts.layers.map((l) => l.name);
    const rng = seedrandom(opts.seed ?? 'ort-cpu');
    this.feeds = {};
    for (const [name, dims] of Object.entries(opts.inputShapes)) {
      const dtype = opts.inputTypes?.[name] ?? 'float32';
      const data = typedArray(dtype, dims.reduce((a, b) => a * b, 1));
      if (dtype === 'float32') for (let i = 0; i < data.length; i++) data[i] = rng() * 2 - 1;
      this.feeds[name] = new ort.Tensor(dtype, data, dims);
    }
    if (opts.graph) this.index = new NodeIndex(opts.graph);
    for (const k of opts.plan?.kernels ?? []) for (const n of k.nodes) this.ownerOfNode.set(n, k.owner);
    for (const l of opts.layers) this.ownerOfNode.set(l.name, l.name);
  }

  estimate(policy: LayerPolicy): Promise<LatencyEstimate> {
    const key = policyKey(this.names, policy);
    let hit = this.cache.get(key);
    if (!hit) {
      hit = this.measure(policy);
      this.cache.set(key, hit);
      hit.catch(() => this.cache.delete(key));
    }
    return hit;
  }

  private sessionOptions(extra: ort.InferenceSession.SessionOptions = {}): ort.InferenceSession.SessionOptions {
    return { intraOpNumThreads: this.threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3, ...externalDataOptions(), ...extra };
  }

  private async measure(policy: LayerPolicy): Promise<LatencyEstimate> {
    const bytes = await this.opts.buildModel(policy);
    this.measurements++;
    const session = await ort.InferenceSession.create(bytes, this.sessionOptions());
    const times: number[] = [];
    try {
      for (let i = 0; i < (this.opts.warmupRuns ?? 3); i++) await session.run(this.feeds);
      for (let i = 0; i < Math.max(1, this.opts.timedRuns ?? 10); i++) {
        const t0 = performance.now();
        await session.run(this.feeds);
        times.push(performance.now() - t0);
      }
    } finally {
      await session.release();
    }
    const totalMs = median(times);
    const nodes = this.opts.perLayer === false ? [] : await this.profileNodes(bytes);
    return this.split(policy, totalMs, nodes);
  }

  /** Profiled runs: per-node kernel times in microseconds, the median over PROFILED_RUNS runs after one warm-up. */
  private async profileNodes(bytes: Uint8Array): Promise<NodeTime[]> {
    const dir = mkdtempSync(join(tmpdir(), 'trtmix-ort-profile-'));
    try {
      const session = await ort.InferenceSession.create(bytes, this.sessionOptions({ enableProfiling: true, profileFilePrefix: join(dir, 'run') }));
      try {
        for (let i = 0; i <= PROFILED_RUNS; i++) await session.run(this.feeds);
        session.endProfiling();
      } finally {
        await session.release();
      }
      const file = readdirSync(dir).find((f) => f.endsWith('.json'));
      if (!file) return [];
      const events = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Array<{ cat?: string; name?: string; dur?: number; args?: { op_name?: string } }>;
      const all = events.filter((e) => e.cat === 'Node' && typeof e.name === 'string' && e.name.endsWith('_kernel_time'));
      // Every run executes the same nodes in the same order; the first run pays one-time allocations.
      const perRun = all.length / (PROFILED_RUNS + 1);
      if (!Number.isInteger(perRun)) return [];
      return all.slice(0, perRun).map((e, i) => ({
        name: e.name!.slice(0, -'_kernel_time'.length),
        op: e.args?.op_name ?? '',
        us: median(Array.from({ length: PROFILED_RUNS }, (_, r) => all[(r + 1) * perRun + i].dur ?? 0)),
      }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /**
   * The layer an onnxruntime node belongs to: by node name or the tensor its name derives from, after dropping
   * what onnxruntime's graph transformers append ("<node>/MatmulTransposeFusion/", "<output>_nchwc") and the
   * simulator's Q/DQ suffixes ("<tensor>__QuantizeLinear").
   */
  layerOfNode(name: string): string | undefined {
    const candidates = [name, name.split('/')[0], name.split('__')[0]];
    for (let cut = name; cut.includes('_'); ) {
      cut = cut.slice(0, cut.lastIndexOf('_'));
      candidates.push(cut);
    }
    for (const c of candidates) {
      const owner = this.ownerOfNode.get(c);
      if (owner) return owner;
      const producer = this.index?.producerOf.get(c);
      const viaTensor = producer ? this.ownerOfNode.get(producer) : undefined;
      if (viaTensor) return viaTensor;
    }
    return undefined;
  }

  /**
   * Shares of the median per layer. onnxruntime's layout reorders (to and from its blocked NCHWc format) are the
   * CPU's reformats: a ReorderInput is charged to the next layer that runs, a ReorderOutput to the last one.
   */
  private split(policy: LayerPolicy, totalMs: number, nodes: NodeTime[]): LatencyEstimate {
    const ms = new Map<string, number>();
    const reformat = new Map<string, number>();
    const add = (m: Map<string, number>, layer: string, us: number) => m.set(layer, (m.get(layer) ?? 0) + us);
    let mappedUs = 0;
    let allUs = 0;
    let last: string | undefined;
    let pendingReorderUs = 0;
    for (const n of nodes) {
      allUs += n.us;
      const layer = this.layerOfNode(n.name);
      if (layer) {
        add(ms, layer, n.us);
        mappedUs += n.us;
        if (pendingReorderUs > 0) {
          add(reformat, layer, pendingReorderUs);
          mappedUs += pendingReorderUs;
          pendingReorderUs = 0;
        }
        last = layer;
      } else if (n.op === 'ReorderInput') {
        pendingReorderUs += n.us;
      } else if (n.op === 'ReorderOutput' && last) {
        add(reformat, last, n.us);
        mappedUs += n.us;
      }
    }
    const scale = allUs > 0 ? totalMs / allUs : 0;
    const perLayer = this.names.map((name) => ({
      name,
      ms: (ms.get(name) ?? 0) * scale,
      precision: policy[name]?.precision ?? 'fp32',
      reformatMs: (reformat.get(name) ?? 0) * scale,
    }));
    const otherMs = allUs > 0 ? (allUs - mappedUs) * scale : totalMs;
    return { totalMs, perLayer, otherMs };
  }
}

/**
 * Roofline latency of a policy on a GPU profile. Per layer kernel: its fixed time plus compute at the kernel's
 * precision and shape efficiency combined with bytes moved / bandwidth (efficiency.ts: terms fitted to measured
 * kernels); per other kernel: bytes / bandwidth + launch overhead. Per tensor boundary whose producer writes a
 * different precision than its consumer reads: a reformat kernel (read + write the tensor, + launch).
 * The reformats are what make latency non-additive over layers: the cost of a layer's precision depends on
 * its neighbours'.
 */
import type { LayerPolicy, Precision } from '../policy.ts';
import type { LatencyEstimate, LatencyModel, LayerLatency } from './types.ts';
import type { DeviceProfile } from './device-profile.ts';
import type { Kernel, KernelPlan } from './graph.ts';
import type { PlacedPrecisions } from '../quant/placement.ts';
import { DATA_MOVEMENT_OPS } from '../quant/op-types.ts';
import { BYTES, MEMORY_EFFICIENCY, activationBytes, fittedEfficiency, gemmShape, layerKernelTime, type EfficiencyModel, type KernelPrecision } from './efficiency.ts';

/** Precision a layer reads its activations in (DESIGN.md action table). */
export function inputPrecision(p: Precision): KernelPrecision {
  return p === 'mixed' ? 'int8' : p;
}

/** Precision a layer writes its output in: mixed layers read int8 and write fp16. */
export function outputPrecision(p: Precision): KernelPrecision {
  return p === 'mixed' ? 'fp16' : p;
}

/** The network's own inputs and outputs are fp32 tensors. */
const IO_PRECISION: KernelPrecision = 'fp32';

export interface KernelCost {
  kernel: Kernel;
  precision: KernelPrecision;
  computeS: number;
  memoryS: number;
  seconds: number;
}

export interface ReformatCost {
  tensor: string;
  from: KernelPrecision;
  to: KernelPrecision;
  seconds: number;
  owner: string;
}

export interface RooflineBreakdown {
  kernels: KernelCost[];
  reformats: ReformatCost[];
}

function layerPrecision(policy: LayerPolicy, name: string): Precision {
  return policy[name]?.precision ?? 'fp32';
}

/**
 * Prices every kernel and reformat of the plan for one policy. With `placed` (the policy's Q/DQ placement,
 * src/quant/placement.ts) the other ops compute in the precision model.qdq.onnx gives them (FP16 or FP32, not the
 * precision of their input), a residual skip fused into an int8 kernel is read in INT8, an int8 kernel whose
 * readers do not quantize its result writes their float type directly (a wider write, no reformat kernel), and a Q
 * that every reader of a tensor shares fuses into the kernel producing it; the other Q/DQ and the Casts the
 * placement adds where producer and reader differ are the reformats. A layer's own time still depends
 * only on its precision: whatever the neighbours add is a reformat (the environment's lower bound relies on it).
 */
export function priceKernels(plan: KernelPlan, device: DeviceProfile, policy: LayerPolicy, batch = 1, efficiency: EfficiencyModel = fittedEfficiency(), placed?: PlacedPrecisions): RooflineBreakdown {
  const memS = (bytes: number): number => bytes / (device.memoryBytesPerS * MEMORY_EFFICIENCY);
  const elems = (t: string): number => (plan.tensorElems.get(t) ?? 0) * batch;
  const outPrec: KernelPrecision[] = [];
  const kernels: KernelCost[] = [];
  const reformats: ReformatCost[] = [];
  const reformatted = new Set<string>();
  const sourcePrecision = (t: string): KernelPrecision => {
    const id = plan.producer.get(t);
    return id === undefined ? IO_PRECISION : outPrec[id];
  };
  // TensorRT fuses a precision change into a kernel that is not a GEMM-class layer (explicit-quantization fusions:
  // DQ into the prologue and Q into the epilogue of pooling, elementwise and normalization kernels), so only a
  // change between two layers (or at the graph's inputs and outputs) is a reformat kernel of its own.
  const fusedIntoProducer = (t: string): boolean => {
    const id = plan.producer.get(t);
    return id !== undefined && plan.kernels[id].kind !== 'layer';
  };
  const widened = (t: string, from: KernelPrecision): boolean => {
    const id = plan.producer.get(t);
    return placed !== undefined && from === 'int8' && id !== undefined && plan.kernels[id].kind === 'layer' && !placed.writtenInt8(t);
  };
  // A Q every reader of which quantizes the tensor fuses into the kernel that produces it (which then writes INT8).
  const fusedQ = (t: string, to: KernelPrecision): boolean => placed !== undefined && to === 'int8' && plan.producer.has(t) && placed.writtenInt8(t);
  const reformat = (t: string, from: KernelPrecision, to: KernelPrecision, owner: string): void => {
    if (from === to || reformatted.has(`${t}\u0000${to}`) || fusedQ(t, to)) return;
    reformatted.add(`${t}\u0000${to}`);
    const seconds = widened(t, from)
      ? memS(elems(t) * Math.max(0, BYTES[to] - BYTES[from]))
      : memS(elems(t) * (BYTES[from] + BYTES[to])) + device.launchOverheadS;
    reformats.push({ tensor: t, from, to, seconds, owner });
  };

  for (const k of plan.kernels) {
    if (k.kind === 'layer' && k.layer) {
      const p = layerPrecision(policy, k.layer.name);
      const inP = inputPrecision(p);
      const outP = outputPrecision(p);
      const shape = gemmShape(k.layer);
      outPrec[k.id] = outP;
      let bytes = 0;
      k.reads.forEach((t, i) => {
        const readP = i < k.ownReads ? inP : placed?.readsQuantized(t, k.nodes) ? 'int8' : outP;
        if (!fusedIntoProducer(t)) reformat(t, sourcePrecision(t), readP, k.owner);
        bytes += elems(t) * activationBytes(shape, readP);
      });
      if (k.layer.weightIsConstant) bytes += k.layer.params * BYTES[inP];
      for (const t of k.writes) bytes += elems(t) * activationBytes(shape, outP);
      const t = layerKernelTime(shape, k.layer.macs, bytes, inP, batch, device, efficiency);
      kernels.push({ kernel: k, precision: inP, ...t });
      continue;
    }
    const src = k.reads.length > 0 ? sourcePrecision(k.reads[0]) : IO_PRECISION;
    const placedRun = k.kind !== 'concat' && !DATA_MOVEMENT_OPS.has(k.op) ? placed?.compute(k.nodes[0]) : undefined;
    const run: KernelPrecision = placedRun ?? (src === 'int8' && k.floatOnly ? 'fp16' : src);
    outPrec[k.id] = run;
    if (k.kind === 'concat') {
      // TensorRT elides concatenation: producers write into slices of one buffer, which must share a format.
      for (const t of k.reads) reformat(t, sourcePrecision(t), run, k.owner);
      kernels.push({ kernel: k, precision: run, computeS: 0, memoryS: 0, seconds: 0 });
      continue;
    }
    let bytes = 0;
    for (const t of k.reads) {
      // In the placed graph a layer's kernel writes its float readers' type itself (a wider write, priced by
      // reformat as extra bytes) or, between two float precisions, a Cast runs; a change after a non-layer
      // kernel fuses into that kernel, as above.
      if (placed && !fusedIntoProducer(t)) reformat(t, sourcePrecision(t), run, k.owner);
      bytes += elems(t) * BYTES[run];
    }
    for (const t of k.writes) bytes += elems(t) * BYTES[run];
    const memoryS = memS(bytes);
    kernels.push({ kernel: k, precision: run, computeS: 0, memoryS, seconds: memoryS + device.launchOverheadS });
  }

  for (const t of plan.outputs) {
    const id = plan.producer.get(t);
    if (id !== undefined) reformat(t, outPrec[id], IO_PRECISION, plan.kernels[id].owner);
  }
  return { kernels, reformats };
}

/** Sums a breakdown into the LatencyEstimate shape: per quantizable layer, its kernels and its reformats. */
export function summarize(plan: KernelPlan, policy: LayerPolicy, breakdown: RooflineBreakdown): LatencyEstimate {
  const ms = new Map<string, number>();
  const reformatMs = new Map<string, number>();
  for (const c of breakdown.kernels) ms.set(c.kernel.owner, (ms.get(c.kernel.owner) ?? 0) + c.seconds * 1e3);
  for (const r of breakdown.reformats) reformatMs.set(r.owner, (reformatMs.get(r.owner) ?? 0) + r.seconds * 1e3);
  const perLayer: LayerLatency[] = plan.layers.map((l) => ({
    name: l.name,
    ms: ms.get(l.name) ?? 0,
    precision: layerPrecision(policy, l.name),
    reformatMs: reformatMs.get(l.name) ?? 0,
  }));
  const totalMs = perLayer.reduce((s, l) => s + l.ms + l.reformatMs, 0);
  return { totalMs, perLayer };
}

export function estimateRoofline(plan: KernelPlan, device: DeviceProfile, policy: LayerPolicy, batch = 1, efficiency?: EfficiencyModel, placed?: PlacedPrecisions): LatencyEstimate {
  return summarize(plan, policy, priceKernels(plan, device, policy, batch, efficiency, placed));
}

export interface RooflineOptions {
  /** The fitted efficiency terms (default: efficiency-fit.json); a refit or a test may pass its own. */
  efficiency?: EfficiencyModel;
  /** The policy's placement, to price what model.qdq.onnx runs (absent: the precision-following rule). */
  placement?: (policy: LayerPolicy) => PlacedPrecisions;
}

export class RooflineLatencyModel implements LatencyModel {
  readonly target: string;
  readonly plan: KernelPlan;
  readonly device: DeviceProfile;
  readonly batch: number;
  readonly efficiency: EfficiencyModel;
  readonly placement?: (policy: LayerPolicy) => PlacedPrecisions;

  constructor(plan: KernelPlan, device: DeviceProfile, batch = 1, opts: RooflineOptions = {}) {
    this.target = device.id;
    this.plan = plan;
    this.device = device;
    this.batch = batch;
    this.efficiency = opts.efficiency ?? fittedEfficiency();
    this.placement = opts.placement;
  }

  async estimate(policy: LayerPolicy): Promise<LatencyEstimate> {
    return estimateRoofline(this.plan, this.device, policy, this.batch, this.efficiency, this.placement?.(policy));
  }

  breakdown(policy: LayerPolicy): RooflineBreakdown {
    return priceKernels(this.plan, this.device, policy, this.batch, this.efficiency, this.placement?.(policy));
  }
}

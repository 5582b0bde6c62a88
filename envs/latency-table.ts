/**
 * Per-layer latency of each action, read from the latency model's uniform policies, and the lower bound
 * on a policy's latency the environment uses to mask actions that can no longer meet the budget.
 *
 * Why a lower bound is enough: the latency models (DESIGN.md, "Latency") price a layer by its own
 * precision and add reformat costs where neighbours disagree. Dropping the reformats gives a sum that no
 * real policy undercuts, so masking on it never hides a policy that meets the budget; what it misses
 * (reformats) is caught when the finished policy is priced exactly.
 */
import type { Layer } from '../src/onnx/layer-types.ts';
import type { LatencyModel } from '../src/latency/types.ts';
import { uniformPolicy, type Precision } from '../src/policy.ts';
import type { ActionOption } from './types.ts';

export interface LatencyTable {
  /** [layer][action] ms of the layer alone at that action's precision, reformats excluded. */
  layerMs: number[][];
  /** [layer] ms of the layer in FP16, the reference dLat is measured against. */
  fp16LayerMs: number[];
  /** Time outside the quantizable layers (fused ops, pooling, ...): the least any uniform policy shows. */
  otherMs: number;
  /** [t] = least possible ms of layers t..L-1 under the static mask; minSuffixMs[L] = 0. */
  minSuffixMs: number[];
  fp16TotalMs: number;
  /** Uniform-policy totals by precision, for reports. */
  uniformTotalMs: Partial<Record<Precision, number>>;
}

export async function buildLatencyTable(
  layers: readonly Layer[],
  actions: readonly ActionOption[],
  latency: LatencyModel,
  staticMask: readonly (readonly boolean[])[],
): Promise<LatencyTable> {
  const names = layers.map((l) => l.name);
  const precisions = [...new Set<Precision>(['fp16', ...actions.map((a) => a.precision)])];
  const perPrecision = new Map<Precision, Map<string, number>>();
  const uniformTotalMs: Partial<Record<Precision, number>> = {};
  let otherMs = Infinity;
  for (const p of precisions) {
    const est = await latency.estimate(uniformPolicy(names, p));
    const byName = new Map<string, number>();
    let layerSum = 0;
    for (const l of est.perLayer) {
      byName.set(l.name, l.ms);
      layerSum += l.ms + l.reformatMs;
    }
    perPrecision.set(p, byName);
    uniformTotalMs[p] = est.totalMs;
    otherMs = Math.min(otherMs, Math.max(0, est.totalMs - layerSum));
  }
  const layerMs = layers.map((layer) =>
    actions.map((a) => {
      const ms = perPrecision.get(a.precision)!.get(layer.name);
      if (ms === undefined) throw new Error(`latency model "${latency.target}" reports no time for layer ${layer.name}`);
      return ms;
    }),
  );
  const fp16ByName = perPrecision.get('fp16')!;
  const fp16LayerMs = layers.map((l) => fp16ByName.get(l.name) ?? 0);
  const minSuffixMs = new Array<number>(layers.length + 1).fill(0);
  for (let t = layers.length - 1; t >= 0; t--) {
    const legal = layerMs[t].filter((_, a) => staticMask[t][a]);
    minSuffixMs[t] = minSuffixMs[t + 1] + Math.min(...legal);
  }
  const fp16TotalMs = uniformTotalMs.fp16!;
  if (!(fp16TotalMs > 0)) throw new Error(`latency model "${latency.target}" gives a non-positive all-FP16 latency (${fp16TotalMs} ms)`);
  return { layerMs, fp16LayerMs, otherMs, minSuffixMs, fp16TotalMs, uniformTotalMs };
}

/**
 * Actions at step t that still leave the budget reachable, given the ms already committed by the prefix.
 * When none does, the fastest statically legal actions stay open: the episode must still end, and the
 * finished policy is then reported infeasible.
 */
export function budgetMask(
  table: LatencyTable,
  t: number,
  prefixMs: number,
  budgetMs: number,
  staticMask: readonly boolean[],
): boolean[] {
  const rest = table.otherMs + table.minSuffixMs[t + 1];
  const limit = budgetMs * (1 + 1e-9);
  const mask = staticMask.map((ok, a) => ok && prefixMs + table.layerMs[t][a] + rest <= limit);
  if (mask.some(Boolean)) return mask;
  let fastest = Infinity;
  staticMask.forEach((ok, a) => {
    if (ok) fastest = Math.min(fastest, table.layerMs[t][a]);
  });
  return staticMask.map((ok, a) => ok && table.layerMs[t][a] === fastest);
}

/**
 * How well the roofline model orders layers the way a real TensorRT profile does: Spearman rank correlation
 * between roofline per-layer estimates and imported per-layer times, per build precision and pooled.
 */
import { uniformPolicy } from '../policy.ts';
import type { RooflineLatencyModel } from './roofline.ts';
import type { ProfileLatencyModel } from './profile-model.ts';
import type { BuildPrecision } from './trt-profile.ts';

/** Ranks 1..n with ties sharing their average rank. */
export function averageRanks(xs: readonly number[]): number[] {
  const order = xs.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
  const ranks = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k][1]] = avg;
    i = j + 1;
  }
  return ranks;
}

function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    num += (a[i] - ma) * (b[i] - mb);
    da += (a[i] - ma) ** 2;
    db += (b[i] - mb) ** 2;
  }
  return da === 0 || db === 0 ? NaN : num / Math.sqrt(da * db);
}

/** Spearman's rho (Pearson correlation of average ranks); NaN with fewer than 2 pairs or a constant side. */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error('spearman: arrays differ in length');
  if (a.length < 2) return NaN;
  return pearson(averageRanks(a), averageRanks(b));
}

export interface ValidationRow {
  name: string;
  op: string;
  precision: BuildPrecision;
  rooflineMs: number;
  profileMs: number;
}

export interface Agreement {
  rho: number;
  layers: number;
  /** Median over layers of |roofline / profile - 1|. */
  medianRelativeError: number;
  /** Sum of the roofline's layer times over the profile's: the scale the ranking leaves open. */
  totalRatio: number;
}

export interface ValidationReport {
  target: string;
  /** Per build precision and pooled over both: rho, layers compared, median relative error, ratio of the totals. */
  correlation: Record<'fp16' | 'int8' | 'pooled', Agreement>;
  rows: ValidationRow[];
  unmapped: Array<{ build: BuildPrecision; name: string; ms: number; reason: string }>;
}

/** Compares per-layer kernel times (reformats excluded on both sides) for the all-fp16 and all-int8 builds. */
export async function validateRoofline(roofline: RooflineLatencyModel, profile: ProfileLatencyModel): Promise<ValidationReport> {
  const layers = profile.graph.layers;
  const names = layers.map((l) => l.name);
  const rows: ValidationRow[] = [];
  for (const p of ['fp16', 'int8'] as const) {
    const build = profile.builds[p]!;
    const est = await roofline.estimate(uniformPolicy(names, p));
    est.perLayer.forEach((l, i) => {
      const measured = build.layers.get(l.name)?.ms ?? 0;
      if (measured > 0) rows.push({ name: l.name, op: layers[i].op, precision: p, rooflineMs: l.ms, profileMs: measured });
    });
  }
  const corr = (rs: ValidationRow[]): Agreement => {
    const rel = rs.map((r) => Math.abs(r.rooflineMs / r.profileMs - 1)).sort((a, b) => a - b);
    const mid = rel.length / 2;
    return {
      rho: spearman(rs.map((r) => r.rooflineMs), rs.map((r) => r.profileMs)),
      layers: rs.length,
      medianRelativeError: rel.length === 0 ? NaN : rel.length % 2 ? rel[Math.floor(mid)] : (rel[mid - 1] + rel[mid]) / 2,
      totalRatio: rs.reduce((s, r) => s + r.rooflineMs, 0) / rs.reduce((s, r) => s + r.profileMs, 0),
    };
  };
  const unmapped = (['fp16', 'int8', 'fp32'] as const).flatMap((b) => (profile.builds[b]?.unmapped ?? []).map((u) => ({ build: b, ...u })));
  return {
    target: roofline.target,
    correlation: {
      fp16: corr(rows.filter((r) => r.precision === 'fp16')),
      int8: corr(rows.filter((r) => r.precision === 'int8')),
      pooled: corr(rows),
    },
    rows,
    unmapped,
  };
}

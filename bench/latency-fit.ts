/**
 * Fits the roofline's efficiency terms to the device sweep and validates them on held-out real models.
 *   node --import tsx bench/latency-fit.ts [--measurements run1.json,run2.json] [--device h200]
 *                                          [--out src/latency/efficiency-fit.json] [--no-write]
 * The fit uses the `sweep` shapes of every measurement file, except any shape that is also a layer of a held-out
 * model; the `models` (PP-OCR, torchvision / timm / transformers architectures) are validation only: per model,
 * precision and batch, Spearman's rho and the median relative error of per-layer kernel times against the first
 * file, before the fit (the hand-set roofline) and after; where a later file timed the same layers again (another
 * machine), the rho between the two measurements says how far any model can rank them. Writes the fitted terms
 * (--out) and bench/latency-fit/validation.json; prints the tables the README quotes.
 * To refit on your own GPU: run bench/latency-sweep.py there, add a profile for it in src/latency/profiles/, and run
 * this with --measurements and --device.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/fs.ts';
import { loadDeviceProfile } from '../src/latency/device-profile.ts';
import { DATASHEET_EFFICIENCY, OP_CLASSES, type EfficiencyModel, type FittedPrecision, type KernelPrecision } from '../src/latency/efficiency.ts';
import { fitEfficiency, isolatedKernelSeconds, sweepSamples, type SweepMeasurements } from '../src/latency/fit.ts';
import type { LayerShape } from '../src/latency/layer-shape.ts';
import { spearman } from '../src/latency/validate.ts';

const { values: args } = parseArgs({
  options: {
    measurements: { type: 'string', default: ['measurements-h200.json', 'measurements-h200-run2.json'].map((f) => new URL(`./latency-fit/${f}`, import.meta.url).pathname).join(',') },
    device: { type: 'string', default: 'h200' },
    out: { type: 'string', default: new URL('../src/latency/efficiency-fit.json', import.meta.url).pathname },
    'no-write': { type: 'boolean', default: false },
  },
});


const runs = args.measurements!.split(',').map((f) => JSON.parse(readFileSync(f, 'utf8')) as SweepMeasurements);
const data = runs[0];
const device = loadDeviceProfile(args.device!);
const PRECISIONS: FittedPrecision[] = ['fp16', 'fp32'];
const measured = (key: string, p: FittedPrecision, batch: number): number | undefined => data.times[key]?.[p]?.[String(batch)];

// The minimum kernel time is fitted in units of the device's launch overhead: say where that unit comes from.
const gelu = data.extras.vitTinyKernelsUs?.gelu_b1;
console.log(`${data.device}, torch ${data.torch}, cuDNN ${data.cudnn}; profile ${device.id}: launch overhead ${(device.launchOverheadS * 1e6).toFixed(2)} us` +
  (gelu ? ` (smallest measured elementwise kernel: ${gelu.toFixed(2)} us)` : ''));

const { samples, shapes: sweepShapes, excluded } = sweepSamples(runs);
console.log(`sweep: ${sweepShapes} shapes from ${runs.length} run(s); ${excluded} sweep shapes left out because a held-out model has them`);
const t0 = performance.now();
const source = `fitted by bench/latency-fit.ts to ${samples.length} kernels of ${sweepShapes} sweep shapes measured on an ${data.device} (bench/latency-sweep.py: torch ${data.torch}, cuDNN ${data.cudnn}, CUDA graphs, channels-last, fp16 and strict fp32, batch ${data.batches.join(' and ')})`;
const fit = fitEfficiency(samples, device, source, DATASHEET_EFFICIENCY);
console.log(`fit: ${samples.length} sweep kernels in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
console.log('class          prec  kernels  compute  memory  fixed(x launch)  overlap  misaligned  tile      median |rel err|');
for (const p of PRECISIONS) for (const c of OP_CLASSES) {
  const f = fit.fits[p][c];
  if (!f) continue;
  const t = f.terms;
  console.log(`${c.padEnd(14)} ${p}  ${String(f.samples).padStart(7)}  ${t.compute.toFixed(3).padStart(7)}  ${t.memory.toFixed(3).padStart(6)}  ${t.fixed.toFixed(2).padStart(15)}  ${t.overlap.toFixed(2).padStart(7)}  ${t.misaligned.toFixed(3).padStart(10)}  ${`${t.tileM}x${t.tileN}`.padEnd(8)}  ${f.medianRelativeError.toFixed(3)}`);
}

const round = (x: number, d = 4): number => Number(x.toPrecision(d));
if (!args['no-write']) {
  const classes = Object.fromEntries(PRECISIONS.map((p) => [p, Object.fromEntries(OP_CLASSES.map((c) => {
    const t = fit.model.classes[p][c];
    return [c, { compute: round(t.compute), memory: round(t.memory), fixed: round(t.fixed), overlap: round(t.overlap), misaligned: round(t.misaligned), tileM: t.tileM, tileN: t.tileN }];
  }))]));
  writeFileAtomic(args.out!, `${JSON.stringify({ source: fit.model.source, tileFill: fit.model.tileFill, classes }, null, 2)}\n`);
  console.log(`\nwrote ${args.out}`);
}

// ---- validation on the held-out models: per-layer kernel times, layers timed alone on both sides
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const predictUs = (shape: LayerShape, p: KernelPrecision, batch: number, model: EfficiencyModel): number => isolatedKernelSeconds(shape, p, batch, device, model) * 1e6;

interface Score { rho: number; medianRelativeError: number; layers: number }
/** Two measurements of the same layers (another run, another machine): the ranking any model could hope for. */
const repeatability = (keys: string[], p: FittedPrecision, batch: number): Score | undefined => {
  const again = runs[1];
  if (!again) return undefined;
  const pairs = keys.map((k) => [again.times[k]?.[p]?.[String(batch)], measured(k, p, batch)] as const).filter((x): x is readonly [number, number] => x[0] !== undefined && x[1] !== undefined);
  if (pairs.length < 2) return undefined;
  return { rho: spearman(pairs.map((x) => x[0]), pairs.map((x) => x[1])), medianRelativeError: median(pairs.map(([a, b]) => Math.abs(a / b - 1))), layers: pairs.length };
};
const score = (keys: string[], p: FittedPrecision, batch: number, model: EfficiencyModel): Score | undefined => {
  const pairs = keys.map((k) => [predictUs(data.shapes[k], p, batch, model), measured(k, p, batch)] as const).filter((x): x is readonly [number, number] => x[1] !== undefined);
  if (pairs.length < 2) return undefined;
  return {
    rho: spearman(pairs.map((x) => x[0]), pairs.map((x) => x[1])),
    medianRelativeError: median(pairs.map(([pr, m]) => Math.abs(pr / m - 1))),
    layers: pairs.length,
  };
};

const validation: Record<string, Record<string, { before?: Score; after?: Score; repeat?: Score }>> = {};
const fitted = fit.model;
for (const [name, m] of Object.entries(data.models)) {
  validation[name] = {};
  for (const batch of [...data.batches].reverse()) for (const p of PRECISIONS) {
    validation[name][`${p} b${batch}`] = { before: score(m.layers, p, batch, DATASHEET_EFFICIENCY), after: score(m.layers, p, batch, fitted), repeat: repeatability(m.layers, p, batch) };
  }
}
const cell = (s?: Score): string => (s ? `${s.rho.toFixed(2)} / ${s.medianRelativeError.toFixed(2)}` : 'n/a');
const columns = Object.keys(Object.values(validation)[0] ?? {});
console.log(`\nheld-out models: Spearman rho / median relative error of per-layer times, before -> after the fit (${device.id} profile); [rho of a second measurement]\n`);
console.log(`| model | layers | ${columns.join(' | ')} |`);
console.log(`|---|---:|${columns.map(() => '---|').join('')}`);
const rep = (s?: Score): string => (s ? ` [${s.rho.toFixed(2)}]` : '');
for (const [name, v] of Object.entries(validation)) {
  console.log(`| ${name} | ${data.models[name].layers.length} | ${columns.map((c) => `${cell(v[c].before)} → **${cell(v[c].after)}**${rep(v[c].repeat)}`).join(' | ')} |`);
}
for (const c of columns) {
  const after = Object.values(validation).map((v) => v[c].after?.rho ?? NaN).filter(Number.isFinite);
  const before = Object.values(validation).map((v) => v[c].before?.rho ?? NaN).filter(Number.isFinite);
  const repeat = Object.values(validation).map((v) => v[c].repeat?.rho ?? NaN).filter(Number.isFinite);
  const mean = (xs: number[]): string => (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3);
  console.log(`${c}: mean rho ${mean(before)} -> ${mean(after)}${repeat.length ? ` (second measurement ${mean(repeat)})` : ''}; models >= 0.85: ${before.filter((r) => r >= 0.85).length} -> ${after.filter((r) => r >= 0.85).length} of ${after.length}${repeat.length ? ` (second measurement ${repeat.filter((r) => r >= 0.85).length})` : ''}`);
}

// ---- uniform-precision totals of the held-out models (their layers summed, each timed alone): the order a search sees
// int8*: layers with fewer than 16 channels (or k, n < 16) stay fp16, as ModelOpt leaves them: int8 pads them to 32.
console.log('\nper-model sums of layer times, batch 32 (ms): measured fp16 / fp32; roofline (fitted) all-int8 / int8* / fp16 / fp32');
const narrow = (s: LayerShape): boolean => (s.op === 'Conv' || s.op === 'ConvTranspose' ? Math.min(s.cin, s.cout) < 16 : Math.min(s.k, s.n) < 16);
for (const [name, m] of Object.entries(data.models)) {
  const sum = (f: (k: string) => number | undefined) => m.layers.reduce((s, k) => s + (f(k) ?? NaN), 0) / 1e3;
  const meas = PRECISIONS.map((p) => sum((k) => measured(k, p, 32)));
  const roof = (p: KernelPrecision) => sum((k) => predictUs(data.shapes[k], p, 32, fitted));
  const wide = sum((k) => predictUs(data.shapes[k], narrow(data.shapes[k]) ? 'fp16' : 'int8', 32, fitted));
  const [int8, fp16, fp32] = [roof('int8'), roof('fp16'), roof('fp32')];
  const order = `${int8 <= fp16 ? 'all-int8' : 'int8*'} <= fp16 <= fp32: ${Math.min(int8, wide) <= fp16 && fp16 <= fp32 ? 'yes' : 'NO'}`;
  console.log(`  ${name.padEnd(18)} measured ${meas.map((x) => x.toFixed(3)).join(' / ')}${meas[0] <= meas[1] ? '' : ' (fp16 > fp32!)'}   roofline ${[int8, wide, fp16, fp32].map((x) => x.toFixed(3)).join(' / ')}   ${order}`);
}

// ---- INT8 evidence: cuBLASLt int8 GEMMs (torch._int_mm) against fp16, and what the (unfitted) int8 roofline says
const int8Rows = Object.entries(data.int8Gemm).flatMap(([k, byBatch]) => Object.entries(byBatch).map(([b, us]) => {
  const fp16 = measured(k, 'fp16', Number(b));
  const shape = data.shapes[k];
  return fp16 === undefined ? undefined : {
    shape, batch: Number(b), measuredGain: fp16 / us,
    rooflineGain: predictUs(shape, 'fp16', Number(b), fitted) / predictUs(shape, 'int8', Number(b), fitted),
    macs: shape.op === 'Linear' ? shape.m * shape.k * shape.n * Number(b) : 0,
  };
}).filter((x) => x !== undefined));
const bySize = (lo: number, hi: number) => int8Rows.filter((r) => r.macs >= lo && r.macs < hi);
console.log('\nINT8 / FP16 GEMM speedup (fp16 time / int8 time), cuBLASLt measured vs the unfitted int8 roofline:');
for (const [lo, hi, label] of [[0, 1e8, '< 0.1 GMAC'], [1e8, 1e9, '0.1-1 GMAC'], [1e9, 1e10, '1-10 GMAC'], [1e10, Infinity, '> 10 GMAC']] as const) {
  const rs = bySize(lo, hi);
  if (rs.length > 0) console.log(`  ${label.padEnd(11)} ${String(rs.length).padStart(3)} GEMMs: measured median ${median(rs.map((r) => r.measuredGain)).toFixed(2)}x, roofline median ${median(rs.map((r) => r.rooflineGain)).toFixed(2)}x`);
}

writeFileSync(new URL('./latency-fit/validation.json', import.meta.url), `${JSON.stringify({ device: data.device, profile: device.id, validation, int8Gemm: int8Rows.map((r) => ({ ...r, measuredGain: round(r.measuredGain), rooflineGain: round(r.rooflineGain) })) }, null, 1)}\n`);

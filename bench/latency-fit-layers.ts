/**
 * Per-layer predicted vs measured kernel times of held-out models, by op class: which layers the fitted roofline
 * mis-ranks (bench/latency-fit.ts gives only the per-model rho).
 *   node --import tsx bench/latency-fit-layers.ts [--models vit-tiny,convnext-tiny] [--batch 32] [--device h200]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadDeviceProfile } from '../src/latency/device-profile.ts';
import { fittedEfficiency, gemmShape, opClassOf, type FittedPrecision } from '../src/latency/efficiency.ts';
import { isolatedKernelSeconds, type SweepMeasurements } from '../src/latency/fit.ts';
import { layerFromShape, type LayerShape } from '../src/latency/layer-shape.ts';
import { spearman } from '../src/latency/validate.ts';

const { values: args } = parseArgs({
  options: {
    measurements: { type: 'string', default: new URL('./latency-fit/measurements-h200.json', import.meta.url).pathname },
    models: { type: 'string', default: 'vit-tiny,convnext-tiny' },
    batch: { type: 'string', default: '32' },
    device: { type: 'string', default: 'h200' },
  },
});
const data = JSON.parse(readFileSync(args.measurements!, 'utf8')) as SweepMeasurements;
const device = loadDeviceProfile(args.device!);
const batch = Number(args.batch);
const model = fittedEfficiency();
const describe = (s: LayerShape): string => {
  if (s.op === 'Linear') return `linear m${s.m} k${s.k} n${s.n}`;
  if (s.op === 'MatMul') return `bmm g${s.gemms} m${s.m} k${s.k} n${s.n}`;
  return `${s.op.toLowerCase()} ${s.cin}->${s.cout} ${s.h}x${s.w}->${s.oh}x${s.ow} k${s.kernel.join('x')} s${s.stride.join('x')} g${s.groups}`;
};
for (const name of args.models!.split(',')) {
  const m = data.models[name];
  if (!m) throw new Error(`no model ${name} in ${args.measurements}`);
  for (const p of ['fp16', 'fp32'] as FittedPrecision[]) {
    // distinct shapes with their multiplicity
    const counts = new Map<string, number>();
    for (const k of m.layers) counts.set(k, (counts.get(k) ?? 0) + 1);
    const rows = [...counts].map(([k, n]) => {
      const s = data.shapes[k];
      const layer = layerFromShape(s, 'l');
      const g = gemmShape(layer);
      const pred = isolatedKernelSeconds(s, p, batch, device, model) * 1e6;
      const meas = data.times[k]?.[p]?.[String(batch)] ?? NaN;
      return { n, cls: opClassOf(layer) + (g.misaligned ? '*' : ''), s: describe(s), pred, meas, gmac: (layer.macs * batch) / 1e9 };
    }).sort((a, b) => b.meas - a.meas);
    const all = m.layers.map((k) => rows.find((r) => r.s === describe(data.shapes[k]))!);
    const rho = spearman(all.map((r) => r.pred), all.map((r) => r.meas));
    console.log(`\n${name} ${p} b${batch}: rho ${rho.toFixed(3)} over ${m.layers.length} layers, ${rows.length} distinct shapes`);
    console.log('  count  class        measured us  predicted us  pred/meas  GMAC    shape');
    for (const r of rows) {
      console.log(`  ${String(r.n).padStart(5)}  ${r.cls.padEnd(11)}  ${r.meas.toFixed(1).padStart(11)}  ${r.pred.toFixed(1).padStart(12)}  ${(r.pred / r.meas).toFixed(2).padStart(9)}  ${r.gmac.toFixed(2).padStart(6)}  ${r.s}`);
    }
  }
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OutputComparison, klDivergence, histogramOverlap, rangeWaste } from '../src/analysis/compare.ts';
import { fractionBeyond, rankLayers, scoreDrop, layerFlags, type Analysis, type LayerAnalysis } from '../src/analysis/analyze.ts';
import { formatExposition, escapeLabelValue } from '../src/analysis/prometheus.ts';
import { analysisMarkdown, analysisMetrics, loadAnalysis, layersInOrder, writeAnalysis, analysisJson } from '../src/analysis/files.ts';
import { emptyHistogram, addToHistogram } from '../src/quant/amax.ts';
import { isUserError } from '../src/errors.ts';
import seedrandom from 'seedrandom';

function gaussian(n: number, seed: string, sigma = 1): Float32Array {
  const rng = seedrandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = sigma * Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  return out;
}

function fakeQuantize(xs: Float32Array, scale: number, amax = 127 * scale): Float32Array {
  return xs.map((x) => Math.max(-128, Math.min(127, Math.round(Math.min(amax, Math.max(-amax, x)) / scale))) * scale);
}

test('output comparison: identical outputs, int8 rounding alone, and clipping', () => {
  const ref = gaussian(20000, 'cmp');
  const same = new OutputComparison(4 / 127);
  same.add(ref, ref);
  const s = same.result();
  assert.equal(s.mse, 0);
  assert.equal(s.kl, 0);
  assert.equal(s.histogramOverlap, 1);
  assert.equal(s.sqnrDb, 100);

  // Rounding to the output's own int8 grid moves no value to another bin: only MSE sees it.
  const scale = 4 / 127;
  const rounded = new OutputComparison(scale);
  rounded.add(ref, fakeQuantize(ref, scale));
  const r = rounded.result();
  assert.ok(r.mse > 0 && r.mse < scale * scale / 12 * 1.2, `rounding noise ~ scale^2/12: ${r.mse}`);
  assert.ok(r.kl < 1e-3, `kl ${r.kl}`);
  assert.ok(r.histogramOverlap > 0.999, `overlap ${r.histogramOverlap}`);
  assert.ok(Math.abs(r.sqnrDb - 10 * Math.log10(1 / (scale * scale / 12))) < 1, `sqnr ${r.sqnrDb}`);

  // An amax of 1 sigma clips a third of the values: they pile up at the edge levels.
  const clipScale = 1 / 127;
  const clipped = new OutputComparison(clipScale);
  clipped.add(ref, fakeQuantize(ref, clipScale));
  const c = clipped.result();
  assert.ok(c.histogramOverlap > 0.6 && c.histogramOverlap < 0.75, `about 68 % stays in range: ${c.histogramOverlap}`);
  assert.ok(c.kl > 0.3, `kl ${c.kl}`);
  assert.ok(c.bins <= 256 && c.levelsPerBin >= 2, 'the FP32 tail widens the binned range; bins hold several levels');

  // Streaming in batches gives the same answer as one call.
  const batched = new OutputComparison(clipScale);
  const q = fakeQuantize(ref, clipScale);
  for (let i = 0; i < ref.length; i += 3000) batched.add(ref.subarray(i, i + 3000), q.subarray(i, i + 3000));
  const b = batched.result();
  assert.deepEqual({ ...b, mse: 0, sqnrDb: 0 }, { ...c, mse: 0, sqnrDb: 0 });
  assert.ok(Math.abs(b.mse - c.mse) < 1e-12 && Math.abs(b.sqnrDb - c.sqnrDb) < 1e-9, 'sums differ only in the last bits');
});

test('few values get few bins (square-root rule), so one-level shifts do not read as a different distribution', () => {
  const ref = gaussian(400, 'few');
  const scale = 3 / 127;
  const shifted = ref.map((x) => x + scale); // every value one level up
  const cmp = new OutputComparison(scale);
  cmp.add(ref, shifted);
  const r = cmp.result();
  assert.ok(r.bins <= 20, `${r.bins} bins for 400 values`);
  assert.ok(r.histogramOverlap > 0.8, `overlap ${r.histogramOverlap}`);
});

test('KL, overlap and range waste by hand', () => {
  assert.equal(klDivergence([1, 1], [1, 1]), 0);
  const kl = klDivergence([3, 1], [1, 3], 0);
  assert.ok(Math.abs(kl - (0.75 * Math.log(3) + 0.25 * Math.log(1 / 3))) < 1e-12);
  // an FP32 bin the int8 output never reaches costs a finite, epsilon-bounded amount
  const lost = klDivergence([1, 1], [2, 0], 1e-6);
  assert.ok(Number.isFinite(lost) && lost > 3 && lost < 10, `${lost}`);
  assert.equal(histogramOverlap([2, 2, 0], [1, 2, 1]), 0.75);
  assert.equal(rangeWaste(0, 6, 6), 0.5);
  assert.ok(Math.abs(rangeWaste(0, 4, 6) - 2 / 3) < 1e-12, 'amax above the observed max wastes more');
  assert.equal(rangeWaste(-6, 6, 6), 0);
  assert.equal(rangeWaste(-1, 9, 3), 1 - 4 / 6, 'values beyond amax are clipped, the range they would use is not counted');
  assert.equal(rangeWaste(0, 0, 0), 0);
});

test('share of |x| beyond amax from the calibration histogram; drops and flags', () => {
  const h = emptyHistogram(10, 100);
  addToHistogram(h, Float32Array.from({ length: 100 }, (_, i) => i / 10));
  assert.equal(fractionBeyond(h, 10), 0);
  assert.equal(fractionBeyond(h, 9), 0.1);
  assert.equal(fractionBeyond(h, 0), 1);
  assert.ok(Math.abs(scoreDrop(0.9, 1, true) - 0.1) < 1e-12);
  assert.ok(Math.abs(scoreDrop(0.5, 0.25, false) - 1) < 1e-12, 'lower is better: a rise is a drop');
  assert.equal(scoreDrop(0.02, 0, false), 0.02, 'absolute when FP32 is 0');
  assert.deepEqual(layerFlags({ kl: 0.31, histogramOverlap: 0.79, rangeWaste: 0.5 }), ['kl', 'overlap', 'range']);
  assert.deepEqual(layerFlags({ kl: 0.3, histogramOverlap: 0.8, rangeWaste: 0.49 }), []);
});

test('ranking: int8 drop first, then leave-one-out, then KL, then model order', () => {
  const l = (index: number, int8Drop: number, leaveOneOutDrop: number, kl = 0) => ({ index, int8Drop, leaveOneOutDrop, kl });
  const ranked = rankLayers([l(0, 0, 0.01), l(1, 0.02, 0), l(2, 0, 0.05), l(3, 0, 0.01, 0.5), l(4, 0, 0.01), l(5, NaN, 1)]);
  assert.deepEqual(ranked.map((x) => x.index), [1, 2, 3, 0, 4, 5]);
});

/** A Prometheus text-format reader, strict about what the format requires of a writer. */
function parseExposition(text: string): Map<string, { help: string; type: string; samples: Array<{ labels: Record<string, string>; value: number }> }> {
  assert.ok(text.endsWith('\n'), 'the last line ends with a newline');
  const families = new Map<string, { help: string; type: string; samples: Array<{ labels: Record<string, string>; value: number }> }>();
  let current: string | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      assert.ok(!families.has(m[1]), `HELP for ${m[1]} once`);
      families.set(m[1], { help: m[2].replace(/\\n/g, '\n').replace(/\\\\/g, '\\'), type: '', samples: [] });
      current = m[1];
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      assert.equal(m[1], current, 'TYPE follows its HELP');
      assert.equal(families.get(m[1])!.type, '', `TYPE for ${m[1]} once`);
      assert.equal(families.get(m[1])!.samples.length, 0, 'TYPE comes before the samples');
      families.get(m[1])!.type = m[2];
      continue;
    }
    assert.ok(!line.startsWith('#'), `unexpected comment: ${line}`);
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `sample line: ${JSON.stringify(line)}`);
    assert.equal(m[1], current, `samples of ${m[1]} are together, after its HELP and TYPE`);
    const labels: Record<string, string> = {};
    if (m[3] !== undefined) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/gy;
      let pos = 0;
      let lm: RegExpExecArray | null;
      while (pos < m[3].length && (lm = re.exec(m[3]))) {
        assert.ok(!(lm[1] in labels), `label ${lm[1]} once`);
        labels[lm[1]] = lm[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
        pos = re.lastIndex;
      }
      assert.equal(pos, m[3].length, `label set parses fully: ${m[3]}`);
    }
    const v = m[4];
    assert.ok(/^(NaN|[+-]Inf|[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$/.test(v), `value ${v}`);
    families.get(m[1])!.samples.push({ labels, value: v === 'NaN' ? NaN : v.endsWith('Inf') ? (v[0] === '-' ? -Infinity : Infinity) : Number(v) });
  }
  return families;
}

const NASTY = 'conv "a"\\b\nc';

function fakeAnalysis(): Analysis {
  const layer = (index: number, name: string, int8Drop: number, extra: Partial<LayerAnalysis> = {}): LayerAnalysis => ({
    name, index, op: 'Conv', macs: 1000 * (index + 1), input: `in${index}`, output: `out${index}`,
    int8Score: 0.9 - int8Drop, int8Drop, leaveOneOutScore: 0.8, leaveOneOutDrop: 0.01 * index,
    mse: 1e-4 * (index + 1), sqnrDb: 30 - index, kl: 0.1 * index, histogramOverlap: 1 - 0.1 * index,
    outlierFraction: 0.001, outputOutlierFraction: 0.002, clippedFraction: 0, rangeWaste: 0.25,
    inputAmax: { max: 6, 'percentile-99.99': 4, entropy: 3.5 }, amax: { input: 4, output: 5 },
    flags: [], rank: 0, ...extra,
  });
  const layers = [layer(0, 'stem', 0.001), layer(1, NASTY, 0.05), layer(2, 'head|fc', 0, { activation: 'relu6', activationRange: [0, 6], rangeWaste: 0.5 })];
  for (const l of layers) l.flags = layerFlags(l);
  rankLayers(layers).forEach((l, i) => { l.rank = i + 1; });
  return {
    version: 1, model: { path: 'm.onnx', sha256: 'ab'.repeat(32) }, metric: { name: 'top1', higherIsBetter: true },
    calibration: { method: 'percentile-99.99', samples: 64 }, samples: 100, statsSamples: 32, fp32Score: 0.9, int8Score: 0.7,
    drop: 'relative', thresholds: { kl: 0.3, histogramOverlap: 0.8, rangeWaste: 0.5 },
    histogram: { binning: 'int8-levels', maxBins: 256, klEpsilon: 1e-6 }, seconds: 12.5, layers,
  };
}

test('metrics.prom follows the text exposition format: HELP/TYPE once, samples together, label values escaped', () => {
  const a = fakeAnalysis();
  const families = parseExposition(analysisMetrics(a));
  for (const name of ['trtmix_quantization_error', 'trtmix_histogram_overlap', 'trtmix_kl_divergence', 'trtmix_layer_int8_drop', 'trtmix_layer_leave_one_out_drop', 'trtmix_outlier_fraction', 'trtmix_range_waste']) {
    const f = families.get(name);
    assert.ok(f, name);
    assert.equal(f.type, 'gauge');
    assert.equal(f.samples.length, 3);
  }
  const err = families.get('trtmix_quantization_error')!.samples;
  assert.deepEqual(err.map((s) => s.labels.layer), ['stem', NASTY, 'head|fc'], 'label values round-trip through the escaping');
  assert.deepEqual(err.map((s) => s.value), a.layers.map((l) => l.mse));
  assert.deepEqual(families.get('trtmix_histogram_overlap')!.samples.map((s) => s.value), a.layers.map((l) => l.histogramOverlap));
  assert.equal(families.get('trtmix_layer_input_amax')!.samples.length, 9);
  assert.equal(families.get('trtmix_fp32_score')!.samples[0].labels.metric, 'top1');
  assert.equal(escapeLabelValue(NASTY), 'conv \\"a\\"\\\\b\\nc');
});

test('the exposition writer spells special values and refuses what the format cannot carry', () => {
  const text = formatExposition([{ name: 'x_total', help: 'a\\b\nc', type: 'counter', samples: [{ value: NaN, labels: { a: '1' } }, { value: Infinity, labels: { a: '2' } }, { value: -Infinity, labels: { a: '3' } }, { value: 1e-9 }] }]);
  const f = parseExposition(text).get('x_total')!;
  assert.equal(f.help, 'a\\b\nc');
  assert.ok(Number.isNaN(f.samples[0].value));
  assert.deepEqual(f.samples.slice(1).map((s) => s.value), [Infinity, -Infinity, 1e-9]);
  assert.throws(() => formatExposition([{ name: 'bad-name', help: '', type: 'gauge', samples: [] }]), /metric name/);
  assert.throws(() => formatExposition([{ name: 'ok', help: '', type: 'gauge', samples: [{ value: 1, labels: { 'bad-label': 'x' } }] }]), /label name/);
  assert.throws(() => formatExposition([{ name: 'ok', help: '', type: 'gauge', samples: [{ value: 1 }, { value: 2 }] }]), /two samples/);
});

test('analysis.md ranks the layers in a table that survives pipes and newlines in names', () => {
  const md = analysisMarkdown(fakeAnalysis());
  const rows = md.split('\n').filter((l) => /^\| \d+ \|/.test(l));
  assert.equal(rows.length, 3);
  assert.match(rows[0], /^\| 1 \| 2 \| conv "a"\\\\b c \|/);
  assert.match(rows[1], /^\| 2 \| 1 \| stem \|/);
  assert.match(rows[2], /^\| 3 \| 3 \| head\\\|fc \|.*\| range \|$/);
  for (const r of rows) assert.equal(r.split(/(?<!\\)\|/).length - 2, 13, `13 cells: ${r}`);
  assert.match(md, /5 %/, 'drops in percent');
  assert.match(md, /range waste >= 0.5 .*: head\\\|fc/);
});

test('analysis.json loads back; a wrong file or another model is a user error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-analysis-'));
  const a = fakeAnalysis();
  const files = await writeAnalysis(a, dir, { png: false });
  for (const f of [files.json, files.markdown, files.prometheus, files.report.html]) assert.ok(existsSync(f), f);
  assert.deepEqual(loadAnalysis(files.json), JSON.parse(analysisJson(a)));
  const html = readFileSync(files.report.html, 'utf8');
  assert.match(html, /<svg/);
  assert.deepEqual(layersInOrder(a, ['head|fc', 'stem', NASTY]).map((l) => l.index), [2, 0, 1]);
  const userError = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => isUserError(e) && re.test((e as Error).message));
  userError(() => layersInOrder(a, ['stem', 'other', NASTY]), /does not match .*missing other/);
  userError(() => loadAnalysis(join(dir, 'nope.json')), /does not exist/);
  writeFileSync(join(dir, 'bad.json'), '{ not json');
  userError(() => loadAnalysis(join(dir, 'bad.json')), /is not JSON/);
  writeFileSync(join(dir, 'policy.json'), JSON.stringify({ version: 1, layers: [{ name: 'x', precision: 'int8' }] }));
  userError(() => loadAnalysis(join(dir, 'policy.json')), /layer x has no numeric/);
  writeFileSync(join(dir, 'old.json'), JSON.stringify({ version: 0, layers: [] }));
  userError(() => loadAnalysis(join(dir, 'old.json')), /not a trtmix analysis/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderAnalysisReport, renderSearchReport, summarise } from '../src/report/index.ts';
import {
  bestByEpisode,
  featureColumns,
  movingAverage,
  normaliseFeatures,
  paretoFront,
  rankBySensitivity,
  scoreFloor,
} from '../src/report/series.ts';
import { escapeHtml } from '../src/report/html.ts';
import { rasteriserFrom } from '../src/report/png.ts';
import { formatMacs, formatNumber } from '../src/report/plots.ts';
import type { HistoryPoint } from '../src/report/types.ts';
import { awkwardLayers, countMarks, plotSvgs, syntheticSearch } from './report-fixture.ts';

const point = (evaluation: number, score: number, latencyMs: number, feasible = true, episode = evaluation): HistoryPoint => ({
  evaluation,
  episode,
  score,
  latencyMs,
  reward: 0,
  feasible,
  agent: 'dqn',
  seconds: evaluation,
});

test('Pareto front keeps feasible points no other beats on both score and latency', () => {
  const pts = [
    point(1, 0.9, 2.0),
    point(2, 0.95, 2.5),
    point(3, 0.8, 1.0),
    point(4, 0.85, 1.5, false), // infeasible: never on the front
    point(5, 0.7, 1.8), // dominated by 3 (faster and better)
    point(6, 0.9, 2.2), // dominated by 1 (same score, slower)
    point(7, 0.82, 1.0), // same latency as 3, better score: replaces it
  ];
  assert.deepEqual(paretoFront(pts).map((p) => p.evaluation), [7, 1, 2]);
  // Lower-is-better metrics (e.g. mse) flip the score direction.
  assert.deepEqual(paretoFront(pts, false).map((p) => p.evaluation), [3, 5]);
  assert.deepEqual(paretoFront([point(1, 0.5, 1, false)]), []);
});

test('best feasible score by episode starts at the first feasible policy and never falls', () => {
  const h = [point(1, 0.99, 1, false), point(2, 0.5, 1), point(3, 0.4, 1), point(4, 0.7, 1, true, 3), point(5, 0.6, 1, true, 4)];
  assert.deepEqual(bestByEpisode(h).map((b) => [b.episode, b.best]), [[2, 0.5], [3, 0.7], [4, 0.7]]);
  assert.deepEqual(bestByEpisode(h, false).map((b) => b.best), [0.5, 0.4, 0.4]);
});

test('moving average is trailing and skips non-finite values', () => {
  assert.deepEqual(movingAverage([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5]);
  assert.deepEqual(movingAverage([1, NaN, 3], 3), [1, 1, 2]);
  assert.deepEqual(movingAverage([5, 7], 1), [5, 7]);
});

test('accuracy floor is relative to FP32 and flips for lower-is-better metrics', () => {
  assert.equal(scoreFloor(0.9, 0.1), 0.9 * 0.9);
  assert.ok(Math.abs(scoreFloor(2, 0.5, false)! - 3) < 1e-12);
  assert.equal(scoreFloor(0.9, undefined), undefined);
});

test('sensitivity features normalise per column, hot = sensitive, missing stays missing', () => {
  const analysis = {
    metricName: 'top1',
    layers: [
      { name: 'a', op: 'Conv', macs: 1, int8Drop: 0.1, leaveOneOutDrop: 0, mse: 1, kl: 5, histogramOverlap: 0.9, outlierFraction: 0 },
      { name: 'b', op: 'Conv', macs: 1, int8Drop: 0.3, leaveOneOutDrop: 0, mse: 3, kl: 5, histogramOverlap: 0.5, outlierFraction: NaN, rangeWaste: 0.5 },
    ],
  };
  assert.deepEqual(featureColumns(analysis).map((c) => c.key), ['int8Drop', 'leaveOneOutDrop', 'mse', 'kl', 'histogramOverlap', 'outlierFraction', 'rangeWaste']);
  const cells = normaliseFeatures(analysis);
  const get = (layer: string, feature: string) => cells.find((c) => c.layer === layer && (c.feature.startsWith(feature) || c.feature.startsWith(`1 - ${feature}`)))!;
  assert.equal(get('a', 'int8').norm, 0);
  assert.equal(get('b', 'int8').norm, 1);
  assert.equal(get('b', 'int8').raw, 0.3);
  assert.equal(get('a', 'kl').norm, 0, 'a constant column tells no layer apart');
  assert.equal(get('a', 'histogram').norm, 0, 'high overlap = insensitive');
  assert.equal(get('b', 'histogram').norm, 1);
  assert.equal(get('b', 'outlier').raw, null);
  assert.equal(get('b', 'outlier').norm, null);
  assert.equal(get('a', 'range').norm, null);
  assert.equal(cells.length, 2 * 7);
  assert.deepEqual(rankBySensitivity(analysis.layers).map((l) => l.name), ['b', 'a']);
});

test('numbers and names are formatted for reading and escaped for HTML', () => {
  assert.equal(formatNumber(0.96213), '0.9621');
  assert.equal(formatNumber(1234567), '1.235e+6');
  assert.equal(formatNumber(null), 'n/a');
  assert.equal(formatMacs(31_800_000), '31.8 MMAC');
  assert.equal(formatMacs(2_500_000_000), '2.5 GMAC');
  assert.equal(escapeHtml(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&#39;');
});

test('search report: four plots with one mark per data point, escaped names, no URLs, atomic files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-report-'));
  try {
    const input = syntheticSearch(awkwardLayers(), { evaluations: 120, seed: 3 });
    const files = await renderSearchReport(input, dir);
    const html = readFileSync(files.html, 'utf8');

    const plots = plotSvgs(html);
    assert.deepEqual(Object.keys(plots).sort(), ['learning-curve', 'precision-strip', 'score-latency', 'sensitivity']);
    assert.equal(countMarks(plots['learning-curve'], 'episodes'), input.history.length);
    assert.equal(countMarks(plots['learning-curve'], 'best_score'), 1, 'the running best is one line');
    assert.equal(countMarks(plots['score-latency'], 'evaluations'), input.history.length);
    assert.equal(countMarks(plots['score-latency'], 'pareto_points'), paretoFront(input.history).length);
    assert.equal(countMarks(plots['score-latency'], 'baselines'), input.baselines.length);
    assert.equal(countMarks(plots['score-latency'], 'baseline_labels'), input.baselines.length);
    assert.equal(countMarks(plots['score-latency'], 'best'), 1);
    // The best policy's held-out test score is drawn beside it, each with its interval.
    assert.equal(countMarks(plots['score-latency'], 'best_interval'), 1);
    assert.equal(countMarks(plots['score-latency'], 'best_test'), 1);
    assert.equal(countMarks(plots['score-latency'], 'best_test_interval'), 1);
    assert.match(plots['score-latency'], /<title>best policy on 128 held-out test samples: score [0-9.]+ \[[0-9.]+, [0-9.]+\]/);
    assert.equal(countMarks(plots['score-latency'], 'budget'), 1);
    assert.equal(countMarks(plots['score-latency'], 'floor'), 1);
    assert.equal(countMarks(plots['precision-strip'], 'layers'), input.layers.length);
    const columns = featureColumns(input.sensitivity!).length;
    assert.equal(columns, 7);
    assert.equal(countMarks(plots.sensitivity, 'cells'), input.layers.length * columns);

    // Hover text: every drawn datum carries a <title>.
    assert.equal((plots['score-latency'].match(/<title>evaluation \d+/g) ?? []).length, input.history.length);

    assert.doesNotMatch(html, /https?:\/\//i, 'a self-contained report names no URL');
    assert.doesNotMatch(html, /<script/i, 'a layer name must not become markup');
    assert.doesNotMatch(html, /<img|<link|@import|url\((?!#)/i);
    assert.match(html, /backbone\/dw\.2&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.match(html, /neck &amp; &quot;head&quot; &#39;proj&#39;/);
    assert.match(html, /Content-Security-Policy/);

    // Summary numbers the user reads first.
    const s = summarise(input);
    assert.ok(input.best);
    assert.equal(s.evaluations, 120);
    assert.ok(html.includes(`${formatNumber(s.speedupVsFp16!)}×`));
    assert.ok(html.includes(`${s.evaluations} (${s.feasible} feasible)`));
    assert.match(html, /best score \(search split, 256 samples\)<\/th><td[^>]*><span class="good">[0-9.]+ \[[0-9.]+, [0-9.]+\]/);
    assert.match(html, /test score \(128 held-out samples\)<\/th><td[^>]*><span class="good">[0-9.]+ \[[0-9.]+, [0-9.]+\]; FP32 [0-9.]+ on the same samples; drop/);

    // Standalone SVGs keep their namespace; plot ids on one page cannot collide.
    for (const svgPath of files.svg) {
      const svg = readFileSync(svgPath, 'utf8');
      assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    }
    const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(new Set(ids).size, ids.length, 'duplicate ids on the page');

    assert.equal(files.svg.length, 4);
    if (files.pngSkipped) {
      assert.equal(files.png.length, 0);
      assert.match(files.pngSkipped, /PNG/);
    } else {
      assert.equal(files.png.length, 4);
      for (const p of files.png) assert.deepEqual([...readFileSync(p).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    }
    const leftovers = [...readdirSync(dir), ...readdirSync(join(dir, 'plots'))].filter((f) => f.endsWith('.tmp'));
    assert.deepEqual(leftovers, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('search report with nothing feasible and no analysis still draws four plots and says why', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-report-'));
  try {
    const input = syntheticSearch(awkwardLayers(), { evaluations: 30, budgetFraction: 0.01 });
    assert.equal(input.best, null);
    delete input.sensitivity;
    const files = await renderSearchReport(input, dir, { png: false });
    const html = readFileSync(files.html, 'utf8');
    const plots = plotSvgs(html);
    assert.equal(Object.keys(plots).length, 4);
    assert.equal(countMarks(plots['score-latency'], 'pareto_points'), 0);
    assert.equal(countMarks(plots['score-latency'], 'best'), -1, 'no best, no star');
    assert.equal(countMarks(plots.sensitivity, 'empty'), 1);
    assert.match(html, /no feasible policy was found/);
    assert.equal(files.pngSkipped, 'PNG plots not requested');
    assert.equal(existsSync(join(dir, 'plots', 'learning-curve.png')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('search report without held-out test samples says there is no test score and draws none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-report-'));
  try {
    const input = syntheticSearch(awkwardLayers(), { evaluations: 30, test: false });
    assert.ok(input.best && input.test === undefined);
    const html = readFileSync((await renderSearchReport(input, dir, { png: false })).html, 'utf8');
    const plots = plotSvgs(html);
    assert.equal(countMarks(plots['score-latency'], 'best'), 1);
    assert.equal(countMarks(plots['score-latency'], 'best_test'), -1);
    assert.match(html, /test score<\/th><td>none: there were no held-out test samples/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('analysis report: heatmap of every layer x feature and a table ranked by INT8 drop', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trtmix-report-'));
  try {
    const analysis = syntheticSearch(awkwardLayers(), { evaluations: 10 }).sensitivity!;
    const files = await renderAnalysisReport(analysis, dir, { png: false });
    const html = readFileSync(files.html, 'utf8');
    const plots = plotSvgs(html);
    assert.deepEqual(Object.keys(plots), ['sensitivity']);
    assert.equal(countMarks(plots.sensitivity, 'cells'), analysis.layers.length * featureColumns(analysis).length);
    const ranked = html.slice(html.indexOf('class="ranked"'));
    const order = rankBySensitivity(analysis.layers).map((l) => escapeHtml(l.name));
    const positions = order.map((n) => ranked.indexOf(`<td>${n}</td>`));
    assert.ok(positions.every((p) => p > 0), 'every layer is in the ranked table');
    assert.deepEqual([...positions].sort((a, b) => a - b), positions, 'most sensitive first');
    assert.doesNotMatch(html, /https?:\/\//i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without @napi-rs/canvas the report still renders, and says PNGs were skipped', async () => {
  const missing = await rasteriserFrom(() => Promise.reject(new Error("Cannot find package '@napi-rs/canvas' imported from png.ts")));
  assert.equal(typeof missing, 'string');
  assert.match(missing as string, /PNG plots skipped: @napi-rs\/canvas is not installed .*Cannot find package/);
});

test('the same input renders the same page, byte for byte', async () => {
  const a = mkdtempSync(join(tmpdir(), 'trtmix-report-'));
  const b = mkdtempSync(join(tmpdir(), 'trtmix-report-'));
  try {
    const input = syntheticSearch(awkwardLayers(), { evaluations: 40 });
    const fa = await renderSearchReport(input, a, { png: false });
    const fb = await renderSearchReport(input, b, { png: false });
    assert.equal(readFileSync(fa.html, 'utf8'), readFileSync(fb.html, 'utf8'));
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});
